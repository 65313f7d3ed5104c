"""The hypervolume of a study's candidates: on normalised axes, from a meaningful reference,
with an interval over the accuracies' noise, and the share the cheapest candidate holds.

With the accuracy reference at 0 % and raw units, the cheapest candidate alone held 96 % of a
20-candidate study's hypervolume: it measured cost. Here the accuracy reference defaults to
chance (100 / classes), each axis is a fraction of the distance from the reference to the
ideal, the 95 % interval comes from the accuracies' standard errors (``dvbench.stats.pareto``), and
:attr:`HypervolumeSummary.cheapest_share` says how much of it cost alone explains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dvbench.metrics import ACCURACY_METRICS
from dvbench.search.tables import Criteria, candidates
from dvbench.stats.pareto import hypervolume, hypervolume_interval

__all__ = [
    "HypervolumeSummary",
    "hypervolume_history",
    "hypervolume_reference",
    "hypervolume_summary",
]


def _num_classes(frame: pd.DataFrame) -> int | None:
    for text in frame.get("config", pd.Series(dtype=object)).dropna():
        try:
            classes = json.loads(text).get("num_classes")
        except (TypeError, ValueError, AttributeError):
            continue
        if isinstance(classes, int) and classes > 0:
            return classes
    return None


@dataclass(frozen=True)
class HypervolumeSummary:
    """The front's hypervolume on normalised axes, with its 95 % interval over the accuracy
    noise, and the share the cheapest candidate alone holds (near 1: cost decides it)."""

    value: float
    low: float
    high: float
    reference: tuple[float, ...]
    scale: tuple[float, ...]
    sources: tuple[str, ...]  # where each reference coordinate comes from
    cheapest_share: float


def hypervolume_reference(
    frame: pd.DataFrame, criteria: Criteria, fixed: Mapping[str, float]
) -> tuple[list[float], list[float], list[str]]:
    """(reference, scale, sources) of the normalised hypervolume.

    The reference: the space's value where it fixes one (its constraint bound for a bounded
    cost); else chance accuracy (100 / classes) for an accuracy; else 1.1x the worst feasible
    cost (0.9x for a maximised one). The scale makes each axis a fraction: an accuracy's
    distance from the reference over the distance from the reference to 100 %; a minimised
    cost's distance over the reference itself (its ideal is 0); another maximised metric's
    over the best observed distance.
    """
    pool = candidates(frame, criteria.metrics)
    reference, scale, sources = [], [], []
    for m, d in zip(criteria.metrics, criteria.directions):
        column = pd.to_numeric(pool[m], errors="coerce") if not pool.empty else pd.Series([])
        if m in fixed:
            ref, source = float(fixed[m]), "set by the space"
        elif m in ACCURACY_METRICS:
            classes = _num_classes(frame)
            ref = 100.0 / classes if classes else 0.0
            source = f"chance, 1 in {classes} classes" if classes else "0 %"
        elif column.empty:
            ref, source = math.nan, "no feasible candidate"
        elif d == "minimize":
            ref, source = float(column.max()) * 1.1, "1.1 x the worst feasible value"
        else:
            ref, source = float(column.min()) * 0.9, "0.9 x the worst feasible value"
        if m in ACCURACY_METRICS and d == "maximize":
            span = 100.0 - ref
        elif d == "minimize":
            span = ref
        else:
            span = float(column.max()) - ref if not column.empty else math.nan
        reference.append(ref)
        scale.append(span if math.isfinite(span) and span > 0 else 1.0)
        sources.append(source)
    return reference, scale, sources


def hypervolume_summary(
    frame: pd.DataFrame, criteria: Criteria, fixed: Mapping[str, float]
) -> HypervolumeSummary | None:
    """The normalised hypervolume of the study's candidates; None for one objective or no
    usable reference."""
    if len(criteria.metrics) < 2:
        return None
    pool = candidates(frame, criteria.metrics)
    reference, scale, sources = hypervolume_reference(frame, criteria, fixed)
    if pool.empty or not all(math.isfinite(r) for r in reference):
        return None
    values, noise = criteria.values(pool), criteria.noise(pool)
    value = hypervolume(values, criteria.directions, reference, scale)
    low, high = hypervolume_interval(values, criteria.directions, reference, noise, scale=scale)
    cost = next((i for i, d in enumerate(criteria.directions) if d == "minimize"), None)
    cheapest = values[[int(np.argmin(values[:, cost]))]] if cost is not None else values[:0]
    alone = hypervolume(cheapest, criteria.directions, reference, scale)
    return HypervolumeSummary(
        value, low, high, tuple(reference), tuple(scale), tuple(sources),
        alone / value if value > 0 else math.nan,
    )  # fmt: skip


def hypervolume_history(
    frame: pd.DataFrame, criteria: Criteria, fixed: Mapping[str, float]
) -> pd.DataFrame:
    """The normalised hypervolume of the candidates completed up to each trial number."""
    pool = candidates(frame, criteria.metrics).sort_values("number")
    reference, scale, _ = hypervolume_reference(frame, criteria, fixed)
    rows = []
    if len(criteria.metrics) >= 2 and all(math.isfinite(r) for r in reference):
        values = criteria.values(pool)
        for k, number in enumerate(pool["number"], start=1):
            hv = hypervolume(values[:k], criteria.directions, reference, scale)
            rows.append({"number": int(number), "hypervolume": hv})
    return pd.DataFrame(rows, columns=["number", "hypervolume"])
