"""Figures derived from a result's raw samples and counts: latency statistics, throughput, analytic and
achieved FLOP/s, utilisation. Computed at the end of a run and stored with the raw data they came from."""

from __future__ import annotations

from typing import Any

from bench.hardware.devices import lookup_device_peak
from bench.loop.pipeline import END_TO_END, BatchRecord
from bench.models.analytic import ForwardShape, total_forward_bytes, total_forward_flops
from bench.models.architecture import Architecture
from bench.stats import summarize

LLM_STAGE_PREFIX = "llm_"


def derive_measures(
    result: dict[str, Any], *, arch: Architecture, calibration: BatchRecord, records: list[BatchRecord]
) -> dict[str, Any]:
    samples: dict[str, list[float]] = result["latency"]["samples"]
    latency = {stage: summarize(values).to_dict() for stage, values in samples.items() if values}
    return {
        "summary": {
            "latency": {"unit": "s", "stages": latency},
            "throughput": throughput(result, latency),
            "flops": flops_summary(result, arch, calibration, records, samples),
        }
    }


def throughput_figures(result: dict[str, Any], requests_per_s: float, *, basis: str) -> dict[str, Any]:
    """Requests/s and what follows from it per request, each with its unit."""
    workload = result["scenario"]["workload"]
    return {
        "basis": basis,
        "requests_per_s": {"value": requests_per_s, "unit": "requests/s"},
        "recommendations_per_s": {
            "value": requests_per_s * workload["top_n"],
            "unit": "recommended items/s (top_n per request)",
        },
        "candidates_scored_per_s": {
            "value": requests_per_s * workload["candidates"],
            "unit": "candidates scored by the LLM/s",
        },
        "prompt_tokens_per_s": {
            "value": requests_per_s * result["work"]["prompt_tokens_mean"],
            "unit": "prompt tokens/s (unpadded)",
        },
    }


def throughput(result: dict[str, Any], latency: dict[str, dict[str, float]]) -> dict[str, Any]:
    batch = result["scenario"]["batch_size"]
    requests_per_s = batch / latency[END_TO_END]["p50"]
    figures = throughput_figures(result, requests_per_s, basis="batch_size / median end-to-end batch latency")
    if "llm_decode_token" in latency:
        figures["time_to_first_token_s"] = {
            "value": latency["llm_prefill"]["p50"],
            "unit": "s (median LLM prefill; the stages before scoring are not included)",
        }
        figures["time_per_output_token_s"] = {
            "value": latency["llm_decode_token"]["p50"],
            "unit": "s (median)",
        }
        figures["decode_tokens_per_s"] = {
            "value": batch / latency["llm_decode_token"]["p50"],
            "unit": "generated tokens/s (batch / median time per output token)",
        }
    return figures


def analytic_stage_bytes(arch: Architecture, record: BatchRecord, dtype: str) -> dict[str, int]:
    """Memory traffic estimates for one batch (float32 embeddings outside the LLM)."""
    batch, history, dim = record.interest_shape
    _, items, _ = record.retrieval_shape
    return {
        "preprocess": 0,
        "interest": 4 * batch * history * dim,  # gathered history embeddings
        "candidates": 4 * items * dim,  # the catalogue's embeddings, read once per batch
        "scoring": total_forward_bytes(arch, record.forwards, dtype=dtype),
        "rank_feedback": 4 * batch * history * dim,
    }


def analytic_stage_flops(arch: Architecture, record: BatchRecord) -> dict[str, int]:
    """Estimates for one batch, from the shapes that batch actually ran."""
    batch, history, dim = record.interest_shape
    _, items, _ = record.retrieval_shape
    return {
        "preprocess": 0,
        "interest": 2 * batch * history * dim,  # weighted sum: (1 x H) @ (H x d) per user
        "candidates": 2 * batch * items * dim,  # similarity to every item: (B x d) @ (d x I)
        "scoring": total_forward_flops(arch, record.forwards),
        "rank_feedback": 2 * batch * history * dim,  # feedback affinity: (H x d) @ d per user
    }


def flops_summary(
    result: dict[str, Any],
    arch: Architecture,
    calibration: BatchRecord,
    records: list[BatchRecord],
    samples: dict[str, list[float]],
) -> dict[str, Any]:
    """Counted FLOPs exist for the calibration batch only, and prompt lengths differ from batch to batch; so
    the timed batches' FLOPs are the analytic figures for their own shapes, checked against the counter on
    the calibration batch, and achieved FLOP/s is total FLOPs over total time of the timed batches."""
    counted: dict[str, int] = result["flops"]["counted"]["per_batch"]
    calibration_analytic = analytic_stage_flops(arch, calibration)
    timed = [analytic_stage_flops(arch, record) for record in records]
    moved = [analytic_stage_bytes(arch, record, result["model"]["dtype"]) for record in records]
    stages: dict[str, Any] = {}
    for stage, flops in counted.items():
        total_flops = sum(batch[stage] for batch in timed)
        total_s = sum(samples[stage])
        stages[stage] = {
            "counted_flops": flops,
            "analytic_flops_estimate": calibration_analytic[stage],
            "timed_batches_flops_mean": total_flops / len(timed),
            "timed_batches_bytes_moved_estimate_mean": sum(batch[stage] for batch in moved) / len(moved),
            "achieved_flops_per_s": total_flops / total_s if total_s > 0 else None,
        }
    llm_flops = sum(batch["scoring"] for batch in timed)
    llm_seconds = sum(sum(v) for k, v in samples.items() if k.startswith(LLM_STAGE_PREFIX))
    achieved = llm_flops / llm_seconds if llm_seconds > 0 else None
    summary: dict[str, Any] = {
        "unit": "FLOP per batch; FLOP/s",
        "basis": "counted_flops: FlopCounterMode on the calibration batch; analytic_flops_estimate: formula on "
        "the same batch; timed batches: formula on each batch's shapes; achieved = total FLOPs / total seconds",
        "stages": stages,
        "llm": {
            "flops_per_batch_mean": llm_flops / len(timed),
            "seconds_per_batch_mean": llm_seconds / len(timed),
            "achieved_flops_per_s": achieved,
            **utilisation(result, achieved),
        },
    }
    if result["scenario"]["scoring"]["mode"] == "likelihood":
        summary["likelihood_prompt_sharing"] = prompt_sharing(arch, calibration)
    return summary


def utilisation(result: dict[str, Any], achieved: float | None) -> dict[str, Any]:
    """Achieved LLM FLOP/s against this machine's measured GEMM peak and, on a GPU, the datasheet peak."""
    gemm = result["peak"]["gemm"]
    figures: dict[str, Any] = {
        "fraction_of_measured_gemm_peak": achieved / gemm["flops_per_s"] if achieved else None,
        "measured_gemm_peak_flops_per_s": gemm["flops_per_s"],
        "achieved_basis": "analytic FLOPs of the timed batches (an estimate, equal to FlopCounterMode's count on "
        "the calibration batch) / their measured LLM time",
    }
    if achieved and achieved > gemm["flops_per_s"]:
        figures["note"] = (
            "achieved exceeds the measured GEMM peak: the peak was probably measured while the machine was busy; "
            "a quiet run raises the cached best"
        )
    device = result["scenario"]["device"]
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        gpus = result["environment"]["cuda"].get("devices", [])
        name = gpus[index]["name"] if index < len(gpus) else ""
        import torch

        peak = lookup_device_peak(name, getattr(torch, result["model"]["dtype"]))
        if peak is not None:
            figures["mfu"] = achieved / peak.flops_per_s if achieved else None
            figures["datasheet_peak_flops_per_s"] = peak.flops_per_s
            figures["datasheet_source"] = peak.source
    else:
        # A CPU has no datasheet peak here: MFU is taken against the measured GEMM peak.
        figures["mfu"] = figures["fraction_of_measured_gemm_peak"]
        figures["mfu_basis"] = "measured GEMM peak of this machine"
    return figures


def prompt_sharing(arch: Architecture, calibration: BatchRecord) -> dict[str, Any]:
    """Likelihood mode: FLOPs with the prompt's KV cache shared across candidates vs recomputing the prompt
    for every candidate (both analytic, from the calibration batch's shapes)."""
    prefill, candidates = calibration.forwards[0], calibration.forwards[1]
    per_request = candidates.batch // prefill.batch
    recompute = ForwardShape(
        batch=candidates.batch,
        new_tokens=prefill.new_tokens + candidates.new_tokens,
        context=prefill.new_tokens + candidates.new_tokens,
        logits=candidates.new_tokens + 1,
    )
    shared = total_forward_flops(arch, calibration.forwards)
    recomputed = total_forward_flops(arch, [recompute])
    return {
        "candidates_per_request": per_request,
        "shared_prompt_flops_estimate": shared,
        "recompute_prompt_flops_estimate": recomputed,
        "saving_factor": recomputed / shared,
    }
