"""Multi-fidelity search, the rule: a space's ``fidelity:`` block and the promotion of
candidates from rung to rung by Pareto rank.

The method is asynchronous successive halving (ASHA; Li et al., "A System for Massively
Parallel Hyperparameter Tuning", MLSys 2020) with the single-objective "top 1/eta by loss"
replaced by the order NSGA-II uses (Deb et al., IEEE TEVC 2002): non-dominated rank first,
then crowding distance (larger first; the extremes of a front come first), then the
candidate's number (the earlier first), so the order is total and the same on every worker.

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

import numpy as np

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
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"fidelity.rungs: positive numbers, got {value!r}")
            if self.unit == "steps" and not float(value).is_integer():
                raise ValueError(f"fidelity.rungs: whole steps, got {value!r}")
        if any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"fidelity.rungs: must increase, got {list(rungs)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"fidelity.eta: an integer of at least 2, got {self.eta!r}")

    @classmethod
    def parse(cls, raw: Mapping) -> Fidelity:
        unknown = sorted(set(raw) - {"rungs", "eta", "unit"})
        if unknown:
            raise ValueError(f"fidelity.{unknown[0]}: unknown setting (rungs, eta, unit)")
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


# ----------------------------------------------------------------------------- the order
def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` dominates ``b`` (both as larger-is-better vectors)."""
    return bool(np.all(a >= b) and np.any(a > b))


def _as_maximized(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * signs


def non_dominated_ranks(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Each point's front number (0: not dominated; 1: dominated only by front 0; ...)."""
    points = _as_maximized(values, directions)
    n = len(points)
    beaten_by = [sum(_dominates(points[j], points[i]) for j in range(n)) for i in range(n)]
    beats = [[j for j in range(n) if _dominates(points[i], points[j])] for i in range(n)]
    ranks = [-1] * n
    current = [i for i in range(n) if beaten_by[i] == 0]
    rank = 0
    while current:
        following = []
        for i in current:
            ranks[i] = rank
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current, rank = following, rank + 1
    return ranks


def crowding_distances(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[float]:
    """NSGA-II's crowding distance of each point within its own set: per objective, the gap
    between the neighbouring values over the objective's range, summed; the extremes get
    infinity. Neighbours are taken among the distinct values, so equal points get equal
    distances whatever their order."""
    points = _as_maximized(values, directions)
    distance = np.zeros(len(points))
    for column in points.T:
        levels = np.unique(column)
        if len(levels) <= 2:  # every value is an extreme
            distance[:] = math.inf
            break
        span = levels[-1] - levels[0]
        gap = {levels[0]: math.inf, levels[-1]: math.inf}
        for k in range(1, len(levels) - 1):
            gap[levels[k]] = (levels[k + 1] - levels[k - 1]) / span
        distance += np.array([gap[v] for v in column])
    return distance.tolist()


def pareto_order(
    values: Sequence[Sequence[float]], directions: Sequence[str], ids: Sequence[int]
) -> list[int]:
    """``ids`` best first: non-dominated rank, then crowding distance within the rank (larger
    first), then the id (smaller first)."""
    ranks = non_dominated_ranks(values, directions)
    crowding = [0.0] * len(ids)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for i, d in zip(members, crowding_distances([values[i] for i in members], directions)):
            crowding[i] = d
    keyed = sorted(range(len(ids)), key=lambda i: (ranks[i], -crowding[i], ids[i]))
    return [ids[i] for i in keyed]


# ------------------------------------------------------------------------- the decisions
Rungs = Mapping[int, Mapping[int, Sequence[float]]]  # candidate -> rung -> objective values


def promotions(
    completed: Rungs,
    started: set[tuple[int, int]],
    directions: Sequence[str],
    fidelity: Fidelity,
) -> list[tuple[int, int]]:
    """The (candidate, rung) runs to start now, from the top rung down.

    ``completed[c][k]`` holds candidate c's objective values at rung k, for every rung it
    completed (feasible, finite values only); ``started`` holds every (candidate, rung) for
    which a run exists in any state (so a promotion is never made twice).
    """
    out = []
    for rung in range(fidelity.top - 1, -1, -1):
        pool = sorted(c for c, rungs in completed.items() if rung in rungs)
        slots = len(pool) // fidelity.eta
        if not slots:
            continue
        order = pareto_order([completed[c][rung] for c in pool], directions, pool)
        out += [(c, rung + 1) for c in order[:slots] if (c, rung + 1) not in started]
    return out


def beyond_promotion(
    completed: Rungs,
    started: set[tuple[int, int]],
    directions: Sequence[str],
    fidelity: Fidelity,
    candidates: int,
) -> set[int]:
    """Candidates that can never be promoted again: at the top rung, or dominated at their
    highest completed rung by ``floor(candidates / eta)`` others (see the module docstring)."""
    limit = candidates // fidelity.eta
    out = set()
    for c, rungs in completed.items():
        rung = max(rungs)
        if (c, rung + 1) in started:
            continue
        if rung >= fidelity.top:
            out.add(c)
            continue
        mine = _as_maximized([rungs[rung]], directions)[0]
        others = [
            _as_maximized([r[rung]], directions)[0]
            for o, r in completed.items()
            if o != c and rung in r
        ]
        if sum(_dominates(other, mine) for other in others) >= max(limit, 1):
            out.add(c)
    return out
