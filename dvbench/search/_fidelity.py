"""Rank statistics for the fidelity benchmark: how well does a signal order candidates the
way the long schedule does?

Pure functions of arrays (no training): Kendall's tau-b and Spearman's rho (scipy), their
bootstrap 95 % intervals over candidates, and top-quarter overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class RankAgreement:
    """How a signal's ranking agrees with a target ranking on the same candidates."""

    n: int
    kendall_tau: float
    kendall_low: float
    kendall_high: float
    spearman_rho: float
    spearman_low: float
    spearman_high: float
    top_quarter: float  # share of the target's top quarter that the signal's top quarter holds


def _finite_pairs(signal: Sequence[float], target: Sequence[float]) -> tuple[np.ndarray, ...]:
    x, y = np.asarray(signal, dtype=float), np.asarray(target, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def top_overlap(signal: Sequence[float], target: Sequence[float], fraction: float = 0.25) -> float:
    """Share of the target's top ``fraction`` (at least one candidate) found in the signal's
    top ``fraction``; higher is better for both."""
    x, y = _finite_pairs(signal, target)
    if len(x) == 0:
        return math.nan
    k = max(1, math.ceil(fraction * len(x)))
    top_x = set(np.argsort(-x, kind="stable")[:k].tolist())
    top_y = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(top_x & top_y) / k


def rank_agreement(
    signal: Sequence[float],
    target: Sequence[float],
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> RankAgreement:
    """Kendall's tau-b and Spearman's rho of ``signal`` against ``target`` (higher = better
    for both), with percentile bootstrap 95 % intervals: candidates are resampled with
    replacement ``resamples`` times (seeded). Candidates with a missing value are left out."""
    x, y = _finite_pairs(signal, target)
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    for _ in range(resamples if len(x) >= 3 else 0):
        pick = rng.integers(0, len(x), len(x))
        taus.append(_tau(x[pick], y[pick]))
        rhos.append(_rho(x[pick], y[pick]))
    tau_low, tau_high = _interval(taus)
    rho_low, rho_high = _interval(rhos)
    return RankAgreement(
        n=len(x),
        kendall_tau=_tau(x, y),
        kendall_low=tau_low,
        kendall_high=tau_high,
        spearman_rho=_rho(x, y),
        spearman_low=rho_low,
        spearman_high=rho_high,
        top_quarter=top_overlap(x, y),
    )


def _interval(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def accuracy_standard_error(accuracy_percent: float, test_images: int) -> float:
    """Binomial standard error, in points, of an accuracy measured on ``test_images``."""
    p = min(max(accuracy_percent / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1 - p) / max(test_images, 1))
