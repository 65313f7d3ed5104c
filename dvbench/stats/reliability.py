"""Reliability and rank agreement: how reliable is a measurement, and how well does a cheap
signal rank candidates the way the (noisy) target does? (The fidelity benchmark's and the
yardstick's statistics; ``calibrate`` and the benchmarks read them.)

- :func:`icc` -- the intraclass correlation ICC(1,1) of a candidates x seeds table (Shrout &
  Fleiss 1979, one-way random effects): the share of a single measurement's variance that is
  between candidates, with its exact F-distribution 95 % interval; plus the seed sd and the
  between-candidate sd behind it. With ``covariate`` (each candidate's log cost) it is the
  ICC *at equal cost*: of the residuals after a least-squares line of the candidate means on
  the covariate, the between-candidate degrees of freedom reduced by the slope's one.
- :func:`leave_one_out_icc` -- the smallest ICC over leaving one candidate out (does the
  figure rest on one network?).
- :func:`seeds_for` -- the seeds a mean needs to reach a reliability (Spearman-Brown).
- :func:`expected_tau_ceiling` -- what a perfect predictor's Kendall tau against the target
  can be at most, given the target's reliability: for bivariate normal values tau is
  (2/pi) asin(r), and a perfect predictor correlates with a k-seed mean at sqrt(reliability of
  that mean) (Spearman-Brown). Seed-to-seed tau, (2/pi) asin(ICC), lies below it.
- :func:`rank_agreement` -- Kendall's tau-b and Spearman's rho of a signal against a target,
  with 95 % bootstrap intervals. With one target value per candidate the bootstrap resamples
  candidates (``scipy.stats.bootstrap``, paired). With several seeds per candidate the target
  is their mean and the bootstrap resamples candidates AND, within each, its target seeds, so
  the interval holds the target's own noise; scipy's bootstrap resamples one level only, so
  that two-level loop is written here.
- :func:`paired_tau_difference` -- tau(signal) - tau(reference) on the same resamples.
- :func:`spearman` -- Spearman's rho, NaN where a ranking is undefined (dvbench's one).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from dvbench.metrics import accuracy_standard_error
from dvbench.stats.pareto import DEFAULT_CONFIDENCE, percentile_interval

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "Reliability",
    "RankAgreement",
    "accuracy_standard_error",
    "expected_tau_ceiling",
    "icc",
    "leave_one_out_icc",
    "mean_reliability",
    "seeds_for",
    "paired_tau_difference",
    "rank_agreement",
    "spearman",
    "top_overlap",
]

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Reliability:
    """ICC(1,1) of a candidates x seeds table with its 95 % interval, and its parts."""

    candidates: int
    seeds: float  # seeds per candidate (harmonic mean when unequal)
    icc: float
    icc_low: float
    icc_high: float
    seed_sd: float  # within-candidate sd (one seed's noise)
    between_sd: float  # sd of the candidates' true values (from the variance components)


def icc(
    table: Sequence[Sequence[float]],
    *,
    level: float = DEFAULT_CONFIDENCE,
    covariate: Sequence[float] | Sequence[Sequence[float]] | None = None,
) -> Reliability:
    """ICC(1,1) of ``table`` (rows: candidates, columns: seeds; NaN where missing; rows with
    fewer than two values are left out). One-way random effects: MSB and MSW the between- and
    within-candidate mean squares, k the seeds per candidate (the harmonic mean when
    unequal), ICC = (MSB - MSW) / (MSB + (k - 1) MSW), and the interval from F = MSB / MSW.

    ``covariate`` (one value per row, e.g. log10 GFLOPs) makes it the ICC at equal cost: the
    candidate means are fitted by a line in the covariate (least squares weighted by each
    row's seeds), MSB is taken of the means' residuals with n - 2 degrees of freedom, and
    ``between_sd`` is the sd of the true values around that line. Several covariates (rows x
    p, e.g. log cost and an indicator of the code version a row was measured with) are fitted
    together, with n - 1 - p degrees of freedom."""
    values = [np.asarray(r, float) for r in table]
    keep = [i for i, r in enumerate(values) if np.isfinite(r).sum() >= 2]
    x_all = None
    if covariate is not None:
        x_all = np.asarray(covariate, float)
        x_all = x_all.reshape(len(x_all), -1)
        if len(x_all) != len(values):
            raise ValueError(f"covariate: {len(x_all)} values for {len(values)} rows")
        keep = [i for i in keep if np.isfinite(x_all[i]).all()]
    rows = [values[i][np.isfinite(values[i])] for i in keep]
    n = len(rows)
    fitted = 1 if x_all is None else 1 + x_all.shape[1]  # parameters fitted to the means
    if n < fitted + 1:
        return Reliability(n, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    sizes = np.array([len(r) for r in rows], float)
    total = sizes.sum()
    k = float(n / np.sum(1 / sizes))
    means = np.array([r.mean() for r in rows])
    if x_all is None:
        centre = np.full(n, np.concatenate(rows).mean())
    else:
        design = np.column_stack([np.ones(n), x_all[keep]])
        weight = np.sqrt(sizes)[:, None]
        coef, *_ = np.linalg.lstsq(design * weight, means * weight[:, 0], rcond=None)
        centre = design @ coef
    dfb = n - fitted
    msb = float(np.sum(sizes * (means - centre) ** 2) / dfb)
    dfw = total - n
    msw = float(sum(((r - r.mean()) ** 2).sum() for r in rows) / dfw)
    if msw == 0:
        value = 1.0 if msb > 0 else math.nan
        return Reliability(n, k, value, value, value, 0.0, math.sqrt(msb / k))
    ratio = msb / msw
    upper_q = stats.f.ppf(1 - (1 - level) / 2, dfb, dfw)
    lower_q = stats.f.ppf(1 - (1 - level) / 2, dfw, dfb)
    f_low, f_high = ratio / upper_q, ratio * lower_q
    value = (msb - msw) / (msb + (k - 1) * msw)
    between = max((msb - msw) / k, 0.0)
    return Reliability(
        candidates=n,
        seeds=k,
        icc=float(value),
        icc_low=float((f_low - 1) / (f_low + k - 1)),
        icc_high=float((f_high - 1) / (f_high + k - 1)),
        seed_sd=math.sqrt(msw),
        between_sd=math.sqrt(between),
    )


def leave_one_out_icc(
    table: Sequence[Sequence[float]], *, covariate: Sequence[float] | None = None
) -> float:
    """The smallest ICC (as :func:`icc`) over the tables with one candidate left out."""
    rows = list(table)
    values = []
    for out in range(len(rows)):
        kept = rows[:out] + rows[out + 1 :]
        x = None if covariate is None else [c for i, c in enumerate(covariate) if i != out]
        values.append(icc(kept, covariate=x).icc)
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else math.nan


def seeds_for(single: float, target: float = 0.7) -> float:
    """Spearman-Brown: the (fractional) number of seeds whose mean reaches reliability
    ``target`` from a single-seed reliability ``single`` (inf when ``single`` <= 0)."""
    if not math.isfinite(single):
        return math.nan
    if single <= 0:
        return math.inf
    if single >= target:
        return 1.0
    return target * (1 - single) / (single * (1 - target))


def mean_reliability(single: float, seeds: float) -> float:
    """Spearman-Brown: the reliability of a mean of ``seeds`` measurements of reliability
    ``single``."""
    if not math.isfinite(single):
        return math.nan
    single = min(max(single, 0.0), 1.0)
    return seeds * single / (1 + (seeds - 1) * single) if seeds * single > 0 else 0.0


def expected_tau_ceiling(reliability: float, seeds: float = 1) -> float:
    """The expected Kendall tau of a perfect predictor against a mean of ``seeds`` target
    measurements of single-seed reliability ``reliability``: (2/pi) asin(sqrt(rho_k))."""
    rho = mean_reliability(reliability, seeds)
    if not math.isfinite(rho):
        return math.nan
    return float(2 / math.pi * math.asin(math.sqrt(rho)))


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


def _ranked(x, y) -> bool:
    """Whether both sides rank: two values or more, neither constant (NaN passes: it makes
    the coefficient NaN)."""
    return len(x) >= 2 and np.ptp(x) != 0 and np.ptp(y) != 0


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic) if _ranked(x, y) else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of ``x`` against ``y`` (same length); NaN when either has fewer than two
    values or is constant (no rank order) or holds a NaN."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(stats.spearmanr(x, y).statistic) if _ranked(x, y) else math.nan


def _target_table(target) -> np.ndarray:
    """The target as a candidates x seeds array (one column when given one value each)."""
    array = np.asarray(target, dtype=float)
    return array[:, None] if array.ndim == 1 else array


def _usable(signal, target) -> tuple[np.ndarray, np.ndarray]:
    x, table = np.asarray(signal, dtype=float), _target_table(target)
    keep = np.isfinite(x) & np.isfinite(table).any(axis=1)
    return x[keep], table[keep]


def _row_means(table: np.ndarray) -> np.ndarray:
    counts = np.isfinite(table).sum(axis=1)
    return np.where(counts > 0, np.nansum(table, axis=1) / np.maximum(counts, 1), np.nan)


def top_overlap(signal: Sequence[float], target, fraction: float = 0.25) -> float:
    """Share of the target's top ``fraction`` (at least one candidate) found in the signal's
    top ``fraction``; higher is better for both (a seeds table is averaged)."""
    x, table = _usable(signal, target)
    if len(x) == 0:
        return math.nan
    y = _row_means(table)
    k = max(1, math.ceil(fraction * len(x)))
    top_x = set(np.argsort(-x, kind="stable")[:k].tolist())
    top_y = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(top_x & top_y) / k


def _resampled_targets(table: np.ndarray, picks: np.ndarray, rng) -> np.ndarray:
    """Each resample's target: for every picked candidate, the mean of its seeds drawn with
    replacement (from the seeds it has)."""
    out = np.empty(picks.shape)
    for b, pick in enumerate(picks):
        rows = table[pick]
        for i, row in enumerate(rows):
            seeds = row[np.isfinite(row)]
            out[b, i] = seeds[rng.integers(0, len(seeds), len(seeds))].mean()
    return out


def rank_agreement(
    signal: Sequence[float],
    target,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> RankAgreement:
    """Kendall's tau-b and Spearman's rho of ``signal`` against ``target`` (higher = better for
    both; ``target`` one value per candidate, or a candidates x seeds table whose row means are
    the target), with percentile bootstrap 95 % intervals (see the module docstring).
    Candidates with a missing value are left out."""
    x, table = _usable(signal, target)
    y = _row_means(table)
    tau, rho = _tau(x, y), spearman(x, y)
    intervals = [(math.nan, math.nan)] * 2
    if len(x) >= 3 and table.shape[1] == 1:
        data = (x, y)
        with warnings.catch_warnings():  # a degenerate resample: handled below
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            boot = stats.bootstrap(
                data, lambda a, b: np.array([_tau(a, b), spearman(a, b)]), paired=True,
                vectorized=False, n_resamples=resamples, method="percentile",
                random_state=np.random.default_rng(seed),
            )  # fmt: skip
        # the percentiles of the resamples where tau is defined (a resample of one repeated
        # candidate has none; scipy's own interval would be NaN then)
        taus, rhos = boot.bootstrap_distribution
        intervals = [percentile_interval(list(taus)), percentile_interval(list(rhos))]
    elif len(x) >= 3:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(x), (resamples, len(x)))
        targets = _resampled_targets(table, picks, rng)
        taus = [_tau(x[p], t) for p, t in zip(picks, targets)]
        rhos = [spearman(x[p], t) for p, t in zip(picks, targets)]
        intervals = [percentile_interval(taus), percentile_interval(rhos)]
    return RankAgreement(
        n=len(x),
        kendall_tau=tau,
        kendall_low=intervals[0][0],
        kendall_high=intervals[0][1],
        spearman_rho=rho,
        spearman_low=intervals[1][0],
        spearman_high=intervals[1][1],
        top_quarter=top_overlap(x, table),
    )


def paired_tau_difference(
    signal: Sequence[float],
    reference: Sequence[float],
    target,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float, float]:
    """tau(signal) - tau(reference) against ``target`` and its bootstrap interval at ``level``,
    both taus computed on the same resamples of candidates and target seeds (candidates
    missing either signal are left out)."""
    x, r = np.asarray(signal, float), np.asarray(reference, float)
    table = _target_table(target)
    keep = np.isfinite(x) & np.isfinite(r) & np.isfinite(table).any(axis=1)
    x, r, table = x[keep], r[keep], table[keep]
    y = _row_means(table)
    difference = _tau(x, y) - _tau(r, y)
    if len(x) < 3:
        return difference, math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(x), (resamples, len(x)))
    targets = _resampled_targets(table, picks, rng)
    draws = [_tau(x[p], t) - _tau(r[p], t) for p, t in zip(picks, targets)]
    low, high = percentile_interval(draws, level)
    return difference, low, high
