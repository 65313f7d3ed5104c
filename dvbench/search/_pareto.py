"""Pareto fronts of noisy measurements: dvbench's one dominance rule, and what it orders.

Costs (GFLOPs, parameters, ...) are exact; an accuracy is an estimate with a standard error
(the test set's, and the seeds' once a candidate has two or more; see ``tables``). Every
decision that compares candidates -- the front, "dominated by" claims, the promotion order of
multi-fidelity rungs, the pre-filter's predicted front, which candidates get repeats, and the
hypervolume -- goes through :class:`DominanceRule`.

**The rule.** With confidence ``c`` (``z`` = the normal quantile of ``c``), ``a`` dominates
``b`` when ``a`` is no worse in every objective and better in one, where *no worse* in an
objective measured with standard errors means ``a - b > z * sqrt(se_a² + se_b²)``: the normal
approximation gives ``a``'s true value at least probability ``c`` of being above ``b``'s. In
an exact objective (SE 0) it is ``a >= b``. A candidate is on the front when no other
dominates it, so candidates whose accuracies are within the noise of each other stay on it
together (they are *tied*). ``c = 0`` is the strict rule of exact values (SEs ignored). A rule
between 0 and 0.5 would call a worse accuracy "no worse" and is refused.

**The order** (promotions, the pre-filter): non-dominated rank under the rule (0: the front;
1: dominated only by the front; ...), then NSGA-II's crowding distance within the rank (larger
first; the extremes first), then the probability of being on the front (higher first: of two
extremes, the one more surely on the front), then the number (earlier first), so the order is
total and the same on every worker.

**Front probability**: the share of draws in which a candidate is on the strict front of
values drawn from normal distributions (mean: the estimate; sd: its SE; costs exact),
:data:`DRAWS` draws from a fixed seed, so it is the same on every worker and every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import numpy as np
from scipy.stats import norm

DRAWS = 2000  # Monte Carlo draws for front probabilities and hypervolume intervals
_DRAW_SEED = 20260
_CHUNK = 200  # draws per vectorised block (memory: CHUNK x n x n x objectives booleans)


def as_gains(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """``values`` (rows x objectives) turned so that larger is better in every column."""
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * signs


def _errors(ses: Sequence[Sequence[float]] | None, shape: tuple[int, int]) -> np.ndarray:
    if ses is None:
        return np.zeros(shape)
    out = np.asarray(ses, dtype=float).reshape(shape)
    return np.where(np.isfinite(out) & (out > 0), out, 0.0)


@dataclass(frozen=True)
class DominanceRule:
    """Dominance at ``confidence`` (0: strict, on exact values; else 0.5 <= c < 1)."""

    confidence: float = 0.0

    def __post_init__(self) -> None:
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
            raise ValueError(f"confidence: a number in [0.5, 1) or 0, got {c!r}")
        if not (c == 0 or 0.5 <= c < 1):
            raise ValueError(f"confidence: 0 (strict) or in [0.5, 1), got {c!r}")

    @property
    def strict(self) -> bool:
        return self.confidence == 0

    @property
    def z(self) -> float:
        """The margin in standard errors a noisy difference must exceed (0 when strict)."""
        return 0.0 if self.strict else float(norm.ppf(self.confidence))

    # -------------------------------------------------------------------------- relations
    def matrix(
        self, values: Sequence[Sequence[float]], directions: Sequence[str], ses=None
    ) -> np.ndarray:
        """``D[i, j]``: candidate i dominates candidate j (rows of ``values``; ``ses`` the
        standard errors, same shape, 0 or None where exact)."""
        gains = as_gains(values, directions)
        errors = _errors(ses, gains.shape)
        diff = gains[:, None, :] - gains[None, :, :]
        if self.strict:
            no_worse = diff >= 0
        else:
            spread = np.sqrt(errors[:, None, :] ** 2 + errors[None, :, :] ** 2)
            no_worse = np.where(spread > 0, diff > self.z * spread, diff >= 0)
        return no_worse.all(axis=2) & (diff > 0).any(axis=2)

    def dominates(self, a, b, directions: Sequence[str], se_a=None, se_b=None) -> bool:
        """Whether point ``a`` dominates point ``b``."""
        ses = None
        if se_a is not None or se_b is not None:
            zeros = [0.0] * len(directions)
            ses = [se_a if se_a is not None else zeros, se_b if se_b is not None else zeros]
        return bool(self.matrix([a, b], directions, ses)[0, 1])

    def front(self, values, directions: Sequence[str], ses=None) -> np.ndarray:
        """Boolean mask of the candidates no other candidate dominates."""
        if len(values) == 0:
            return np.zeros(0, dtype=bool)
        return ~self.matrix(values, directions, ses).any(axis=0)

    def ranks(self, values, directions: Sequence[str], ses=None) -> list[int]:
        """Each candidate's front number (0: not dominated; 1: dominated only by front 0...).

        The rule's dominance has no cycles (a cycle would need equal costs and accuracies
        each above the next by a margin), so every candidate gets a rank.
        """
        beats = self.matrix(values, directions, ses)
        remaining = beats.sum(axis=0)
        ranks = [-1] * len(beats)
        current = [i for i in range(len(beats)) if remaining[i] == 0]
        rank = 0
        while current:
            following = []
            for i in current:
                ranks[i] = rank
                for j in np.flatnonzero(beats[i]):
                    remaining[j] -= 1
                    if remaining[j] == 0:
                        following.append(int(j))
            current, rank = following, rank + 1
        return ranks

    def tied(self, values, directions: Sequence[str], ses=None) -> np.ndarray:
        """``T[i, j]``: the noisy objectives do not tell i and j apart (every difference within
        ``z`` standard errors; with the strict rule: equal), and the exact ones play no part."""
        gains = as_gains(values, directions)
        errors = _errors(ses, gains.shape)
        noisy = (errors > 0).any(axis=0)
        if not noisy.any():
            noisy = np.zeros(gains.shape[1], dtype=bool)
        diff = np.abs(gains[:, None, noisy] - gains[None, :, noisy])
        spread = np.sqrt(errors[:, None, noisy] ** 2 + errors[None, :, noisy] ** 2)
        within = diff <= self.z * spread if not self.strict else diff == 0
        out = within.all(axis=2) if noisy.any() else np.zeros((len(gains),) * 2, dtype=bool)
        np.fill_diagonal(out, False)
        return out

    def order(
        self,
        values: Sequence[Sequence[float]],
        directions: Sequence[str],
        ids: Sequence[int],
        ses=None,
    ) -> list[int]:
        """``ids`` best first (see the module docstring)."""
        if len(ids) == 0:
            return []
        ranks = self.ranks(values, directions, ses)
        crowding = [0.0] * len(ids)
        for rank in set(ranks):
            members = [i for i, r in enumerate(ranks) if r == rank]
            points = [values[i] for i in members]
            for i, d in zip(members, crowding_distances(points, directions)):
                crowding[i] = d
        chance = front_probability(values, directions, ses)
        keyed = sorted(range(len(ids)), key=lambda i: (ranks[i], -crowding[i], -chance[i], ids[i]))
        return [ids[i] for i in keyed]


STRICT = DominanceRule()  # the strict rule of exact values (confidence 0)


def crowding_distances(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[float]:
    """NSGA-II's crowding distance of each point within its own set: per objective, the gap
    between the neighbouring values over the objective's range, summed; the extremes get
    infinity. Neighbours are taken among the distinct values, so equal points get equal
    distances whatever their order."""
    points = as_gains(values, directions)
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


def _draws(gains: np.ndarray, errors: np.ndarray, count: int) -> np.ndarray:
    """``count`` draws of every candidate's values (count x n x objectives), fixed seed."""
    rng = np.random.default_rng(_DRAW_SEED)
    noise = rng.standard_normal((count, *gains.shape))
    return gains[None] + noise * errors[None]


def front_probability(
    values: Sequence[Sequence[float]], directions: Sequence[str], ses=None, *, draws: int = DRAWS
) -> np.ndarray:
    """Each candidate's probability of being on the strict front of the true values (see the
    module docstring); exactly 0 or 1 when nothing is noisy."""
    gains = as_gains(values, directions)
    errors = _errors(ses, gains.shape)
    n = len(gains)
    if n == 0:
        return np.zeros(0)
    if not errors.any():
        return DominanceRule().front(values, directions).astype(float)
    on_front = np.zeros(n)
    drawn = _draws(gains, errors, draws)
    for start in range(0, draws, _CHUNK):
        block = drawn[start : start + _CHUNK]
        diff = block[:, :, None, :] - block[:, None, :, :]  # [k, i, j, m]: i minus j
        beaten = ((diff >= 0).all(axis=3) & (diff > 0).any(axis=3)).any(axis=1)
        on_front += (~beaten).sum(axis=0)
    return on_front / draws


# ------------------------------------------------------------------------------ hypervolume
def hypervolume(
    values: Sequence[Sequence[float]],
    directions: Sequence[str],
    reference: Sequence[float],
    scale: Sequence[float] | None = None,
) -> float:
    """Hypervolume of the points dominated inside ``reference`` (moocore's exact algorithm);
    with ``scale``, each objective's distance from the reference is divided by its scale (the
    normalised hypervolume; see ``tables.hypervolume_reference``). Points not strictly better
    than the reference in every objective add nothing."""
    if len(values) == 0:
        return 0.0
    losses = -as_gains(values, directions)
    ref = -as_gains([reference], directions)[0]
    if scale is not None:
        losses, ref = losses / np.asarray(scale, float), ref / np.asarray(scale, float)
    inside = np.all(losses < ref, axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(losses[inside], ref=ref))


def hypervolume_interval(
    values: Sequence[Sequence[float]],
    directions: Sequence[str],
    reference: Sequence[float],
    ses=None,
    *,
    scale: Sequence[float] | None = None,
    draws: int = 500,
) -> tuple[float, float]:
    """The 95 % interval of the hypervolume over the noise of the measurements (values drawn as
    for :func:`front_probability`); ``(hv, hv)`` when nothing is noisy."""
    gains = as_gains(values, directions)
    errors = _errors(ses, gains.shape)
    if len(gains) == 0 or not errors.any():
        value = hypervolume(values, directions, reference, scale)
        return value, value
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    samples = [
        hypervolume(drawn * signs, directions, reference, scale)
        for drawn in _draws(gains, errors, draws)
    ]
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)
