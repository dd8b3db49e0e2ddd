"""Ranking quality against cost: which operating points take part, how each is labelled, which are Pareto-optimal,
and the quality bar a capacity plan can be held to.

Quality is the result's evaluation (`quality.evaluation`: NDCG@k on a fixed set of users, with a 95% bootstrap
interval), measured once on the benchmark machine; it is the same on every tier. Cost is the rented cost per 1M
recommendations on each tier (bench.cost.model): measured on the tier a result ran on, projected (an estimate)
elsewhere. A result without an evaluation takes no part: its quality is unknown, not zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.core.kinds import Basis
from bench.cost.model import TierCost
from bench.cost.projection import LEVER_SECTIONS, OperatingPoint

NO_EVALUATION = (
    "no result has a quality evaluation: quality against cost needs `evaluation.users` in the scenario, or "
    "pretrained weights (a packaged preset, a checkpoint or a GGUF), which evaluate 128 users by default"
)
QUALITY_BAR_RULE = (
    "an operating point qualifies when the mean NDCG@k of its evaluation is at least the bar (the mean, not the lower "
    "end of its 95% interval)"
)

# Fields that tell operating points apart, as labels name them (a sweep's other fields are added by their path).
_IDENTIFYING: tuple[tuple[str, Callable[[OperatingPoint], Any]], ...] = (
    ("scenario", lambda p: p.scenario),
    ("model", lambda p: p.model),
    ("dtype", lambda p: p.dtype),
    ("scoring", lambda p: p.scoring_mode),
    ("batch", lambda p: p.batch_size),
    ("max prompt", lambda p: p.max_prompt_tokens),
    ("machine", lambda p: p.machine),
)
_COVERED_SWEEP_FIELDS = {"batch_size", "max_prompt_tokens", "dtype", "scoring.mode", "model", "model.preset"}


def is_lever_field(path: str) -> bool:
    """A sweep field path that sets a lever (`optimize` or `batching`): the lever label names it."""
    return any(path == root or path.startswith(f"{root}.") for root in LEVER_SECTIONS)


def _fields(point: OperatingPoint) -> dict[str, str]:
    fields = {name: str(get(point)) for name, get in _IDENTIFYING}
    for path, value in point.sweep_values.items():
        if path not in _COVERED_SWEEP_FIELDS and not is_lever_field(path):
            fields[path] = value
    return fields


def varying_fields(points: Sequence[OperatingPoint]) -> dict[int, str]:
    """Per point (by id): the identifying fields (scoring mode, dtype, batch size, other swept fields...) whose
    values differ among `points`, as text ("scoring likelihood, batch 4"); "" where nothing but the levers varies."""
    unique = list({id(p): p for p in points}.values())
    fields = {id(p): _fields(p) for p in unique}
    names = list(dict.fromkeys(name for f in fields.values() for name in f))
    varying = [name for name in names if len({f.get(name, "") for f in fields.values()}) > 1]
    return {key: ", ".join(f"{name} {f.get(name, '')}" for name in varying) for key, f in fields.items()}


def lever_label(point: OperatingPoint, varying: dict[int, str]) -> str:
    """The lever (`baseline`, `int8_dynamic`...) and whatever else varies: `int8_dynamic, scoring likelihood`."""
    rest = varying.get(id(point), "")
    return f"{point.levers}, {rest}" if rest else point.levers


# ------------------------------------------------------------------------------------------ Pareto front


def pareto_flags(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, quality) pairs: True where no other pair is at most as costly and at least as good, and strictly
    better in one of the two (lower cost or higher quality); equal pairs are all optimal."""
    flags = []
    for i, (cost, quality) in enumerate(points):
        dominated = any(
            c <= cost and q >= quality and (c < cost or q > quality) for j, (c, q) in enumerate(points) if j != i
        )
        flags.append(not dominated)
    return flags


@dataclass(frozen=True, kw_only=True)
class QualityCost:
    """One result on one tier: its rented cost per 1M recommendations there and its (tier-independent) NDCG."""

    row: TierCost
    label: str  # lever_label
    pareto: bool  # within its comparable group (same top_n and candidates): no point is cheaper and better

    @property
    def point(self) -> OperatingPoint:
        return self.row.point

    @property
    def cost(self) -> float | None:
        return self.row.rented_cost_per_1m_usd

    @property
    def measured(self) -> bool:
        return self.row.basis == Basis.MEASURED


@dataclass(kw_only=True)
class QualityCosts:
    """Every (result, tier) of the results with an evaluation, and what was left out."""

    items: list[QualityCost]
    unevaluated: list[OperatingPoint] = field(default_factory=list)  # results without an evaluation

    @property
    def drawn(self) -> list[QualityCost]:
        return [q for q in self.items if q.cost is not None]

    @property
    def groups(self) -> list[tuple[int, int]]:
        """The distinct (top_n, candidates) settings: NDCG compares within one, and has one chance level each."""
        return list(dict.fromkeys(_group(q.point) for q in self.items))


def _group(point: OperatingPoint) -> tuple[int, int]:
    evaluation = point.evaluation
    assert evaluation is not None
    return (evaluation.top_n, evaluation.candidates)


def quality_costs(rows: Sequence[TierCost]) -> QualityCosts:
    """The rows of the results that have an evaluation, labelled, with Pareto flags on rented cost against NDCG
    mean, computed over every tier and lever together within each (top_n, candidates) setting."""
    points = list({id(r.point): r.point for r in rows}.values())
    evaluated = [p for p in points if p.evaluation is not None]
    varying = varying_fields(evaluated)
    with_quality = [r for r in rows if r.point.evaluation is not None]
    flags: dict[int, bool] = {}
    by_group: dict[tuple[int, int], list[TierCost]] = defaultdict(list)
    for r in with_quality:
        if r.rented_cost_per_1m_usd is not None:
            by_group[_group(r.point)].append(r)
    for members in by_group.values():
        pairs = [(r.rented_cost_per_1m_usd or 0.0, _ndcg(r.point)) for r in members]
        flags.update({id(r): flag for r, flag in zip(members, pareto_flags(pairs), strict=True)})
    items = [
        QualityCost(row=r, label=lever_label(r.point, varying), pareto=flags.get(id(r), False)) for r in with_quality
    ]
    return QualityCosts(items=items, unevaluated=[p for p in points if p.evaluation is None])


def _ndcg(point: OperatingPoint) -> float:
    assert point.evaluation is not None
    return point.evaluation.ndcg_mean


QUALITY_COLUMNS = [
    "scenario",
    "point",
    "lever",
    "optimize",
    "batching",
    "scoring_mode",
    "tier",
    "basis",
    "rented_cost_per_1m_recommendations_usd",
    "owned_cost_per_1m_recommendations_usd",
    "ndcg_mean",
    "ndcg_ci_low",
    "ndcg_ci_high",
    "chance_ndcg",
    "p_value_ndcg",
    "above_chance",
    "hit_rate",
    "users",
    "top_n",
    "candidates",
    "pareto",
    "note",
    "result",
]


def quality_dict(item: QualityCost) -> dict[str, Any]:
    """A flat, CSV-ready view of one (result, tier): cost there (measured or projected) and the result's quality."""
    point, row, evaluation = item.point, item.row, item.point.evaluation
    assert evaluation is not None
    return {
        "scenario": point.scenario,
        "point": point.point,
        "lever": item.label,
        "optimize": point.optimize,
        "batching": point.batching_setting,
        "scoring_mode": point.scoring_mode,
        "tier": row.timing.tier,
        "basis": str(row.basis),
        "rented_cost_per_1m_recommendations_usd": row.rented_cost_per_1m_usd,
        "owned_cost_per_1m_recommendations_usd": row.owned_cost_per_1m_usd,
        "ndcg_mean": evaluation.ndcg_mean,
        "ndcg_ci_low": evaluation.ndcg_ci.low,
        "ndcg_ci_high": evaluation.ndcg_ci.high,
        "chance_ndcg": evaluation.chance_ndcg,
        "p_value_ndcg": evaluation.p_value_ndcg,
        "above_chance": evaluation.above_chance,
        "hit_rate": evaluation.hit_rate,
        "users": evaluation.users,
        "top_n": evaluation.top_n,
        "candidates": evaluation.candidates,
        "pareto": item.pareto,
        "note": "" if row.rented_cost_per_1m_usd is not None else "; ".join(row.notes) or "no rented price",
        "result": point.path,
    }


# ------------------------------------------------------------------------------------------- quality bar


@dataclass(kw_only=True)
class QualityScreen:
    """What a quality bar (plan --min-ndcg) let through and kept out."""

    min_ndcg: float
    qualified: list[OperatingPoint] = field(default_factory=list)
    below: list[OperatingPoint] = field(default_factory=list)  # evaluated, NDCG mean under the bar
    unevaluated: list[OperatingPoint] = field(default_factory=list)  # no evaluation: excluded
    rule: str = QUALITY_BAR_RULE

    def notes(self) -> list[str]:
        """One line each: the rule, what was kept out and why."""
        lines = [f"quality bar NDCG >= {self.min_ndcg:g}: {self.rule}"]
        if self.below:
            shown = "; ".join(f"{p.point} ({ndcg_text(p)})" for p in self.below)
            lines.append(f"{len(self.below)} operating point(s) below the bar, excluded: {shown}")
        if self.unevaluated:
            lines.append(
                f"{len(self.unevaluated)} operating point(s) without a quality evaluation, excluded "
                "(evaluation.users in the scenario, or pretrained weights, gives one)"
            )
        return lines

    @property
    def nothing_qualifies(self) -> str:
        return f"no operating point meets the quality bar (NDCG >= {self.min_ndcg:g})"


def screen(points: Sequence[OperatingPoint], min_ndcg: float) -> QualityScreen:
    """Split `points` by the bar: evaluation NDCG mean >= min_ndcg qualifies; no evaluation is excluded."""
    result = QualityScreen(min_ndcg=min_ndcg)
    for point in points:
        if point.evaluation is None:
            result.unevaluated.append(point)
        elif point.evaluation.ndcg_mean >= min_ndcg:
            result.qualified.append(point)
        else:
            result.below.append(point)
    return result


def ndcg_text(point: OperatingPoint) -> str:
    """`NDCG@5 0.412 [0.371, 0.455]`, or `no evaluation`."""
    evaluation = point.evaluation
    if evaluation is None:
        return "no evaluation"
    ci = evaluation.ndcg_ci
    return f"NDCG@{evaluation.top_n} {evaluation.ndcg_mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]"
