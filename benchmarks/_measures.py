"""Measures that reward accuracy, and the controls that must lose under them: how the
benchmarks judge a search policy (the pre-filter, multi-fidelity rungs, racing repeats).

A policy ends with a **chosen** set of candidates (the ones it trained in full) and its own
**estimate** of each one's accuracy (what it measured: one seed, or a mean of seeds). It is
judged against the **truth**: the seed mean of full-schedule runs, or a simulation's truth.
Every measure takes the whole pool (``truth``, ``cost``; one value a candidate) and the
policy's ``chosen`` indices into it.

Measures (:func:`measures` computes them all; :class:`Scorer` scores many sets of one pool):

- **regret at equal cost** (``regret``, accuracy points, 0 is perfect, lower is better).
  Budgets: :data:`BUDGETS` costs spaced evenly in log cost from the cheapest candidate to the
  dearest (:func:`budget_grid`; linearly when a cost is not positive). At budget ``b`` the
  policy picks, among its chosen candidates costing at most ``b``, the one its *estimate*
  ranks best (ties: the cheaper); its regret there is the best *true* accuracy of any
  candidate within ``b`` minus the pick's true accuracy. A budget under which the policy chose
  nothing counts as a pick of the **worst true accuracy of the pool** (not chance: chance
  would make one empty budget outweigh every resolved difference, the flaw this module
  replaces), so choosing something is never worse than choosing nothing. ``regret`` is the
  mean over the budgets.
- **front precision and recall** (``front_precision``, ``front_recall``, higher is better).
  The true front: the candidates no other candidate strictly dominates on (truth, cost).
  The policy's reported front: its chosen candidates no other chosen one dominates on
  (estimate, cost). Precision: the share of the reported front on the true front (NaN when
  nothing was chosen); recall: the share of the true front reported.
- **hypervolume share** (``hv_share``, secondary): the chosen set's hypervolume on (truth,
  cost) over the pool's, both axes scaled by the pool's range, the reference
  :data:`REFERENCE_MARGIN` of the ranges beyond the worst true accuracy and the dearest cost
  (:func:`hypervolume_reference`). A reference at chance accuracy would hand every set the
  area below the worst network (issue 36: the cheapest half kept >= 0.98 of it whatever the
  accuracies); even so a set of cheap networks keeps much of it, so it never decides.

Controls (each at the policy's compute):

- :func:`cheapest_k` -- the ``k`` cheapest (cost only, never looks at accuracy);
- :func:`random_control` -- ``k`` at random, its measures averaged over draws;
- :func:`permuted_control` -- the policy's own chosen set, scored after the true accuracies
  (and the estimates with them) are shuffled among the candidates: the same choices, now
  unrelated to accuracy; averaged over draws.

A measure judges nothing until :func:`check_measure` has shown that it ranks the permuted
control of a policy that reads accuracy (the benchmarks': every candidate trained once, the
front of the measurements kept) clearly worse than that policy: the paired difference
(permuted - reader), signed so that positive means "the permuted control is worse", has a
95 % bootstrap interval over the candidates above 0. A measure that reads only cost cannot
pass (the permuted control scores exactly what the policy does), nor can any measure where
the measured accuracies say nothing about the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dvbench.stats.pareto import DEFAULT_CONFIDENCE, STRICT, hypervolume

#: Cost budgets of the regret grid.
BUDGETS = 64
#: How far beyond the worst accuracy and the dearest cost the hypervolume reference lies, as
#: a share of each axis's range.
REFERENCE_MARGIN = 0.01
DIRECTIONS = ("maximize", "minimize")  # (accuracy, cost)
#: Each measure's better direction.
HIGHER_IS_BETTER = {
    "regret": False,
    "front_precision": True,
    "front_recall": True,
    "hv_share": True,
}
MEASURES = tuple(HIGHER_IS_BETTER)


def budget_grid(cost: Sequence[float], count: int = BUDGETS) -> np.ndarray:
    """``count`` budgets from the cheapest cost to the dearest, evenly in log cost (linearly
    when some cost is not positive)."""
    cost = np.asarray(cost, float)
    if count < 1:
        raise ValueError(f"count: at least 1 budget, got {count!r}")
    low, high = float(cost.min()), float(cost.max())
    if low > 0:
        return np.geomspace(low, high, count)
    return np.linspace(low, high, count)


def _best_by(score: np.ndarray, cost: np.ndarray, members: np.ndarray, budgets: np.ndarray):
    """For each budget, the member costing at most it with the highest ``score`` (the cheaper
    on ties), or -1 when none is within it."""
    members = np.asarray(members, int)
    if members.size == 0:
        return np.full(len(budgets), -1)
    order = members[np.lexsort((-score[members], cost[members]))]
    best, leaders = -np.inf, []
    for candidate in order:  # running best in cost order: the cheaper keeps a tie
        if score[candidate] > best:
            best = score[candidate]
            leaders.append(candidate)
        else:
            leaders.append(leaders[-1])
    affordable = np.searchsorted(cost[order], budgets, side="right")
    leaders = np.asarray(leaders)
    return np.where(affordable > 0, leaders[np.maximum(affordable - 1, 0)], -1)


class Scorer:
    """Every measure of chosen sets in one pool: ``truth``, ``cost`` and the policy's
    ``estimate`` (default: the truth), the pool's part (best per budget, true front, whole
    hypervolume) computed once."""

    def __init__(
        self,
        truth: Sequence[float],
        cost: Sequence[float],
        *,
        estimate: Sequence[float] | None = None,
        budgets: Sequence[float] | None = None,
    ) -> None:
        self.truth, self.cost = np.asarray(truth, float), np.asarray(cost, float)
        self.estimate = self.truth if estimate is None else np.asarray(estimate, float)
        if not self.truth.shape == self.cost.shape == self.estimate.shape:
            raise ValueError(
                f"truth, cost, estimate: one value a candidate, got {len(self.truth)}, "
                f"{len(self.cost)}, {len(self.estimate)}"
            )
        self.budgets = budget_grid(self.cost) if budgets is None else np.asarray(budgets, float)

    @cached_property
    def best_true(self) -> np.ndarray:
        best = _best_by(self.truth, self.cost, np.arange(len(self.truth)), self.budgets)
        return np.where(best >= 0, self.truth[np.maximum(best, 0)], np.nan)

    @cached_property
    def front(self) -> frozenset[int]:
        values = np.c_[self.truth, self.cost]
        return frozenset(np.flatnonzero(STRICT.front(values, DIRECTIONS)).tolist())

    @cached_property
    def reference(self) -> tuple[list[float], list[float]]:
        spans = [float(np.ptp(self.truth)) or 1.0, float(np.ptp(self.cost)) or 1.0]
        return [
            float(self.truth.min()) - REFERENCE_MARGIN * spans[0],
            float(self.cost.max()) + REFERENCE_MARGIN * spans[1],
        ], spans

    @cached_property
    def whole(self) -> float:
        return hypervolume(np.c_[self.truth, self.cost], DIRECTIONS, *self.reference)

    def regret(self, chosen: Sequence[int]) -> float:
        picks = _best_by(self.estimate, self.cost, np.asarray(chosen, int), self.budgets)
        picked = np.where(picks >= 0, self.truth[np.maximum(picks, 0)], self.truth.min())
        gaps = self.best_true - picked
        return float(np.mean(gaps[np.isfinite(gaps)])) if np.isfinite(gaps).any() else np.nan

    def front_precision_recall(self, chosen: Sequence[int]) -> tuple[float, float]:
        chosen = np.unique(np.asarray(chosen, int))
        if chosen.size == 0:
            return np.nan, 0.0
        values = np.c_[self.estimate[chosen], self.cost[chosen]]
        reported = chosen[STRICT.front(values, DIRECTIONS)]
        hits = len(self.front & set(reported.tolist()))
        return hits / len(reported), hits / len(self.front)

    def hypervolume_share(self, chosen: Sequence[int]) -> float:
        chosen = np.unique(np.asarray(chosen, int))
        if self.whole <= 0:
            return np.nan
        if chosen.size == 0:
            return 0.0
        values = np.c_[self.truth[chosen], self.cost[chosen]]
        return hypervolume(values, DIRECTIONS, *self.reference) / self.whole

    def __call__(self, chosen: Sequence[int]) -> dict[str, float]:
        """Every measure of :data:`MEASURES` for ``chosen``."""
        precision, recall = self.front_precision_recall(chosen)
        return {
            "regret": self.regret(chosen),
            "front_precision": precision,
            "front_recall": recall,
            "hv_share": self.hypervolume_share(chosen),
        }


def regret(
    chosen: Sequence[int],
    truth: Sequence[float],
    cost: Sequence[float],
    *,
    estimate: Sequence[float] | None = None,
    budgets: Sequence[float] | None = None,
) -> float:
    """Mean regret at equal cost of ``chosen`` (see the module docstring), in the units of
    ``truth``; the pick within a budget goes by ``estimate`` (default: the truth)."""
    return Scorer(truth, cost, estimate=estimate, budgets=budgets).regret(chosen)


def true_front(truth: Sequence[float], cost: Sequence[float]) -> np.ndarray:
    """Indices of the candidates no other one strictly dominates on (truth, cost)."""
    return np.array(sorted(Scorer(truth, cost).front), int)


def front_precision_recall(
    chosen: Sequence[int],
    truth: Sequence[float],
    cost: Sequence[float],
    *,
    estimate: Sequence[float] | None = None,
) -> tuple[float, float]:
    """(precision, recall) of the front ``chosen`` reports (on ``estimate``, default the
    truth) against the true front of the pool."""
    return Scorer(truth, cost, estimate=estimate).front_precision_recall(chosen)


def hypervolume_reference(
    truth: Sequence[float], cost: Sequence[float]
) -> tuple[list[float], list[float]]:
    """(reference, scale) of :func:`hypervolume_share`: the reference just below the worst
    true accuracy and just beyond the dearest cost, each axis scaled by its range."""
    return Scorer(truth, cost).reference


def hypervolume_share(
    chosen: Sequence[int], truth: Sequence[float], cost: Sequence[float]
) -> float:
    """The chosen set's share of the pool's hypervolume on (truth, cost)."""
    return Scorer(truth, cost).hypervolume_share(chosen)


def measures(
    chosen: Sequence[int],
    truth: Sequence[float],
    cost: Sequence[float],
    *,
    estimate: Sequence[float] | None = None,
    budgets: Sequence[float] | None = None,
) -> dict[str, float]:
    """Every measure of :data:`MEASURES` for ``chosen``."""
    return Scorer(truth, cost, estimate=estimate, budgets=budgets)(chosen)


def _mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.nanmean([r[name] for r in rows])) for name in rows[0]}


# ------------------------------------------------------------------------------- controls
def cheapest_k(cost: Sequence[float], k: int) -> np.ndarray:
    """The ``k`` cheapest candidates (the earlier on equal cost)."""
    return np.argsort(np.asarray(cost, float), kind="stable")[: max(int(k), 0)]


def front_order_k(score: Sequence[float], cost: Sequence[float], k: int) -> np.ndarray:
    """The first ``k`` in the search's order of (``score`` maximised, cost minimised): the
    pre-filter's predicted front, or, with an accuracy as the score, a policy that reads it."""
    values = np.c_[np.asarray(score, float), np.asarray(cost, float)]
    order = STRICT.order(values.tolist(), DIRECTIONS, list(range(len(values))))
    return np.asarray(order[: max(int(k), 0)], int)


def random_control(
    truth: Sequence[float],
    cost: Sequence[float],
    k: int,
    *,
    estimate: Sequence[float] | None = None,
    draws: int = 50,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Every measure of ``k`` candidates drawn at random, averaged over ``draws`` draws."""
    n = len(truth)
    k = min(max(int(k), 0), n)
    score = Scorer(truth, cost, estimate=estimate)
    return _mean([score(rng.choice(n, k, replace=False)) for _ in range(draws)])


def permuted_control(
    chosen: Sequence[int],
    truth: Sequence[float],
    cost: Sequence[float],
    *,
    estimate: Sequence[float] | None = None,
    draws: int = 50,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Every measure of the same ``chosen`` set after truth and estimate are shuffled together
    among the candidates (costs stay), averaged over ``draws`` permutations."""
    truth = np.asarray(truth, float)
    estimate = truth if estimate is None else np.asarray(estimate, float)
    rows = []
    for _ in range(draws):
        shuffle = rng.permutation(len(truth))
        rows.append(measures(chosen, truth[shuffle], cost, estimate=estimate[shuffle]))
    return _mean(rows)


# -------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class MeasureCheck:
    """Whether ``measure`` ranks the permuted control clearly below a policy that reads
    accuracy: ``reader`` its value for the policy, ``permuted`` for its permuted control,
    ``worse_by`` (permuted - reader, signed so that positive means the permuted control
    scores worse) with its bootstrap interval; ``passes`` when the interval is above 0."""

    measure: str
    reader: float
    permuted: float
    worse_by: float
    worse_by_low: float
    worse_by_high: float

    @property
    def passes(self) -> bool:
        return bool(self.worse_by_low > 0)


#: A measure as a function of ``(chosen, truth, cost, estimate)``.
Measure = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]
#: A policy's rule as a function of ``(estimate, cost)``: the indices it chooses.
Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]


def check_measure(
    measure: str | Measure,
    rule: Rule,
    truth: Sequence[float],
    cost: Sequence[float],
    *,
    estimate: Sequence[float] | None = None,
    higher_is_better: bool | None = None,
    resamples: int = 400,
    draws: int = 20,
    level: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> MeasureCheck:
    """The check of ``measure`` (a name of :data:`MEASURES`, or a :data:`Measure`) on one
    pool, with ``rule`` a policy that reads ``estimate`` (default: the truth): the policy's
    value against its permuted control's (``draws`` shuffles), and the interval of their
    difference over ``resamples`` bootstrap resamples of the candidates
    (``scipy.stats.bootstrap``, percentile), the rule re-applied to each resample."""
    from scipy.stats import bootstrap

    truth, cost = np.asarray(truth, float), np.asarray(cost, float)
    estimate = truth if estimate is None else np.asarray(estimate, float)
    if isinstance(measure, str):
        if measure not in HIGHER_IS_BETTER:
            raise ValueError(f"measure: one of {', '.join(MEASURES)}, got {measure!r}")
        name = measure
        higher_is_better = HIGHER_IS_BETTER[name] if higher_is_better is None else higher_is_better

        def measure(c, t, k, e):  # noqa: ANN001, ANN202 -- a Measure
            return measures(c, t, k, estimate=e)[name]

    else:
        name = getattr(measure, "__name__", "measure")
        if higher_is_better is None:
            raise ValueError("higher_is_better: required for a measure given as a function")
    sign = -1.0 if higher_is_better else 1.0

    def both(index: np.ndarray) -> tuple[float, float]:
        t, k, e = truth[index], cost[index], estimate[index]
        chosen = rule(e, k)
        rng = np.random.default_rng(seed)
        shuffles = [rng.permutation(len(t)) for _ in range(draws)]
        permuted = np.nanmean([measure(chosen, t[s], k, e[s]) for s in shuffles])
        return measure(chosen, t, k, e), float(permuted)

    def worse_by(index: np.ndarray) -> float:
        reader, permuted = both(index)
        return sign * (permuted - reader)

    everyone = np.arange(len(truth))
    reader, permuted = both(everyone)
    result = bootstrap(
        (everyone,), worse_by, vectorized=False, n_resamples=resamples, method="percentile",
        confidence_level=level, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    interval = result.confidence_interval
    return MeasureCheck(
        name, reader, permuted, sign * (permuted - reader), float(interval.low),
        float(interval.high),
    )  # fmt: skip
