"""The scenario model: what one YAML file may say, with every static check done before a model is built.

Checks that need the machine (is CUDA here?) or the data (how many items does the file hold?) live in
bench.scenarios.loader.check_runnable and the data layer; everything else is here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bench.core.device import Device
from bench.core.validation import NUMBER_AS_TEXT_HINT
from bench.models.architecture import Architecture
from bench.models.presets import get_preset, packaged_weights, preset_names

# Verbalizer labels are the single letters A..Z (LlamaRec labels its 20 candidates (A)..(T)).
MAX_VERBALIZER_CANDIDATES = 26
# A p99 early-stopping verdict needs at least ln(0.01) / ln(0.99) = 458.2 queries with none over the bound.
MIN_P99_QUERIES = 459
# Upper bounds on sizes a scenario sets: far beyond any real run, low enough that a typo cannot exhaust the
# machine before a check says so (the memory a run needs is estimated by `validate --here`).
MAX_BATCH = 4096
MAX_QPS = 1e6
MAX_SECONDS = 2 * 86_400


STORED = "stored"  # validation context of a scenario read back from a result


def stored(info: ValidationInfo) -> bool:
    """Whether a scenario is being read back from a result: it was checked when it ran, so rules about what a
    new run may ask for (known presets, consistent sizes) are not applied again, and a result stays readable
    after a preset is renamed or a rule is tightened."""
    return bool((info.context or {}).get(STORED))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_or_text_for_numbers(cls, data: Any) -> Any:
        """YAML's `true` is not a number, nor is a quoted "4": pydantic would take `batch_size: true` as 1 and
        `batch_size: "4"` as 4, while the tiers file refuses quoted numbers; one rule for both files."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is None:
                    continue
                if isinstance(value, bool) and not _takes_bool(field.annotation):
                    raise ValueError(f"{name}: must be {_expected(field.annotation)}, got {str(value).lower()}")
                if isinstance(value, str) and (expected := _expected(field.annotation)) in ("an integer", "a number"):
                    raise ValueError(f"{name}: must be {expected}, got {value!r} ({NUMBER_AS_TEXT_HINT})")
        return data


def _expected(annotation: Any) -> str:
    """What a non-bool field takes, in words, for the error that refuses a YAML true/false."""
    bare = _bare(annotation)
    kinds = {_bare(kind) for kind in get_args(bare)} or {bare}
    if any(isinstance(kind, type) and issubclass(kind, BaseModel) for kind in kinds):
        return "a mapping of fields"
    if kinds <= {int, type(None)}:
        return "an integer"
    if kinds <= {str, type(None)}:
        return "text"
    if kinds <= {int, float, type(None)}:
        return "a number"
    return "a number or text"


def _bare(annotation: Any) -> Any:
    """The type inside Annotated[type, constraints...]."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _takes_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or any(_takes_bool(arg) for arg in get_args(annotation))


class ModelSpec(_Strict):
    """Exactly one of: a preset name, an explicit architecture, a local transformers checkpoint, or a local GGUF
    file. A preset has random weights unless `weights: packaged` names the pretrained weights a Python package
    ships for it (presets.yaml, `packaged`)."""

    preset: str | None = None
    architecture: Architecture | None = None
    path: Path | None = None
    gguf: Path | None = Field(None, description="a local GGUF file: converted once to a cached checkpoint")
    weights: Literal["random", "packaged"] = Field(
        "random",
        description="preset only: random (shapes only) or packaged (the pretrained weights a package ships for "
        "the preset: make install-real)",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        # `model: qwen2.5-0.5b` is shorthand for `model: {preset: qwen2.5-0.5b}`.
        return {"preset": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSpec:
        given = [k for k in ("preset", "architecture", "path", "gguf") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of preset, architecture, path, gguf (got {given or 'none'})")
        if self.weights == "packaged" and self.preset is None:
            raise ValueError("weights: packaged applies to a preset only (a checkpoint or GGUF has its own weights)")
        return self

    @model_validator(mode="after")
    def _packaged_exists(self, info: ValidationInfo) -> ModelSpec:
        checked = self.weights == "packaged" and not stored(info) and self.preset in preset_names()
        if checked and packaged_weights(self.preset) is None:  # type: ignore[arg-type]
            with_weights = [name for name in preset_names() if packaged_weights(name) is not None]
            raise ValueError(
                f"weights: preset {self.preset!r} has no packaged weights (presets with them: "
                f"{', '.join(with_weights) or 'none'})"
            )
        return self

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not stored(info) and value not in preset_names():
            raise ValueError(f"unknown preset {value!r}; known presets: {', '.join(preset_names())}")
        return value

    @property
    def label(self) -> str:
        if self.preset:
            return f"{self.preset} (pretrained)" if self.weights == "packaged" else self.preset
        if self.path:
            return f"checkpoint:{self.path.name}"
        if self.gguf:
            return f"gguf:{self.gguf.name}"
        return "custom-architecture"

    @property
    def has_real_weights(self) -> bool:
        """Pretrained weights (a checkpoint, a GGUF, a packaged preset): quality means something."""
        return self.path is not None or self.gguf is not None or self.weights == "packaged"


class Workload(_Strict):
    """Users, items and the shape of each recommendation request."""

    dataset: Literal["synthetic", "synthetic_topics", "movielens", "amazon"] = Field(
        "synthetic",
        description="synthetic: MovieLens-like shapes, titles without meaning; synthetic_topics: titles made of "
        "topic words, users with topic preferences (a pretrained model can rank them); movielens, amazon: files",
    )
    path: Path | None = Field(None, description="MovieLens directory or Amazon 5-core CSV (not synthetic)")
    items_path: Path | None = Field(None, description="Amazon item metadata JSONL with titles (optional)")
    num_users: PositiveInt = Field(
        256, le=10_000_000, description="synthetic: users generated; files: at most this many"
    )
    num_items: PositiveInt = Field(
        2000, le=100_000_000, description="synthetic: catalogue size; files: set by the file"
    )
    history_length: PositiveInt = Field(20, le=10_000, description="most recent history items used per user")
    candidates: PositiveInt = Field(20, le=10_000, description="candidates retrieved per request and scored by the LLM")
    top_n: PositiveInt = Field(10, le=10_000, description="items recommended per request")
    title_max_tokens: PositiveInt = Field(32, le=1024, description="titles are cut to this many tokens in prompts")
    item_embeddings: Literal["model", "minilm"] = Field(
        "model", description="model: mean of title token embeddings from the LLM; minilm: all-MiniLM-L6-v2"
    )
    interest_weighting: Literal["recency", "rating"] = "recency"
    recency_decay: float = Field(0.9, gt=0, le=1, description="weight of item i steps back = decay**i")
    feedback_learning_rate: NonNegativeFloat = Field(0.5, le=1e6)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Workload:
        if stored(info):
            return self
        if not self.is_synthetic and self.path is None:
            raise ValueError(f"dataset {self.dataset} needs `path`")
        if self.is_synthetic and self.path is not None:
            raise ValueError(f"dataset {self.dataset} takes no `path`")
        if self.is_synthetic and self.candidates > self.num_items - 1:
            raise ValueError(
                f"candidates ({self.candidates}) must be below num_items ({self.num_items}): "
                "a request cannot draw more candidates than the catalogue holds"
            )
        if self.top_n > self.candidates:
            raise ValueError(f"top_n ({self.top_n}) must not exceed candidates ({self.candidates})")
        return self

    @property
    def is_synthetic(self) -> bool:
        return self.dataset in ("synthetic", "synthetic_topics")


class Scoring(_Strict):
    """How the LLM estimates P(candidate | user)."""

    mode: Literal["verbalizer", "likelihood", "generate"] = Field(
        "verbalizer",
        description="verbalizer: one forward, softmax over candidate letters (LlamaRec); likelihood: "
        "each candidate's title log-likelihood with the prompt's KV cache shared; generate: decode "
        "new_tokens with a KV cache",
    )
    new_tokens: PositiveInt = Field(16, le=8192, description="generate mode: tokens decoded per request")


# The lever label of a point that pulls none: its levers' baseline (Optimize.label, OperatingPoint.levers).
NO_LEVER = "baseline"


class Batching(_Strict):
    """How requests are grouped into batches. A padded batch runs to its longest prompt; grouping requests of
    similar length wastes less of the LLM's work on padding, and packing the prompts wastes none on them."""

    padding: Literal["longest", "bucketed", "packed"] = Field(
        "longest",
        description="longest: users in arrival order, each batch padded to its longest prompt; bucketed: within "
        "each window of batches, users are sorted by prompt length before they are cut into batches; packed: "
        "users in arrival order, their prompts concatenated without padding and attention run per request "
        "(engine: native)",
    )
    window: PositiveInt = Field(4, le=1024, description="bucketed: batches per window (more: less padding, more wait)")

    @property
    def label(self) -> str | None:
        """The batching lever pulled, e.g. `padding=bucketed(window 4)`; None for the default (padded to the
        longest prompt, in arrival order)."""
        if self.padding == "longest":
            return None
        return f"padding=bucketed(window {self.window})" if self.padding == "bucketed" else f"padding={self.padding}"

    @property
    def typical_window(self) -> int:
        """Batches over which a typical batch is averaged: a bucketing window (its batches differ in length by
        design), or 1 where batches come in arrival order (bench.core.stats.typical_batch)."""
        return self.window if self.padding == "bucketed" else 1


class Optimize(_Strict):
    """Levers that trade set-up time or numerical precision for speed; each is sweepable and priced in the report
    against the same point without it."""

    quantize: Literal["none", "int8_dynamic"] = Field(
        "none",
        description="int8_dynamic: Linear weights stored as int8, activations quantized per batch (CPU only; "
        "torch.ao dynamic quantization)",
    )
    compile: bool = Field(
        False, description="torch.compile the model; compiling is a set-up figure, never inside timed iterations"
    )
    attention: Literal["sdpa", "eager"] = Field(
        "sdpa", description="attention implementation: sdpa (fused kernels) or eager (plain matmuls)"
    )
    prepack: bool = Field(
        False,
        description="Linear weights reordered once into oneDNN's blocked layout and multiplied by oneDNN, as "
        "IPEX and torch.compile's CPU freezing do (CPU only, float32)",
    )

    @property
    def label(self) -> str:
        """`baseline`, or the levers pulled, e.g. `int8_dynamic+compile`."""
        pulled = [self.quantize] if self.quantize != "none" else []
        pulled += ["prepack"] if self.prepack else []
        pulled += ["compile"] if self.compile else []
        pulled += [f"attention={self.attention}"] if self.attention != "sdpa" else []
        return "+".join(pulled) or NO_LEVER

    @property
    def cpu_only(self) -> str | None:
        """The lever pulled that runs on a CPU only, so is never projected onto a GPU (None: none is)."""
        if self.quantize != "none":
            return self.quantize
        return "prepack" if self.prepack else None


# Users in the quality evaluation set: enough for a useful interval, bounded so a typo cannot run for hours.
DEFAULT_EVAL_USERS = 128
MAX_EVAL_USERS = 10_000  # hours of scoring on a CPU already, and per-user outcomes kept in the result


class Evaluation(_Strict):
    """Ranking quality measured on a fixed set of users, apart from the timed batches: each user's held-out item
    among candidates-1 unseen items drawn at random, so two levers are judged on the same users and candidates."""

    users: NonNegativeInt | None = Field(
        None,
        le=MAX_EVAL_USERS,
        description=f"users evaluated; 0 turns the evaluation off; default: {DEFAULT_EVAL_USERS} (or every user, if "
        "fewer) with pretrained weights, off with random weights (their quality is chance by construction)",
    )
    bootstrap_resamples: PositiveInt = Field(2000, le=100_000, description="resamples for the 95% intervals")

    def users_for(self, model: ModelSpec, num_users: int) -> int:
        """Users to evaluate: the number set, or the default for these weights (at most the users there are)."""
        if self.users is not None:
            return self.users
        return min(DEFAULT_EVAL_USERS, num_users) if model.has_real_weights else 0


class Repetitions(_Strict):
    warmup: NonNegativeInt = Field(1, le=100_000, description="iterations run first and excluded from statistics")
    min_iterations: PositiveInt = Field(5, le=1_000_000, description="measured iterations, at least")
    min_duration_s: NonNegativeFloat = Field(0.0, le=86_400, description="keep measuring until this much time")
    max_iterations: PositiveInt = Field(1000, le=1_000_000, description="stop here even if min_duration_s is not met")

    @model_validator(mode="after")
    def _ordered(self, info: ValidationInfo) -> Repetitions:
        if stored(info):
            return self
        if self.max_iterations < self.min_iterations:
            raise ValueError(f"max_iterations ({self.max_iterations}) is below min_iterations ({self.min_iterations})")
        return self


class Load(_Strict):
    """A load test driven by MLPerf LoadGen: queries arrive on LoadGen's schedule and are served with dynamic
    batching (up to max_batch_size users, or whatever arrived within max_wait_ms, whichever comes first)."""

    mode: Literal["offline", "server", "single_stream"] = Field(
        "server",
        description="server: Poisson arrivals at target_qps (or a peak search over qps_range), judged on p99; "
        "offline: every sample at once, judged on samples/s; single_stream: one query at a time, p90",
    )
    target_qps: PositiveFloat | None = Field(None, le=MAX_QPS, description="server: the arrival rate to test")
    qps_range: tuple[Annotated[float, Field(gt=0, le=MAX_QPS)], Annotated[float, Field(gt=0, le=MAX_QPS)]] | None = (
        Field(
            None,
            description="server: [low, high] for a peak search (bisection over LoadGen runs) instead of target_qps",
        )
    )
    peak_tolerance: float = Field(
        0.05, gt=0, lt=1, description="peak search: stop bisecting when (high - low) / high is below this"
    )
    p99_slo_ms: PositiveFloat = Field(
        500.0, le=MAX_SECONDS * 1e3, description="server: p99 latency bound (queueing included)"
    )
    # Defaults: MLPerf Inference's llama3.1-8b server bounds, p99 TTFT 2000 ms and TPOT 100 ms (llama3_1-8b.Server in
    # https://github.com/mlcommons/inference/blob/001712e9daf80386e0dda43f97b8f36981d792c4/loadgen/mlperf.conf).
    ttft_p99_ms: PositiveFloat = Field(
        2000.0,
        le=MAX_SECONDS * 1e3,
        description="generate scoring, server: p99 time-to-first-token bound LoadGen judges",
    )
    tpot_p99_ms: PositiveFloat = Field(
        100.0,
        le=MAX_SECONDS * 1e3,
        description="generate scoring, server: p99 time-per-output-token bound LoadGen judges",
    )
    min_duration_s: PositiveFloat = Field(
        10.0, le=MAX_SECONDS, description="LoadGen min_duration: each run lasts at least this"
    )
    min_query_count: PositiveInt = Field(
        MIN_P99_QUERIES,
        le=10_000_000,
        description=f"LoadGen min_query_count (server needs >= {MIN_P99_QUERIES} for a p99 verdict)",
    )
    max_batch_size: PositiveInt = Field(8, le=MAX_BATCH, description="dynamic batching: most users per batch")
    max_wait_ms: NonNegativeFloat = Field(
        5.0, le=60_000, description="dynamic batching: longest a query waits for company"
    )
    max_outstanding: PositiveInt = Field(
        256,
        le=1_000_000,
        description="server/single_stream: queries queued beyond this are dropped (completed as errors)",
    )
    max_wall_s: PositiveFloat = Field(
        120.0, le=MAX_SECONDS, description="hard bound on one LoadGen run; queries left are dropped"
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Load:
        if stored(info):
            return self
        if self.mode != "server":
            for field in ("target_qps", "qps_range"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field} applies to server mode only (mode is {self.mode})")
        else:
            if (self.target_qps is None) == (self.qps_range is None):
                raise ValueError("load: server mode needs exactly one of target_qps or qps_range")
            if self.qps_range is not None and not self.qps_range[0] < self.qps_range[1]:
                raise ValueError(f"qps_range: low ({self.qps_range[0]}) must be below high ({self.qps_range[1]})")
            if self.min_query_count < MIN_P99_QUERIES:
                raise ValueError(
                    f"min_query_count ({self.min_query_count}) is below {MIN_P99_QUERIES}: a p99 early-stopping "
                    f"verdict needs >= {MIN_P99_QUERIES} queries (ln 0.01 / ln 0.99)"
                )
            qps = self.target_qps if self.target_qps is not None else self.qps_range[0]  # type: ignore[index]
            if qps * self.min_duration_s < MIN_P99_QUERIES:
                raise ValueError(
                    f"min_duration_s: {qps:g} qps x {self.min_duration_s:g} s = {qps * self.min_duration_s:.0f} "
                    f"queries, below {MIN_P99_QUERIES}: a p99 early-stopping verdict needs >= {MIN_P99_QUERIES} "
                    "queries (ln 0.01 / ln 0.99)"
                )
        if self.max_outstanding < self.max_batch_size:
            raise ValueError(
                f"max_outstanding ({self.max_outstanding}) is below max_batch_size ({self.max_batch_size}): "
                "a full batch could never queue"
            )
        if self.max_wall_s <= self.min_duration_s:
            raise ValueError(
                f"max_wall_s ({self.max_wall_s:g}) must exceed min_duration_s ({self.min_duration_s:g}): "
                "every run would be cut short"
            )
        return self


class Scenario(_Strict):
    """One benchmark scenario. With `sweep`, a grid of points, each a Scenario without `sweep`."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80, description="a plain name: it names result files"
    )
    description: str = ""
    model: ModelSpec
    engine: Literal["transformers", "native"] = Field(
        "transformers",
        description="what runs the model: transformers' classes, or recbench's plain-torch decoder (the same "
        "computation and logits, checked by the test suite, with less overhead around attention on the CPU; random "
        "weights only; starts 4-7 s sooner on a 2-core machine, as it does not import transformers)",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: float32 on a CPU; bfloat16 on CUDA (float16 where bf16 is unsupported)"
    )
    device: str = Field("cpu", description="cpu, cuda or cuda:N")
    accelerator_type: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="cluster runs (--executor ray): the GPU type a CUDA point must land on, as Ray names it "
        "(H100, A100, L4, T4...); the local executor runs on the GPU it has",
    )
    threads: PositiveInt | None = Field(None, le=1024, description="torch intra-op threads (default: torch's)")
    batch_size: PositiveInt = Field(1, le=MAX_BATCH, description="requests (users) per batch")
    max_prompt_tokens: PositiveInt = Field(512, le=1_048_576, description="prompt length cap: the sequence length")
    workload: Workload = Workload()
    scoring: Scoring = Scoring()
    batching: Batching = Batching()
    optimize: Optimize = Optimize()
    evaluation: Evaluation = Evaluation()
    repetitions: Repetitions = Repetitions()
    seed: int = Field(0, ge=0, lt=2**32, description="seeds data, weights and sampling")
    grid_intensity_gco2_per_kwh: NonNegativeFloat | None = Field(
        None, le=10_000, description="grid carbon intensity for CO2 per request (e.g. 475, IEA 2019 world average)"
    )
    load: Load | None = Field(None, description="run as a LoadGen load test instead of timed batches")
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="field path (e.g. batch_size, workload.candidates) -> values"
    )

    @model_validator(mode="after")
    def _accelerator_needs_cuda(self) -> Scenario:
        if self.accelerator_type is not None and not Device.parse(self.device).is_cuda:
            raise ValueError(f"accelerator_type: names a GPU type, but device is {self.device!r}")
        return self

    @model_validator(mode="after")
    def _native_engine_random_weights(self) -> Scenario:
        if self.engine == "native" and self.model.has_real_weights:
            raise ValueError(
                "engine: native runs random weights from a preset or an architecture; pretrained weights "
                "(model.path, model.gguf, model.weights: packaged) run on engine: transformers"
            )
        return self

    @model_validator(mode="after")
    def _packing_needs_native_engine(self) -> Scenario:
        if self.batching.padding != "packed":
            return self
        if self.engine != "native":
            raise ValueError(
                "batching.padding: packed runs on engine: native (recbench's decoder keeps attention inside each "
                "request of a packed row); transformers' classes take padded batches: set batching.padding: longest "
                "or bucketed"
            )
        if self.optimize.compile:
            raise ValueError(
                "batching.padding: packed is not compiled (optimize.compile: each batch's prompt lengths would "
                "compile a new graph); compile padded batches, in a scenario file of their own"
            )
        return self

    @model_validator(mode="after")
    def _levers_fit_device(self) -> Scenario:
        if self.optimize.quantize == "int8_dynamic" and Device.parse(self.device).is_cuda:
            raise ValueError("optimize.quantize: int8_dynamic runs on the CPU only (torch.ao dynamic quantization)")
        if self.optimize.quantize == "int8_dynamic" and self.dtype not in ("auto", "float32"):
            raise ValueError(f"optimize.quantize: int8_dynamic takes float32 activations, not dtype {self.dtype}")
        if self.optimize.quantize != "none" and self.optimize.compile:
            raise ValueError("optimize: quantize and compile together are not supported; sweep them separately")
        if self.optimize.prepack:
            self._check_prepack()
        return self

    def _check_prepack(self) -> None:
        if Device.parse(self.device).is_cuda:
            raise ValueError("optimize.prepack: runs on the CPU only (oneDNN's CPU matmul)")
        if self.dtype not in ("auto", "float32"):
            raise ValueError(f"optimize.prepack: runs float32 weights (dtype float32 or auto), not dtype {self.dtype}")
        other = "quantize" if self.optimize.quantize != "none" else "compile" if self.optimize.compile else None
        if other:
            raise ValueError(
                f"optimize.prepack: not with optimize.{other} (both change how Linear layers run); pull one, or "
                "sweep them as separate points"
            )

    @field_validator("device")
    @classmethod
    def _device_syntax(cls, value: str) -> str:
        return str(Device.parse(value))  # ValueError with the accepted forms

    @property
    def max_positions_needed(self) -> int:
        """The longest sequence a forward sees: the prompt, plus decoded tokens (generate) or a candidate's title
        (likelihood)."""
        if self.scoring.mode == "generate":
            return self.max_prompt_tokens + self.scoring.new_tokens
        if self.scoring.mode == "likelihood":
            return self.max_prompt_tokens + self.workload.title_max_tokens
        return self.max_prompt_tokens

    @property
    def _positions_beyond_prompt(self) -> str:
        if self.scoring.mode == "generate":
            return f" + scoring.new_tokens ({self.scoring.new_tokens})"
        if self.scoring.mode == "likelihood":
            return f" + workload.title_max_tokens ({self.workload.title_max_tokens})"
        return ""

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Scenario:
        if stored(info):
            return self
        if self.scoring.mode in ("verbalizer", "generate") and (self.workload.candidates > MAX_VERBALIZER_CANDIDATES):
            raise ValueError(
                f"workload.candidates ({self.workload.candidates}) exceeds {MAX_VERBALIZER_CANDIDATES}: "
                f"scoring mode {self.scoring.mode} labels candidates with single letters A..Z"
            )
        limit = self.model.architecture.max_position_embeddings if self.model.architecture else None
        if (self.evaluation.users or 0) > self.workload.num_users:
            raise ValueError(
                f"evaluation.users ({self.evaluation.users}) exceeds workload.num_users ({self.workload.num_users})"
            )
        if limit is None and self.model.preset:
            limit = get_preset(self.model.preset).max_position_embeddings
        if limit is not None and self.max_positions_needed > limit:
            raise ValueError(
                f"max_prompt_tokens: {self.max_prompt_tokens}{self._positions_beyond_prompt} = "
                f"{self.max_positions_needed} positions, beyond the model's max_position_embeddings ({limit})"
            )
        return self


# Scenario fields that change nothing measured.
_NOT_MEASURED = ("description", "sweep")


def scenario_changes(before: Scenario, after: Scenario) -> list[str]:
    """The measured fields two scenarios differ in: `engine: transformers -> native` for a plain value, the field's
    name for a section (`workload`)."""
    plain = (str, int, float, bool, type(None))
    changes = []
    for name in type(before).model_fields:
        old, new = getattr(before, name), getattr(after, name)
        if name in _NOT_MEASURED or old == new:
            continue
        changes.append(f"{name}: {old} -> {new}" if isinstance(old, plain) and isinstance(new, plain) else name)
    return changes
