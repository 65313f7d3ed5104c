"""Multi-fidelity search, the rule: a space's ``fidelity:`` block and the promotion of
candidates from rung to rung by Pareto rank.

The method is asynchronous successive halving (ASHA; Li et al., "A System for Massively
Parallel Hyperparameter Tuning", MLSys 2020) with the single-objective "top 1/eta by loss"
replaced by the order of the study's dominance rule (:mod:`dvbench.stats.pareto`): NSGA-II's
(Deb et al., IEEE TEVC 2002) non-dominated rank under the noise-aware rule, then crowding
distance (larger first; the extremes of a front come first), then the probability of being
on the front (higher first), then the candidate's number (the earlier first), so the order is
total and the same on every worker. At a lower rung each candidate has one seed, so its
accuracy's standard error is the test set's.

Promotion rule (asynchronous, nobody waits for a rung to fill): a candidate that completed
rung k is promoted to rung k + 1 when it is among the first ``floor(n_k / eta)`` of the
``n_k`` candidates that have completed rung k so far, and it has not been promoted from
rung k before. Rungs are looked at from the top down (ASHA's order). As in ASHA, a candidate
promoted early, while few had completed the rung, stays promoted.

A candidate can never be promoted from rung k once ``floor(N / eta)`` completed candidates of
that rung dominate it, ``N`` being the study's number of candidates (dominators always rank
ahead, and no rung holds more than N): its checkpoint can go.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from dvbench.space.sections import refuse_unknown
from dvbench.stats.pareto import STRICT, DominanceRule
from dvbench.train import Budget, TrainSettings

UNITS = {"epochs": "ep", "steps": "steps", "seconds": "s"}


@dataclass(frozen=True)
class Fidelity:
    """Rungs as training budgets in ``unit``, increasing, and the reduction factor ``eta``.

    The learning-rate schedule's horizon is the top rung (epochs or steps; with seconds, the
    space's ``train.epochs``): every rung of a candidate is the same run, stopped and
    continued from its checkpoint, so rung k is the network one go to rung k gives.
    """

    rungs: tuple[float, ...]
    eta: int = 3
    unit: str = "epochs"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"fidelity.unit: one of {', '.join(UNITS)}, got {self.unit!r}")
        rungs = self.rungs
        if not isinstance(rungs, tuple) or len(rungs) < 2:
            raise ValueError(f"fidelity.rungs: at least two budgets, got {rungs!r}")
        for value in rungs:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not 0 < value <= 10_000_000:
                raise ValueError(f"fidelity.rungs: positive finite numbers, got {value!r}")
            if self.unit == "steps" and not float(value).is_integer():
                raise ValueError(f"fidelity.rungs: whole steps, got {value!r}")
        if any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"fidelity.rungs: must increase, got {list(rungs)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"fidelity.eta: an integer of at least 2, got {self.eta!r}")

    @classmethod
    def parse(cls, raw: Mapping) -> Fidelity:
        refuse_unknown("fidelity", raw, ("rungs", "eta", "unit"))
        rungs = raw.get("rungs")
        if not isinstance(rungs, (list, tuple)):
            raise ValueError(f"fidelity.rungs: a list of budgets, got {rungs!r}")
        return cls(rungs=tuple(rungs), eta=raw.get("eta", 3), unit=raw.get("unit", "epochs"))

    @property
    def top(self) -> int:
        return len(self.rungs) - 1

    def budget(self, rung: int) -> Budget:
        value = self.rungs[rung]
        if self.unit == "steps":
            return Budget(steps=int(value))
        return Budget(**{self.unit: float(value)})

    def label(self, rung: int) -> str:
        """``3ep``, ``500steps``, ``60s``: the suffix of the rung's table columns."""
        return f"{self.rungs[rung]:g}{UNITS[self.unit]}"


def horizon(settings: TrainSettings, fidelity: Fidelity) -> TrainSettings:
    """``settings`` with the schedule's horizon at the top rung (epochs or steps); with rungs in
    seconds, the settings' own epochs (the time limit is the rungs')."""
    top = fidelity.rungs[-1]
    if fidelity.unit == "epochs":
        return dataclasses.replace(settings, epochs=float(top), max_steps=None, time_limit_s=None)
    if fidelity.unit == "steps":
        return dataclasses.replace(settings, epochs=None, max_steps=int(top), time_limit_s=None)
    return dataclasses.replace(settings, time_limit_s=None)


@dataclass(frozen=True)
class RunPlan:
    """What one run of a candidate trains for: the schedule (``settings``, whose budget is the
    schedule's horizon), where this run stops (``budget``; None: the end of the schedule),
    and whether it continues the candidate's checkpoint (and leaves one for the next rung)."""

    settings: TrainSettings
    budget: Budget | None = None
    continues: bool = False


def training_plan(
    train: TrainSettings, fidelity: Fidelity | None, rung: int, repeat: int
) -> RunPlan:
    """The one place that decides what a run trains for.

    Without rungs, every run (a first run or a repeat) trains the space's whole schedule.
    With rungs, the schedule's horizon is the top rung (:func:`horizon`); a first-seed run
    stops at its rung, continuing the candidate's checkpoint; a repeat (another seed) trains
    from scratch to the top rung.
    """
    if fidelity is None:
        return RunPlan(train)
    settings = horizon(train, fidelity)
    if repeat:
        return RunPlan(settings, fidelity.budget(fidelity.top))
    return RunPlan(settings, fidelity.budget(rung), continues=True)


# ------------------------------------------------------------------------- the decisions
class Measured(NamedTuple):
    """A candidate's objective values at a rung and their standard errors (0 where exact)."""

    values: Sequence[float]
    errors: Sequence[float] | None = None


Rungs = Mapping[int, Mapping[int, "Measured | Sequence[float]"]]  # candidate -> rung -> values


def _measured(point) -> Measured:
    return point if isinstance(point, Measured) else Measured(point)


def _pool_arrays(points: Sequence) -> tuple[list, list | None]:
    measured = [_measured(p) for p in points]
    values = [list(m.values) for m in measured]
    if all(m.errors is None for m in measured):
        return values, None
    width = len(values[0]) if values else 0
    errors = [list(m.errors) if m.errors is not None else [0.0] * width for m in measured]
    return values, errors


def promotions(
    completed: Rungs,
    started: set[tuple[int, int]],
    directions: Sequence[str],
    fidelity: Fidelity,
    *,
    rule: DominanceRule = STRICT,
) -> list[tuple[int, int]]:
    """The (candidate, rung) runs to start now, from the top rung down, ordered by ``rule``.

    ``completed[c][k]`` holds candidate c's objective values at rung k (a :class:`Measured`
    with standard errors, or plain values), for every rung it completed (feasible, finite
    values only); ``started`` holds every (candidate, rung) for which a run exists in any
    state (so a promotion is never made twice).
    """
    out = []
    for rung in range(fidelity.top - 1, -1, -1):
        pool = sorted(c for c, rungs in completed.items() if rung in rungs)
        slots = len(pool) // fidelity.eta
        if not slots:
            continue
        values, errors = _pool_arrays([completed[c][rung] for c in pool])
        order = rule.order(values, directions, pool, errors)
        out += [(c, rung + 1) for c in order[:slots] if (c, rung + 1) not in started]
    return out


def beyond_promotion(
    completed: Rungs,
    started: set[tuple[int, int]],
    directions: Sequence[str],
    fidelity: Fidelity,
    candidates: int,
    *,
    rule: DominanceRule = STRICT,
) -> set[int]:
    """Candidates that can never be promoted again: at the top rung, or dominated (under
    ``rule``) at their highest completed rung by ``floor(candidates / eta)`` others (see the
    module docstring)."""
    limit = max(candidates // fidelity.eta, 1)
    out = set()
    for c, rungs in completed.items():
        rung = max(rungs)
        if (c, rung + 1) in started:
            continue
        if rung >= fidelity.top:
            out.add(c)
            continue
        others = [o for o in completed if o != c and rung in completed[o]]
        values, errors = _pool_arrays([rungs[rung]] + [completed[o][rung] for o in others])
        beaten = rule.matrix(values, directions, errors)[1:, 0]
        if int(beaten.sum()) >= limit:
            out.add(c)
    return out
