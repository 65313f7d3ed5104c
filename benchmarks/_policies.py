"""What a set of kept candidates is worth, with an interval, for the benchmarks that compare a
feature (the pre-filter, multi-fidelity rungs) with the trivial policies on the same compute.

A kept set is scored by the share of the whole pool's normalised hypervolume (top-1 against
GFLOPs; reference: chance accuracy and 1.1x the largest GFLOPs; each axis scaled 0..1) that
its own candidates hold, and by the share of the pool's noise-aware front it kept. Both come
with a 95 % interval over the accuracies' noise: the accuracies are drawn again from normal
distributions (their means, their standard errors) and everything is recomputed per draw. A
policy that draws (random) is also drawn anew each time, so its interval holds its own luck.

The trivial policies: ``cheapest``: the k cheapest by GFLOPs (cost only, never looks at
accuracy); ``params``: the first k of the predicted front with parameter count in place of
accuracy (the pre-filter's rule with the free signal); ``random``: k at random.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dvbench.search._pareto import DominanceRule, hypervolume

DIRECTIONS = ("maximize", "minimize")  # (top1, gflops)
DRAWS = 2000


def reference(gflops: np.ndarray, classes: int = 10) -> tuple[list[float], list[float]]:
    ref = [100.0 / classes, 1.1 * float(np.max(gflops))]
    return ref, [100.0 - ref[0], ref[1]]


def _hv(top1: np.ndarray, gflops: np.ndarray, index: np.ndarray, ref, scale) -> float:
    if len(index) == 0:
        return 0.0
    return hypervolume(np.c_[top1[index], gflops[index]], DIRECTIONS, ref, scale)


def _front(top1, gflops, index, errors, rule) -> set[int]:
    values = np.c_[top1[index], gflops[index]]
    ses = np.c_[errors[index], np.zeros(len(index))]
    return {int(i) for i, on in zip(index, rule.front(values, DIRECTIONS, ses)) if on}


def scores(
    top1: np.ndarray,
    errors: np.ndarray,
    gflops: np.ndarray,
    pool: np.ndarray,
    choose: Callable[[np.random.Generator], Sequence[int]],
    *,
    confidence: float = 0.95,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict[str, float]:
    """The kept set's hypervolume share and front share (point value: the measured
    accuracies, and the first ``choose``; intervals: over the accuracy noise and ``choose``'s
    own draws)."""
    rng = np.random.default_rng(seed)
    ref, scale = reference(gflops[pool])
    rule = DominanceRule(confidence)

    def one(accuracy: np.ndarray, kept: np.ndarray) -> tuple[float, float]:
        whole = _hv(accuracy, gflops, pool, ref, scale)
        front = _front(accuracy, gflops, pool, errors, rule)
        share = _hv(accuracy, gflops, kept, ref, scale) / whole if whole > 0 else np.nan
        return share, len(front & set(kept.tolist())) / len(front)

    point = one(top1, np.asarray(choose(np.random.default_rng(seed)), dtype=int))
    samples = []
    for _ in range(draws):
        drawn = top1 + rng.standard_normal(len(top1)) * errors
        samples.append(one(drawn, np.asarray(choose(rng), dtype=int)))
    samples = np.array(samples)
    low, high = np.nanpercentile(samples, [2.5, 97.5], axis=0)
    mean = np.nanmean(samples, axis=0)
    if getattr(choose, "draws", False):  # a policy that draws: its value is its mean
        point = tuple(mean)
    return {
        "hv_share": point[0], "hv_share_mean": mean[0], "hv_share_low": low[0],
        "hv_share_high": high[0], "front_kept": point[1], "front_kept_mean": mean[1],
        "front_kept_low": low[1], "front_kept_high": high[1],
    }  # fmt: skip


def cheapest(gflops: np.ndarray, pool: np.ndarray, k: int) -> Callable:
    chosen = pool[np.argsort(gflops[pool], kind="stable")[:k]]
    return lambda rng: chosen


def predicted_front(score: np.ndarray, gflops: np.ndarray, pool: np.ndarray, k: int) -> Callable:
    """The first k of the predicted front (``score`` in place of accuracy, with GFLOPs)."""
    order = DominanceRule().order(
        [[score[i], gflops[i]] for i in pool], DIRECTIONS, [int(i) for i in pool]
    )
    chosen = np.array(order[:k])
    return lambda rng: chosen


def random_k(pool: np.ndarray, k: int) -> Callable:
    def choose(rng: np.random.Generator) -> np.ndarray:
        return rng.choice(pool, k, replace=False)

    choose.draws = True  # type: ignore[attr-defined]
    return choose
