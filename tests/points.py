"""Hand-made operating points for the cost, projection and cross-check tests."""

from __future__ import annotations

from collections.abc import Sequence

from bench.core.kinds import EnergyMethod
from bench.core.stages import Stage
from bench.cost.projection import LlmWork, OperatingPoint
from bench.hardware.fingerprint import Fingerprint
from bench.loop.evaluation import EvaluationSamples
from bench.measurement.quality import quality_evaluation
from bench.results.model import MemoryEstimate, QualityEvaluation

AVX2_EPYC = Fingerprint(cpu_model="AMD EPYC 7R13 Processor", isa="avx2", logical_cores=2, memory_gib=4, gpus=(),
                        torch="2.13.0+cpu")  # fmt: skip
UNKNOWN_CPU = Fingerprint(cpu_model="Hygon C86 7285", isa="avx2", logical_cores=16, memory_gib=64, gpus=(),
                          torch="2.13.0+cpu")  # fmt: skip


def llm(**overrides: object) -> LlmWork:
    base = dict(flops=2e12, bytes_moved=4e9, measured_s=9.0, host_s=0.0, forwards=1, ops_per_forward=None)
    base.update(overrides)
    return LlmWork(**base)  # type: ignore[arg-type]


def point(**overrides: object) -> OperatingPoint:
    base = dict(
        path="r.json", scenario="s", point="default", spec_hash="h", model="m", layers=4, params=1, batch_size=4,
        max_prompt_tokens=512, prompt_tokens_mean=400.0, top_n=10, dtype="float32", device="cpu",
        device_name=AVX2_EPYC.cpu_model, fingerprint=AVX2_EPYC,
        host_stages_s={Stage.PREPROCESS: 0.001}, llm=llm(),
        batch_p50_s=10.0, batch_p99_s=12.0, batches=20,
        memory_need=MemoryEstimate(weights_bytes=4_000_000_000, kv_cache_bytes=0, activations_bytes=0,
                                   total_bytes=4_000_000_000),
        gemm_peak_flops_per_s=1.2e11,
        energy_j_per_batch=None, energy_method=EnergyMethod.MODELLED, hardware_tier=None,
        workload="default", sweep_values={}, machine="m", created_at="2026-11-27T00:00:00+00:00", commit=None,
    )  # fmt: skip
    base.update(overrides)
    return OperatingPoint(**base)  # type: ignore[arg-type]


def evaluation(
    ndcg: Sequence[float], *, user_ids: Sequence[str] | None = None, top_n: int = 5, candidates: int = 10
) -> QualityEvaluation:
    """A quality evaluation with the given per-user NDCG (a hit wherever NDCG > 0), its figures derived as a run
    derives them (means, bootstrap intervals, chance level, p-values)."""
    users = list(user_ids) if user_ids is not None else [f"u{i}" for i in range(len(ndcg))]
    samples = EvaluationSamples(user_ids=users, hits=[int(v > 0) for v in ndcg], ndcg=list(ndcg),
                                candidates=candidates, top_n=top_n, seconds=0.1)  # fmt: skip
    return quality_evaluation(samples, resamples=2000)
