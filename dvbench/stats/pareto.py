"""Pareto fronts of noisy measurements: dvbench's one dominance rule, what it orders, the
probability of being on the front, and the hypervolume.

Costs (GFLOPs, parameters, ...) are exact; a noisy objective (an accuracy, a test loss) is an
estimate whose errors :class:`~dvbench.stats.noise.Noise` describes: each candidate's variance
and degrees of freedom, and the variance of the difference of two candidates scored on the
same images (paired). Every method below takes either a ``Noise`` or, as before, an array of
standard errors (candidates x objectives; 0 or None where exact), which means independent
errors with infinite degrees of freedom. ``docs/statistics.md`` gives the reasoning.

**The rule.** At ``confidence`` ``c`` (``alpha = 1 - c``), candidate ``a`` dominates ``b``
when ``a`` is no worse than ``b`` in every exact objective and Holm's procedure over ``b``'s
family rejects "``a`` is not better than ``b`` in the noisy objectives". ``b``'s family is
every candidate no worse than it in every exact objective (costs are exact, so the family is
fixed before any accuracy is looked at); each test is one-sided, ``t`` with the difference's
Welch–Satterthwaite degrees of freedom (normal when infinite), and with several noisy
objectives its p-value is the largest of theirs (intersection-union: better in all). So the
chance of calling a true front member dominated is at most ``alpha`` per candidate, whatever
the number of comparisons. A pair with no error in any objective compares as exact values
(no worse in all, better in one). A candidate is on the front when none dominates it;
candidates whose accuracies are within the noise of each other stay on it together (*tied*).
``c = 0`` is the strict rule of exact values (errors ignored); a rule between 0 and 0.5 would
call a worse accuracy better and is refused.

**The order** (promotions, the pre-filter): non-dominated rank under the rule (0: the front;
1: dominated only by the front; ...), then NSGA-II's crowding distance within the rank (larger
first; the extremes first), then the probability of being on the front (higher first), then
the number (earlier first), so the order is total and the same on every worker.

**Front probability** (:func:`front_probability`): the share of :data:`DRAWS` draws (fixed
seed: the same on every worker) in which a candidate is on the strict front, the draws taken
from the posterior of the true values given the estimates -- not from independent normals
around the estimates, which over-states the front's certainty (the winners of a noisy front
are selected for their lucky draws). The posterior is a normal hierarchical model for each
noisy objective: the true values scatter around a linear trend in the log costs with a
between-candidate variance ``A``; the estimates scatter around the true values with the
noise's covariance (paired errors included). The trend is integrated out (flat prior), ``A``
is averaged over a grid by its restricted likelihood (flat prior on ``A``), and
the uncertainty of a pooled seed variance by a five-point quadrature of its scaled inverse
chi-square. Noisy objectives are drawn independently of each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import numpy as np
from scipy.stats import chi2, norm
from scipy.stats import t as student_t

from dvbench.stats.noise import Noise

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DRAWS",
    "STRICT",
    "DominanceRule",
    "as_gains",
    "as_noise",
    "crowding_distances",
    "front_probability",
    "holm",
    "hypervolume",
    "hypervolume_interval",
    "percentile_interval",
]

#: dvbench's confidence where a caller does not give one (the one place it is set): the
#: dominance rule's when a space does not say, and every interval's (ICC, bootstrap, knob
#: effects, hypervolume).
DEFAULT_CONFIDENCE = 0.95
DRAWS = 2000  # Monte Carlo draws for front probabilities
_DRAW_SEED = 20260
_CHUNK = 200  # draws per vectorised block (memory: CHUNK x n x n x objectives booleans)
_BETWEEN_GRID = 40  # points of the between-candidate sd's grid
_SEED_SCALE_POINTS = (0.1, 0.3, 0.5, 0.7, 0.9)  # quantiles of the seed variance's uncertainty
_MIN_RESIDUAL_DF = 3  # candidates beyond the trend's parameters that a trend needs


def as_gains(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """``values`` (rows x objectives) turned so that larger is better in every column."""
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * signs


def as_noise(ses, shape: tuple[int, int]) -> Noise:
    """``ses`` as a :class:`Noise` of ``shape`` (candidates, objectives): a Noise as it is; an
    array of standard errors as independent errors with infinite degrees of freedom; None as
    exact values."""
    if isinstance(ses, Noise):
        if ses.shape != tuple(shape):
            raise ValueError(f"noise: {ses.shape} for values of {tuple(shape)}")
        return ses
    if ses is None:
        return Noise.exact(*shape)
    return Noise.independent(np.asarray(ses, dtype=float).reshape(shape))


def holm(p_values: Sequence[float], alpha: float) -> np.ndarray:
    """Holm's step-down procedure (Holm 1979): which hypotheses to reject with family-wise
    error at most ``alpha``. (scipy offers only false-discovery-rate control; statsmodels'
    ``multipletests`` is not a dependency for these six lines.)"""
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    ordered = np.sort(p)
    passed = ordered <= alpha / (p.size - np.arange(p.size))
    rejected = p.size if passed.all() else int(np.argmin(passed))
    return p <= ordered[rejected - 1] if rejected else np.zeros(p.size, dtype=bool)


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
    def alpha(self) -> float:
        """The family-wise error of calling a candidate dominated (1 when strict)."""
        return 1.0 - self.confidence if not self.strict else 1.0

    @property
    def z(self) -> float:
        """The one-sided normal quantile of the confidence (0 when strict): the margin, in
        standard errors of a difference, of a single comparison with known errors."""
        return 0.0 if self.strict else float(norm.ppf(self.confidence))

    def quantile(self, df) -> np.ndarray:
        """The one-sided ``t`` quantile of the confidence at ``df`` (normal where infinite)."""
        return student_t.ppf(self.confidence, np.asarray(df, dtype=float))

    # -------------------------------------------------------------------------- relations
    def p_values(self, values, directions: Sequence[str], ses=None):
        """``(P, family)``: ``P[i, j]`` the one-sided p-value of "i is not better than j in the
        noisy objectives" (the largest over them), ``family[i, j]`` whether i belongs to j's
        family (no worse in every exact objective, some objective noisy for the pair)."""
        gains = as_gains(values, directions)
        return _tests(*_differences(gains, as_noise(ses, gains.shape)))

    def matrix(
        self, values: Sequence[Sequence[float]], directions: Sequence[str], ses=None
    ) -> np.ndarray:
        """``D[i, j]``: candidate i dominates candidate j (rows of ``values``; ``ses`` a
        :class:`Noise` or standard errors of the same shape, 0 or None where exact)."""
        gains = as_gains(values, directions)
        noise = as_noise(ses, gains.shape)
        exact = _strictly_dominates(gains[:, None, :] - gains[None, :, :])
        if self.strict or not noise.noisy.any():
            return exact
        diff, spread, dof = _differences(gains, noise)
        noisy = spread > 0
        out = exact & ~noisy.any(axis=2)  # pairs without error compare as exact values
        p, family = _tests(diff, spread, dof)
        ahead = np.where(noisy, diff > 0, True).all(axis=2)  # a guard at confidence 0.5
        for j in range(len(gains)):
            members = np.flatnonzero(family[:, j])
            if members.size:
                out[members, j] = holm(p[members, j], self.alpha) & ahead[members, j]
        return out

    def dominates(self, a, b, directions: Sequence[str], se_a=None, se_b=None) -> bool:
        """Whether point ``a`` dominates point ``b`` (a family of one: a single test)."""
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
        each above the next), so every candidate gets a rank.
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
        """``T[i, j]``: the noisy objectives do not tell i and j apart (no one-sided test at the
        confidence tells either better, pair by pair; with the strict rule: equal), and the
        exact ones play no part."""
        gains = as_gains(values, directions)
        noise = as_noise(ses, gains.shape)
        noisy = noise.noisy
        n = len(gains)
        if not noisy.any():
            return np.zeros((n, n), dtype=bool)
        diff, spread, dof = _differences(gains, noise)
        diff, spread, dof = np.abs(diff[..., noisy]), spread[..., noisy], dof[..., noisy]
        if self.strict:
            within = diff == 0
        else:
            within = np.where(spread > 0, diff <= self.quantile(dof) * spread, diff == 0)
        out = within.all(axis=2)
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


def _strictly_dominates(diff: np.ndarray) -> np.ndarray:
    """Strict dominance of exact values, from ``diff`` (..., objectives) of gains (one minus
    the other, larger better): no worse in every objective and better in one."""
    return (diff >= 0).all(axis=-1) & (diff > 0).any(axis=-1)


def _differences(gains: np.ndarray, noise: Noise):
    """(difference, its sd, its degrees of freedom), each n x n x objectives: i minus j."""
    diff = gains[:, None, :] - gains[None, :, :]
    spread = np.zeros_like(diff)
    dof = np.full_like(diff, math.inf)
    for m in np.flatnonzero(noise.noisy):
        variance, df = noise.difference(m)
        spread[..., m], dof[..., m] = np.sqrt(variance), df
    return diff, spread, dof


def _tests(diff: np.ndarray, spread: np.ndarray, dof: np.ndarray):
    """(P, family) of :meth:`DominanceRule.p_values` from :func:`_differences`."""
    noisy = spread > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(noisy, diff / np.where(noisy, spread, 1.0), 0.0)
    p = np.where(noisy, student_t.sf(score, dof), 0.0).max(axis=2, initial=0.0)
    family = np.where(noisy, True, diff >= 0).all(axis=2) & noisy.any(axis=2)
    np.fill_diagonal(family, False)
    return p, family


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


# ------------------------------------------------------------------------ front probability
def front_probability(
    values: Sequence[Sequence[float]], directions: Sequence[str], ses=None, *, draws: int = DRAWS
) -> np.ndarray:
    """Each candidate's probability of being on the strict front of the true values, under
    the posterior of the module docstring; exactly 0 or 1 when nothing is noisy."""
    gains = as_gains(values, directions)
    noise = as_noise(ses, gains.shape)
    n = len(gains)
    if n == 0:
        return np.zeros(0)
    if not noise.noisy.any():
        return STRICT.front(values, directions).astype(float)
    rng = np.random.default_rng(_DRAW_SEED)
    design = _trend_design(gains[:, ~noise.noisy])
    drawn = np.repeat(gains[None], draws, axis=0)
    for m in np.flatnonzero(noise.noisy):
        drawn[:, :, m] = _posterior_draws(gains[:, m], design, noise, m, draws, rng)
    if noise.noisy.sum() == 1:
        return _front_share_one_noisy(gains, drawn, int(np.flatnonzero(noise.noisy)[0]))
    return _front_share(drawn)


def _front_share_one_noisy(gains: np.ndarray, drawn: np.ndarray, noisy: int) -> np.ndarray:
    """:func:`_front_share` when one objective is drawn and the others are exact: who can
    dominate whom in the exact ones is fixed, so each candidate is compared with its possible
    dominators only (no draws x n x n x objectives block)."""
    exact = np.delete(gains, noisy, axis=1)
    no_worse = (exact[:, None, :] >= exact[None, :, :]).all(axis=2)  # [j, i]: j no worse
    better = (exact[:, None, :] > exact[None, :, :]).any(axis=2)
    values = drawn[:, :, noisy]
    on_front = np.ones(len(gains))
    for i in range(len(gains)):
        rivals = np.flatnonzero(no_worse[:, i])
        rivals = rivals[rivals != i]
        if not rivals.size:
            continue
        mine, theirs = values[:, i : i + 1], values[:, rivals]
        beaten = (theirs > mine) | ((theirs == mine) & better[rivals, i][None, :])
        on_front[i] = 1.0 - beaten.any(axis=1).mean()
    return on_front


def _front_share(drawn: np.ndarray) -> np.ndarray:
    """The share of draws (draws x n x objectives, gains) in which each is on the strict front."""
    on_front = np.zeros(drawn.shape[1])
    for start in range(0, len(drawn), _CHUNK):
        block = drawn[start : start + _CHUNK]
        diff = block[:, :, None, :] - block[:, None, :, :]  # [k, i, j, m]: i minus j
        beaten = _strictly_dominates(diff).any(axis=1)
        on_front += (~beaten).sum(axis=0)
    return on_front / len(drawn)


def _trend_design(exact: np.ndarray) -> np.ndarray:
    """The trend's columns: an intercept and each exact objective (its log where positive),
    standardised; the last ones dropped while fewer than ``_MIN_RESIDUAL_DF`` candidates are
    left over (a trend needs candidates to be estimated from)."""
    n = len(exact)
    columns = [np.ones(n)]
    for column in np.abs(exact).T:
        x = np.log(column) if (column > 0).all() else column
        if x.std() > 0:
            columns.append((x - x.mean()) / x.std())
    while len(columns) > 1 and n - len(columns) < _MIN_RESIDUAL_DF:
        columns.pop()
    return np.column_stack(columns)


def _posterior_draws(
    y: np.ndarray, design: np.ndarray, noise: Noise, objective: int, count: int, rng
) -> np.ndarray:
    """``count`` draws (count x n) of the true values of one noisy objective given the
    estimates ``y`` (see the module docstring)."""
    nu = noise.seed_df_of(objective)
    if math.isfinite(nu):  # sigma² = s² nu / chi²_nu: its quantiles, equally weighted
        scales = [nu / chi2.ppf(1 - q, nu) for q in _SEED_SCALE_POINTS]
    else:
        scales = [1.0]
    shares = np.diff(np.linspace(0, count, len(scales) + 1).round().astype(int))
    out = []
    for scale, share in zip(scales, shares):
        cov = noise.covariance(objective, scale)
        if len(y) - design.shape[1] < _MIN_RESIDUAL_DF - 1:  # too few to learn a spread
            out.append(_normal_draws(y, cov, share, rng))
        else:
            out.append(_hierarchical_draws(y, design, cov, share, rng))
    return np.concatenate(out)


def _normal_draws(mean: np.ndarray, cov: np.ndarray, count: int, rng) -> np.ndarray:
    lam, basis = np.linalg.eigh(cov)
    root = basis * np.sqrt(np.clip(lam, 0.0, None))
    return mean[None, :] + rng.standard_normal((count, len(mean))) @ root.T


def _hierarchical_draws(y, design, cov, count: int, rng) -> np.ndarray:
    """Draws of theta from y ~ N(theta, cov), theta ~ N(design @ beta, A I), beta flat, A on a
    grid (midpoints in sqrt(A)) weighted by its restricted likelihood and a flat prior on A."""
    n, p = design.shape
    lam, basis = np.linalg.eigh(cov)
    lam = np.clip(lam, 0.0, None)
    y_t, x_t = basis.T @ y, basis.T @ design  # in cov's eigenbasis W = A I + cov is diagonal
    ols, *_ = np.linalg.lstsq(design, y, rcond=None)
    spread = float(((y - design @ ols) ** 2).sum() / max(n - p, 1))
    tiny = 1e-12 * max(spread, float(lam.max()), 1e-300)
    top = 3.0 * math.sqrt(max(spread, float(lam.mean()), tiny))
    between_sd = top * (np.arange(_BETWEEN_GRID) + 0.5) / _BETWEEN_GRID  # midpoints: A > 0
    grid = between_sd**2
    fits = []
    for a in grid:
        weight = 1.0 / (a + lam + tiny)
        info = x_t.T @ (weight[:, None] * x_t)
        info_inv = np.linalg.pinv(info)
        beta = info_inv @ (x_t.T @ (weight * y_t))
        residual = y_t - x_t @ beta
        _, logdet = np.linalg.slogdet(info)
        loglik = -0.5 * (-np.log(weight).sum() + logdet + (weight * residual**2).sum())
        fits.append((loglik, beta, info_inv))
    logliks = np.array([f[0] for f in fits])
    chance = np.exp(logliks - logliks.max()) * between_sd  # dA = 2 sqrt(A) d sqrt(A): flat in A
    picks = np.bincount(
        rng.choice(len(grid), size=count, p=chance / chance.sum()), minlength=len(grid)
    )
    out = []
    for a, (_, beta, info_inv), k in zip(grid, fits, picks):
        if not k:
            continue
        betas = rng.multivariate_normal(beta, (info_inv + info_inv.T) / 2, size=k, method="eigh")
        pull = a / (a + lam + tiny)  # the weight of the estimate against the trend, per axis
        mean = (1 - pull)[None, :] * (betas @ x_t.T) + pull[None, :] * y_t[None, :]
        sd = np.sqrt(a * lam / (a + lam + tiny))
        out.append((mean + sd[None, :] * rng.standard_normal((k, n))) @ basis.T)
    return np.concatenate(out)


# ------------------------------------------------------------------------------ hypervolume
def hypervolume(
    values: Sequence[Sequence[float]],
    directions: Sequence[str],
    reference: Sequence[float],
    scale: Sequence[float] | None = None,
) -> float:
    """Hypervolume of the points dominated inside ``reference`` (moocore's exact algorithm);
    with ``scale``, each objective's distance from the reference is divided by its scale (the
    normalised hypervolume). Points not strictly better than the reference in every objective
    add nothing."""
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
    """The 95 % interval of the hypervolume over the noise of the measurements (values drawn
    around the estimates with the noise's covariance, paired errors included); ``(hv, hv)``
    when nothing is noisy."""
    gains = as_gains(values, directions)
    noise = as_noise(ses, gains.shape)
    if len(gains) == 0 or not noise.noisy.any():
        value = hypervolume(values, directions, reference, scale)
        return value, value
    rng = np.random.default_rng(_DRAW_SEED)
    drawn = np.repeat(gains[None], draws, axis=0)
    for m in np.flatnonzero(noise.noisy):
        drawn[:, :, m] = _normal_draws(gains[:, m], noise.covariance(m), draws, rng)
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    samples = [hypervolume(d * signs, directions, reference, scale) for d in drawn]
    return percentile_interval(samples)


def percentile_interval(
    draws: Sequence[float], level: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """The central ``level`` interval of ``draws`` (bootstrap resamples, Monte Carlo draws):
    their ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles (numpy's linear
    interpolation) over the finite ones; ``(nan, nan)`` when none is finite."""
    finite = [v for v in draws if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
