"""The one noise model of a measured metric: what a candidate's value is uncertain by, and what
the difference of two candidates scored on the same test images is uncertain by.

A run of a candidate, scored on a fixed test set of ``N`` images, measures its true value (the
expectation over training seeds and over test sets drawn from the same population) plus a
*seed term* (this seed's network; variance ``sigma²``, the same for every candidate of a study
at one budget) plus a *test-set term* (these ``N`` images; variance ``tau²``, the candidate's
own). The mean of ``n`` seeds, all scored on the same images, has variance

    sigma² / n  +  tau²                (the test-set term is *not* divided by the seeds)

- ``tau²`` is the variance over images of the candidate's seed-averaged per-image values
  (:meth:`ImageOutcomes.metric`) over ``N``, less the part of it that is the seeds' own
  per-image flips (``phi / n``; ``phi``, :func:`flip_variance`, is pooled like ``sigma²`` and 0
  until some candidate has two seeds with outcomes, when the estimate is conservative);
  without per-image outcomes the caller gives it (the binomial ``p(1-p)/N`` of an accuracy,
  less ``phi``) or it is unknown (treated as 0: a lower bound).
- ``sigma²`` is pooled over the study's candidates with two or more seeds at the same budget
  (within-candidate variance, ``sum(n_i - 1)`` degrees of freedom), combined with a calibration
  prior (``seed_sd`` with its degrees of freedom) where the caller has one
  (:meth:`SeedVariance.pooled`); a candidate never uses its own seeds' variance alone.
- Two candidates scored on the same images share the test set's error; their difference has
  variance ``sigma²/n_i + sigma²/n_j + Var_x(ybar_i(x) - ybar_j(x)) / N`` (paired, McNemar's
  for a proportion), the last term less ``phi/n_i + phi/n_j``. Without per-image outcomes the
  test terms count as independent, ``tau_i² + tau_j²`` (conservative when the errors are
  positively correlated).
- Degrees of freedom are Welch–Satterthwaite's: a test-set term counts as known (infinite),
  the seed variance has its pooled (or prior) degrees of freedom.

:class:`Noise` holds these parts for a set of candidates and objectives (seed shares with
their degrees of freedom, test-set covariances); the dominance rule and the front probability
(:mod:`dvbench.stats.pareto`) read it. ``docs/statistics.md`` gives the reasoning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "Estimate",
    "Noise",
    "SeedVariance",
    "flip_variance",
    "pooled_variance",
    "test_set_variance",
]


@dataclass(frozen=True)
class SeedVariance:
    """``sigma²``: the variance of one run's metric over training seeds, with its degrees of
    freedom and where it comes from (``seeds``, ``calibration``, both, or ``none``: unknown).

    ``flip`` (``phi``) is the part of ``sigma²`` that is each image's own seed-to-seed flips
    (:func:`flip_variance`, pooled; 0 when unknown): the variance over images of a candidate's
    seed-averaged per-image values holds it too, divided by the seeds, and it is taken out of
    the test-set term there so that it is not counted twice.

    Two candidates whose seed variances are equal are taken to share one estimate (the same
    pool or the same prior), which is what their difference's degrees of freedom need.
    """

    variance: float = math.nan
    df: float = 0.0
    source: str = "none"
    flip: float = 0.0

    @property
    def known(self) -> bool:
        return math.isfinite(self.variance) and self.variance >= 0 and self.df > 0

    @property
    def label(self) -> str:
        if not self.known:
            return "unknown"
        df = f"df={self.df:g}"
        if self.source == "calibration":
            return f"calibration ({df})"
        return f"{self.source} (pooled, {df})"

    @classmethod
    def pooled(
        cls,
        sds: Sequence[float],
        seeds: Sequence[int],
        *,
        prior: Sequence[float] | None = None,
        flips: Sequence[float] = (),
        flip_seeds: Sequence[int] = (),
    ) -> SeedVariance:
        """The within-candidate variance of candidates with ``seeds[i] >= 2`` runs and sample
        sd ``sds[i]`` (``sum((n_i - 1) sd_i²) / sum(n_i - 1)``), combined with ``prior`` =
        ``(seed_sd, df)`` or ``(seed_sd, df, flip_sd)`` weighted by degrees of freedom (the
        prior counts as that many degrees of freedom of earlier data; an infinite ``df`` is a
        known sd). ``flips[i]``: candidate i's :func:`flip_variance` over ``flip_seeds[i]``
        runs, pooled the same way (else the prior's ``flip_sd²``, else 0)."""
        sd = np.asarray(sds, dtype=float).reshape(-1)
        n = np.asarray(seeds, dtype=float).reshape(-1)
        if sd.shape != n.shape:
            raise ValueError(f"seed variance: {sd.size} sds but {n.size} seed counts")
        sum_squares, df = _pooled_sums(sd**2, n)
        flip = pooled_variance(flips, flip_seeds)[0]
        if prior is None:
            flip = flip if math.isfinite(flip) else 0.0
            return cls(sum_squares / df, df, "seeds", flip) if df else cls(flip=flip)
        prior_sd, prior_df, *rest = (float(v) for v in prior)
        if not (math.isfinite(prior_sd) and prior_sd >= 0) or not prior_df > 0 or len(rest) > 1:
            raise ValueError(f"seed variance prior: (sd >= 0, df > 0[, flip sd]), got {prior!r}")
        if not math.isfinite(flip):  # the study's own repeats first, then the calibration's
            flip = rest[0] ** 2 if rest and math.isfinite(rest[0]) else 0.0
        if math.isinf(prior_df):
            return cls(prior_sd**2, math.inf, "calibration", flip)
        if df == 0:
            return cls(prior_sd**2, prior_df, "calibration", flip)
        total = df + prior_df
        pooled = (sum_squares + prior_df * prior_sd**2) / total
        return cls(pooled, total, "seeds + calibration", flip)


def test_set_variance(image_values: np.ndarray) -> float:
    """``tau²`` of a mean over the test set: the variance over images (of the candidate's
    seed-averaged per-image values) over their number; NaN for no images."""
    values = np.asarray(image_values, dtype=float).reshape(-1)
    if values.size == 0:
        return math.nan
    return float(values.var() / values.size)


test_set_variance.__test__ = False  # a function of the model, not a pytest test


def flip_variance(runs: np.ndarray) -> float:
    """``phi`` of one candidate: the mean over images of the variance between its runs' values
    on each image (``runs``: seeds x images, two seeds or more), over the number of images --
    the part of one run's seed variance that is independent image by image. NaN for fewer
    than two runs."""
    values = np.asarray(runs, dtype=float)
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] == 0:
        return math.nan
    return float(values.var(axis=0, ddof=1).mean() / values.shape[1])


def pooled_variance(variances: Sequence[float], runs: Sequence[int]) -> tuple[float, float]:
    """``(pooled, df)``: the sample variances of groups of ``runs[i]`` runs each pooled by their
    degrees of freedom, ``sum((n_i - 1) v_i) / sum(n_i - 1)`` over the finite ones from two runs
    or more, and that ``sum(n_i - 1)``; ``(nan, 0)`` when there is none. (dvbench's one pooled
    variance: :meth:`SeedVariance.pooled` and the flips' ``phi`` pool with it.)"""
    sum_squares, df = _pooled_sums(variances, runs)
    return (sum_squares / df if df else math.nan), df


def _pooled_sums(variances: Sequence[float], runs: Sequence[int]) -> tuple[float, float]:
    """``(sum((n_i - 1) v_i), sum(n_i - 1))`` of :func:`pooled_variance`."""
    value = np.asarray(variances, dtype=float).reshape(-1)
    weight = np.asarray(runs, dtype=float).reshape(-1) - 1
    have = np.isfinite(value) & (weight >= 1)
    return float((weight[have] * value[have]).sum()), float(weight[have].sum())


@dataclass(frozen=True, eq=False)
class Estimate:
    """One candidate's measured value of one noisy metric: the mean of ``seeds`` runs, with
    the seed variance of one run (``seed``: pooled, prior or unknown), its test-set variance
    ``test_var`` (NaN: unknown) and, where kept, its per-image values averaged over
    ``image_seeds`` runs (default ``seeds``): then ``test_var`` is theirs,
    :func:`test_set_variance` less ``seed.flip / image_seeds`` (at least 0), and differences
    with another candidate's images of the same length are paired. A ``test_var`` given
    without images is taken as it is."""

    seeds: int
    seed: SeedVariance
    test_var: float = math.nan
    images: np.ndarray | None = None
    image_seeds: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seeds, bool) or int(self.seeds) < 1:
            raise ValueError(f"estimate: seeds must be at least 1, got {self.seeds!r}")
        if self.images is None:
            return
        images = np.asarray(self.images, dtype=float).reshape(-1)
        runs = int(self.image_seeds or self.seeds)
        object.__setattr__(self, "images", images if images.size else None)
        object.__setattr__(self, "image_seeds", runs)
        if images.size:  # they are the test-set term (and its pairing)
            own_flips = self.seed.flip / runs
            object.__setattr__(self, "test_var", max(test_set_variance(images) - own_flips, 0.0))

    @classmethod
    def given(cls, se: float, df: float = math.inf) -> Estimate:
        """A standard error given without its parts (a table's ``<metric>_se``): a known
        test-set term when ``df`` is infinite, else a seed term with ``df``."""
        variance = float(se) ** 2 if np.isfinite(se) and se > 0 else 0.0
        if math.isinf(df) or not df > 0:
            return cls(1, SeedVariance(), variance)
        return cls(1, SeedVariance(variance, float(df), "given"), 0.0)

    @property
    def seed_share(self) -> float:
        """``sigma² / n``: the seeds' part of the variance (0 when unknown)."""
        return self.seed.variance / self.seeds if self.seed.known else 0.0

    @property
    def test_known(self) -> bool:
        return math.isfinite(self.test_var)

    @property
    def variance(self) -> float:
        """``sigma²/n + tau²``; an unknown part counts as 0, both unknown give NaN."""
        if not self.seed.known and not self.test_known:
            return math.nan
        return self.seed_share + (self.test_var if self.test_known else 0.0)

    @property
    def se(self) -> float:
        return math.sqrt(self.variance) if math.isfinite(self.variance) else math.nan

    @property
    def df(self) -> float:
        """Welch–Satterthwaite degrees of freedom of the variance (the test-set term known)."""
        return _satterthwaite(
            self.variance, self.seed_share**2 / self.seed.df if self.seed.known else 0.0
        )

    @property
    def label(self) -> str:
        """Where the standard error comes from, as the tables say it (``<metric>_se_from``)."""
        if self.seed.known and self.test_known:
            return self.seed.label
        if self.seed.known:
            return f"{self.seed.label}; test set unknown (lower bound)"
        if self.test_known:
            return "test set only (lower bound)"
        return "unknown"


def _satterthwaite(total, contributions):
    """``total² / sum(v_k² / df_k)``: infinite where every part is known."""
    total = np.asarray(total, dtype=float)
    contributions = np.asarray(contributions, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(contributions > 0, total**2 / contributions, math.inf)
    return float(df) if df.ndim == 0 else df


@dataclass(frozen=True, eq=False)
class Noise:
    """The errors of ``n`` candidates' values in ``M`` objectives, in two parts.

    ``seed_var[i, m]``: candidate i's seed share ``sigma²/n_i`` (independent between
    candidates), ``seed_df[i, m]`` its degrees of freedom, ``seed_group[i, m]`` which estimate
    of ``sigma²`` it uses (one label: one estimate); ``test_cov[m]``: the ``n x n`` covariance of
    the candidates' test-set errors (diagonal ``tau_i²``; off-diagonal the shared images'
    covariance, 0 where not paired), None for an exact objective. Costs are exact: all zeros.
    """

    seed_var: np.ndarray
    seed_df: np.ndarray
    seed_group: np.ndarray
    test_cov: tuple[np.ndarray | None, ...]

    def __post_init__(self) -> None:
        seed_var = np.nan_to_num(np.asarray(self.seed_var, dtype=float), nan=0.0)
        if seed_var.ndim != 2:
            raise ValueError(
                f"noise: seed_var must be candidates x objectives, got {seed_var.shape}"
            )
        n, objectives = seed_var.shape
        seed_df = np.broadcast_to(np.asarray(self.seed_df, dtype=float), (n, objectives))
        group = np.broadcast_to(np.asarray(self.seed_group), (n, objectives))
        if len(self.test_cov) != objectives:
            raise ValueError(
                f"noise: {len(self.test_cov)} test covariances for {objectives} objectives"
            )
        covs = []
        for cov in self.test_cov:
            if cov is not None:
                cov = np.nan_to_num(np.asarray(cov, dtype=float), nan=0.0)
                if cov.shape != (n, n):
                    raise ValueError(f"noise: a test covariance of {cov.shape} for {n} candidates")
            covs.append(cov)
        object.__setattr__(self, "seed_var", np.clip(seed_var, 0.0, None))
        object.__setattr__(self, "seed_df", seed_df)
        object.__setattr__(self, "seed_group", group)
        object.__setattr__(self, "test_cov", tuple(covs))

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def exact(cls, n: int, objectives: int) -> Noise:
        return cls.independent(np.zeros((n, objectives)))

    @classmethod
    def independent(cls, ses, df=None) -> Noise:
        """Standard errors ``ses`` (candidates x objectives; 0, NaN or None where exact) of
        independent errors; ``df`` their degrees of freedom (default infinite: known)."""
        se = np.asarray(ses, dtype=float)
        se = np.where(np.isfinite(se) & (se > 0), se, 0.0)
        n, objectives = se.shape
        if df is None:
            covs = tuple(
                np.diag(se[:, m] ** 2) if se[:, m].any() else None for m in range(objectives)
            )
            return cls(np.zeros_like(se), math.inf, 0, covs)
        # a finite df makes each SE an estimate of its own (independent seed terms)
        dof = np.broadcast_to(np.asarray(df, dtype=float), se.shape)
        finite = np.isfinite(dof)
        covs = tuple(
            np.diag(np.where(finite[:, m], 0.0, se[:, m] ** 2)) if se[:, m].any() else None
            for m in range(objectives)
        )
        group = np.arange(1, n + 1)[:, None] * np.ones(objectives, dtype=int)
        return cls(np.where(finite, se**2, 0.0), dof, group, covs)

    @classmethod
    def of_estimates(
        cls, columns: Sequence[Sequence[Estimate] | None], n: int | None = None
    ) -> Noise:
        """The noise of one :class:`Estimate` per candidate for each noisy objective (None for
        an exact one). Candidates whose per-image values have the same length are paired."""
        if n is None:
            n = next((len(c) for c in columns if c is not None), 0)
        objectives = len(columns)
        seed_var = np.zeros((n, objectives))
        seed_df = np.full((n, objectives), math.inf)
        group = np.zeros((n, objectives), dtype=int)
        covs: list[np.ndarray | None] = []
        for m, column in enumerate(columns):
            if column is None:
                covs.append(None)
                continue
            if len(column) != n:
                raise ValueError(f"noise: objective {m} has {len(column)} estimates for {n}")
            labels: dict[SeedVariance, int] = {}
            for i, estimate in enumerate(column):
                seed_var[i, m] = estimate.seed_share
                if estimate.seed.known:
                    seed_df[i, m] = estimate.seed.df
                    group[i, m] = labels.setdefault(estimate.seed, len(labels) + 1)
            covs.append(_test_covariance(column))
        return cls(seed_var, seed_df, group, tuple(covs))

    # ------------------------------------------------------------------------- the parts
    @property
    def shape(self) -> tuple[int, int]:
        return self.seed_var.shape

    def __len__(self) -> int:
        return self.seed_var.shape[0]

    def test_var(self, objective: int) -> np.ndarray:
        cov = self.test_cov[objective]
        return np.zeros(len(self)) if cov is None else np.diag(cov).copy()

    @cached_property
    def variance(self) -> np.ndarray:
        """Each candidate's variance per objective (candidates x objectives)."""
        tests = (
            np.column_stack([self.test_var(m) for m in range(self.shape[1])])
            if self.shape[1]
            else self.seed_var
        )
        return self.seed_var + tests

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(self.variance)

    @cached_property
    def df(self) -> np.ndarray:
        """Each candidate's Welch–Satterthwaite degrees of freedom per objective."""
        with np.errstate(divide="ignore"):
            parts = np.where(np.isfinite(self.seed_df), self.seed_var**2 / self.seed_df, 0.0)
        return _satterthwaite(self.variance, parts)

    @cached_property
    def noisy(self) -> np.ndarray:
        """Objectives with any error (the others compare as exact values)."""
        return (self.variance > 0).any(axis=0)

    def difference(self, objective: int) -> tuple[np.ndarray, np.ndarray]:
        """(variance, degrees of freedom) of ``value_i - value_j`` for every pair (n x n)."""
        seed = self.seed_var[:, objective]
        test = self.test_var(objective)
        cov = self.test_cov[objective]
        paired = test[:, None] + test[None, :] - (2 * cov if cov is not None else 0.0)
        variance = seed[:, None] + seed[None, :] + np.clip(paired, 0.0, None)
        np.fill_diagonal(variance, 0.0)
        dof = self.seed_df[:, objective]
        group = self.seed_group[:, objective]
        with np.errstate(divide="ignore", invalid="ignore"):
            alone = np.where(np.isfinite(dof), seed**2 / dof, 0.0)
            same = (group[:, None] == group[None, :]) & (group[:, None] > 0)
            shared = np.where(same, (seed[:, None] + seed[None, :]) ** 2 / dof[:, None], 0.0)
        parts = np.where(same, shared, alone[:, None] + alone[None, :])
        return variance, _satterthwaite(variance, np.nan_to_num(parts, nan=0.0))

    def covariance(self, objective: int, seed_scale: float = 1.0) -> np.ndarray:
        """The n x n covariance of the candidates' errors in ``objective`` (the seed shares
        scaled by ``seed_scale``: a draw of the seed variance's own uncertainty)."""
        cov = self.test_cov[objective]
        out = np.zeros((len(self), len(self))) if cov is None else cov.copy()
        out[np.diag_indices(len(self))] += seed_scale * self.seed_var[:, objective]
        return out

    def seed_df_of(self, objective: int) -> float:
        """The fewest degrees of freedom of any candidate's seed share (inf: none estimated)."""
        seed = self.seed_var[:, objective] > 0
        return float(self.seed_df[seed, objective].min()) if seed.any() else math.inf

    def take(self, index) -> Noise:
        """The noise of the candidates ``index`` (indices or a boolean mask), in that order."""
        index = np.arange(len(self))[np.asarray(index)] if len(self) else np.asarray(index, int)
        covs = tuple(None if c is None else c[np.ix_(index, index)] for c in self.test_cov)
        return Noise(self.seed_var[index], self.seed_df[index], self.seed_group[index], covs)


def _test_covariance(column: Sequence[Estimate]) -> np.ndarray | None:
    """The test-set errors' covariance of one objective: ``tau_i²`` on the diagonal; for two
    candidates with per-image values of one length, ``Cov_x(ybar_i, ybar_j) / N`` off it (so
    that the difference's test term is ``Var_x(ybar_i - ybar_j) / N`` less their flips)."""
    tau = np.array([e.test_var if e.test_known else 0.0 for e in column])
    cov = np.diag(tau)
    by_length: dict[int, list[int]] = {}
    for i, estimate in enumerate(column):
        if estimate.images is not None:
            by_length.setdefault(estimate.images.size, []).append(i)
    for length, members in by_length.items():
        if len(members) < 2:
            continue
        images = np.stack([column[i].images for i in members])
        centred = images - images.mean(axis=1, keepdims=True)
        paired = centred @ centred.T / (length * length)
        np.fill_diagonal(paired, tau[members])  # tau², its seeds' flips taken out
        cov[np.ix_(members, members)] = paired
    return cov if cov.any() else None
