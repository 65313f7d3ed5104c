"""What each knob does to an objective *at equal cost*, in the objective's units, with an
interval that holds the seeds' noise (``docs/knob-effects.md`` shows how to read one).

Optuna's importances (fANOVA, PED-ANOVA) say how much each knob moves an objective, with no
interval and no adjustment for cost: on an accuracy axis that cost explains, they rank the knobs
that change the network's size. :func:`knob_effects` answers the other question: among networks
of the same cost, what does a knob's level change?

**Model.** Least squares over the runs (seeds of one candidate are several runs),
``objective ~ 1 + log2(cost) + knob terms``. A knob's coefficient is its effect with cost and
the other knobs held fixed: what the knob does beyond what its cost buys at the study's cost
trend. Cost is a function of the knobs, so a knob that mostly *sets* the cost (``width``) is
barely separable from the trend and gets a wide interval (a note gives its variance inflation):
that is the answer, not a failure. Baseline families enter as ``family`` contrasts in a fit of
their own, ``objective ~ 1 + log2(cost) + family`` (a baseline has no Dual-ViT knobs).

**Knob terms** (one coefficient per numeric knob, so that two dozen candidates carry ten knobs):
a knob with two levels is the high level against the low one; a numeric knob with more levels is
a line, *per doubling* when its levels form a geometric series (``width`` 16/32/64,
``semantic_grid`` 1/2/4: cost is multiplicative in them) and *per unit* otherwise (``depth3``
1..6); its curvature is not modelled (the slope is the average step). Knobs named in
``categorical`` and non-numeric ones get one contrast per level against a reference (the lowest
numeric level; else the most common label).

**Intervals.** Seeds of one candidate share its deviation from the model, so runs are not
independent: the covariance is cluster-robust by candidate. Every regressor is constant within a
candidate, so the fit of the runs *is* the fit of the candidate means weighted by their runs,
and clustering by candidate is heteroskedasticity-robust covariance of those means (a cluster's
score is its run count times its mean residual). Two estimators, both statsmodels':

- ``"CR2"`` (default): HC2 of the weighted candidate means, which is Bell and McCaffrey's CR2 by
  candidate: it divides each residual by sqrt(1 - leverage), undoing the shrinkage of residuals
  at high-leverage candidates, which is large when the K coefficients are a large share of the
  G candidates (ten knobs, two dozen candidates). Its t quantiles take Bell and McCaffrey's
  degrees of freedom per coefficient (:func:`_bell_mccaffrey_dof`): about three for a level
  held by four candidates, where G - K would claim twenty. Imbens and Kolesar (2016) recommend
  exactly this pair for few clusters.
- ``"CR1"``: ``cov_type="cluster"`` on the runs (Liang-Zeger with the G/(G-1) (N-1)/(N-K)
  factor) and t on G - 1 degrees of freedom, the usual few-cluster choice. With ten knobs and
  two dozen candidates it calls a knob with no effect distinguished far more often than 5 %
  (``docs/knob-effects.md``, the simulation), hence not the default.

Rows may be runs, or candidate means with ``runs`` naming the column that counts the runs behind
each: the estimates and intervals are the same (the fit only sees the means and counts).

**Joint, or one knob at a time.** The joint fit needs G - K >= :data:`MIN_RESIDUAL_DF`; with
fewer candidates, ``model="auto"`` fits each knob alone beside cost. Its effect is then what
candidates of equal cost at that level score, *the other knobs as the sampler drew them*: at
equal cost a wider network is also a shallower one, and that is part of the effect. The
``model`` column says which (``joint``, ``each``).

**Identifiability.** A term that is a linear combination of the terms before it (cost first,
then the knobs in the order given) is dropped with a note; a candidate alone at a level is left
out with a note (its contrast would be that one network's noise, and its leverage of 1 leaves
no residual); a knob with one value has no effect to estimate. With fewer than
:data:`MIN_CANDIDATES` candidates nothing is fitted (``skipped`` says why).

**Also returned:** the cost trend (objective per doubling of cost, from the cost-only fit) and
the adjusted R² of the candidate means on cost alone and on cost and every knob, so that a
reader sees how much of the objective is cost.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.stats.outliers_influence import variance_inflation_factor

from dvbench.stats.pareto import DEFAULT_CONFIDENCE

__all__ = [
    "COVARIANCES",
    "EFFECT_COLUMNS",
    "MIN_CANDIDATES",
    "MIN_RESIDUAL_DF",
    "NOT_DISTINGUISHED",
    "PER_DOUBLING",
    "PER_UNIT",
    "KnobEffects",
    "knob_effects",
]

#: Fewer completed candidates than this: no fit (the intervals would rest on a handful).
MIN_CANDIDATES = 10
#: The joint fit needs this many candidates beyond its coefficients (else one knob at a time).
MIN_RESIDUAL_DF = 8
#: The covariance estimators :func:`knob_effects` offers (see the module docstring).
COVARIANCES = ("CR2", "CR1")
#: A term's variance inflation above which a note says its interval is wide for that reason.
VIF_NOTE = 10.0
NOT_DISTINGUISHED = "not distinguished"
PER_UNIT, PER_DOUBLING = "per unit", "per doubling"
#: The columns of :meth:`KnobEffects.frame` (``effects.csv``), in order.
EFFECT_COLUMNS = (
    "knob",  # the knob; "family"; or the cost metric (its trend)
    "level",  # the level compared, or "per unit" / "per doubling" for a line
    "reference",  # the level it is compared with ("" for a line)
    "effect",  # in the objective's units, at equal cost
    "se",
    "ci_low",
    "ci_high",
    "p_value",  # two-sided, of effect = 0
    "better",  # whether the effect's sign improves the objective, given its direction
    "verdict",  # "better" / "worse" when the interval excludes 0, else "not distinguished"
    "n_candidates",
    "n_runs",
    "model",  # "joint", "each" (the knob alone beside cost), "family", "cost" (cost alone)
    "r2_adj_cost",  # adjusted R² of the candidate means on log cost alone
    "r2_adj_model",  # ... on log cost and every knob term (NaN where it cannot be fitted)
)
_ALIASED = 1e-8  # relative residual norm below which a column is a combination of others


@dataclass(frozen=True)
class KnobEffects:
    """The effects at equal cost on one objective (:func:`knob_effects`); :meth:`frame` is
    ``effects.csv``."""

    objective: str
    direction: str  # "maximize" or "minimize": which sign is better
    cost: str
    confidence: float
    covariance: str
    table: pd.DataFrame  # one row per term, :data:`EFFECT_COLUMNS`
    n_candidates: int  # candidates with a finite objective and a positive cost
    n_runs: int
    r2_adj_cost: float = math.nan
    r2_adj_model: float = math.nan
    model: str = ""  # "joint" or "each" for the knob rows; "" when no knob was fitted
    notes: tuple[str, ...] = ()  # terms dropped or left out, and why
    skipped: str | None = None  # why nothing was fitted

    def frame(self) -> pd.DataFrame:
        """``effects.csv``: every term, cost trend first."""
        return self.table.reindex(columns=list(EFFECT_COLUMNS))

    def knob_rows(self) -> pd.DataFrame:
        """The knobs' and families' rows (every term but the cost trend)."""
        return self.table[self.table["model"] != "cost"]


# ----------------------------------------------------------------------------- the factors
def _label(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


@dataclass(frozen=True)
class _Factor:
    """A knob (or ``family``) over the candidates, and how it is coded."""

    name: str
    present: np.ndarray  # bool per candidate: it has a value
    labels: np.ndarray  # str per candidate ("" where absent)
    numbers: np.ndarray | None  # float per candidate when every value is a number
    line: str | None  # PER_DOUBLING / PER_UNIT when coded as a line, else None (by level)
    reference: str | None = None  # the preferred reference level (family_reference)

    @classmethod
    def of(
        cls, name: str, values: pd.Series, *, categorical: bool, reference: str | None = None
    ) -> _Factor:
        present = values.notna().to_numpy()
        kept = values[present]
        labels = np.full(len(values), "", dtype=object)
        labels[present] = [_label(v) for v in kept]
        numbers = None
        if not any(isinstance(v, str) for v in kept):
            converted = pd.to_numeric(kept, errors="coerce")
            if converted.notna().all():
                numbers = np.full(len(values), np.nan)
                numbers[present] = converted.astype(float).to_numpy()
        line = None
        levels = np.unique(numbers[present]) if numbers is not None else ()
        if numbers is not None and len(levels) >= 3 and not categorical:
            line = PER_DOUBLING if _geometric(levels) else PER_UNIT
        return cls(name, present, labels, numbers, line, reference)

    def terms(self, rows: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """``(level, reference, column)`` over ``rows`` (indices); empty for one value."""
        labels = self.labels[rows]
        if self.line is not None:
            x = self.numbers[rows]
            if np.unique(x).size < 2:
                return []
            return [(self.line, "", np.log2(x) if self.line == PER_DOUBLING else x)]
        levels, counts = np.unique(labels, return_counts=True)
        if levels.size < 2:
            return []
        if self.numbers is not None:
            order = np.argsort([float(level) for level in levels], kind="stable")
            levels, counts = levels[order], counts[order]
            base = levels[0]
        else:
            base = levels[np.argmax(counts)]  # the most common (first in order on a tie)
        if self.reference is not None and self.reference in levels:
            base = self.reference
        return [(lvl, base, (labels == lvl).astype(float)) for lvl in levels if lvl != base]

    def lonely(self, rows: np.ndarray) -> list[str]:
        """Levels held by one candidate among ``rows`` (level-coded factors only)."""
        if self.line is not None:
            return []
        levels, counts = np.unique(self.labels[rows], return_counts=True)
        return sorted(levels[counts == 1]) if levels.size > 1 else []


def _geometric(levels: np.ndarray) -> bool:
    """Three or more sorted levels, each the last times one ratio (16/32/64)."""
    if len(levels) < 3 or levels[0] <= 0:
        return False
    ratios = levels[1:] / levels[:-1]
    return bool(np.allclose(ratios, ratios[0], rtol=1e-9))


def _aliased(design: np.ndarray) -> list[int]:
    """Columns that are linear combinations of the kept columns before them."""
    kept: list[int] = []
    dropped: list[int] = []
    for j in range(design.shape[1]):
        column = design[:, j]
        residual = column
        if kept:
            basis = design[:, kept]
            residual = column - basis @ np.linalg.lstsq(basis, column, rcond=None)[0]
        scale = max(float(np.linalg.norm(column)), 1.0)
        (kept if np.linalg.norm(residual) > _ALIASED * scale else dropped).append(j)
    return dropped


# ---------------------------------------------------------------------------------- a fit
@dataclass(frozen=True)
class _Candidates:
    """One entry per candidate: its mean objective over its runs, its runs, log2 cost."""

    mean: np.ndarray
    runs: np.ndarray
    log2_cost: np.ndarray


@dataclass(frozen=True)
class _Fit:
    """The statistics of each reported term of one fit."""

    terms: list[tuple[str, str, str]]  # (knob, level, reference)
    stats: np.ndarray  # per term: effect, se, ci_low, ci_high, p_value
    n_candidates: int
    n_runs: int
    r2_adj: float
    coefficients: int  # the terms, the intercept and (unless aliased) cost


def _regress(
    data: _Candidates, rows: np.ndarray, design: np.ndarray, *, covariance: str, confidence: float
) -> tuple[np.ndarray, float]:
    """Per coefficient (effect, se, low, high, p) and the adjusted R² of the means."""
    mean, runs = data.mean[rows], data.runs[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a near-exact fit's 0/0 stays NaN
        weighted = WLS(mean, design, weights=runs)
        if covariance == "CR2":
            result = weighted.fit(cov_type="HC2")
            dof = _bell_mccaffrey_dof(result.model.wexog, result.model.pinv_wexog)
        else:  # each mean repeated once per run: the runs' estimates and cluster sums
            counts = runs.astype(int)
            result = OLS(np.repeat(mean, counts), np.repeat(design, counts, axis=0)).fit(
                cov_type="cluster", cov_kwds={"groups": np.repeat(np.arange(len(mean)), counts)}
            )
            dof = np.full(design.shape[1], len(mean) - 1.0)
        plain = result if covariance == "CR2" else weighted.fit()  # R² of the means, not runs
        r2_adj = float(plain.rsquared_adj) if design.shape[1] > 1 else math.nan
        effect, se = np.asarray(result.params), np.asarray(result.bse)
        half = student_t.ppf(0.5 + confidence / 2, dof) * se
        p_value = 2 * student_t.sf(np.abs(effect / se), dof)
    return np.column_stack([effect, se, effect - half, effect + half, p_value]), r2_adj


def _bell_mccaffrey_dof(whitened: np.ndarray, pinv: np.ndarray) -> np.ndarray:
    """Per coefficient, the Satterthwaite degrees of freedom of its HC2 variance under
    independent equal-variance errors (Bell and McCaffrey 2002; Imbens and Kolesar 2016,
    section 3): the variance is e' M e with M = (I - H) diag(a**2 / (1 - h)) (I - H), a the
    coefficient's row of the pseudo-inverse, so dof = tr(M)**2 / tr(M M).

    statsmodels has HC2 but not these degrees of freedom (R's clubSandwich does); a dummy held
    by four candidates has about three, not G - K, and t on G - K under-covers it."""
    residual_maker = np.eye(whitened.shape[0]) - whitened @ pinv
    keep = 1 - np.diag(whitened @ pinv)
    dof = np.empty(pinv.shape[0])
    for j, a in enumerate(pinv):
        m = (residual_maker * (a**2 / keep)) @ residual_maker
        dof[j] = np.trace(m) ** 2 / np.sum(m * m)
    return dof


def _fit(
    data: _Candidates,
    rows: np.ndarray,
    factors: Sequence[_Factor],
    notes: list[str],
    *,
    what: str,
    covariance: str,
    confidence: float,
) -> _Fit | None:
    """Fit the means of ``rows`` on log2 cost and ``factors``; None (with a note) when the
    candidates cannot carry the terms."""
    while True:
        lonely = {f.name: f.lonely(rows) for f in factors}
        lonely = {name: levels for name, levels in lonely.items() if levels}
        if not lonely:
            break
        for factor in factors:
            levels = lonely.get(factor.name)
            if levels:
                notes.append(
                    f"{factor.name} = {', '.join(levels)}: one candidate only, left out of "
                    f"the {what} fit (its contrast would be that network's noise)"
                )
                rows = rows[~np.isin(factor.labels[rows], levels)]
    terms: list[tuple[str, str, str]] = []
    columns = [np.ones(rows.size), data.log2_cost[rows]]
    for factor in factors:
        coded = factor.terms(rows)
        if not coded and factor.name != "family":
            notes.append(f"{factor.name}: one value in the {what} fit, no effect to estimate")
        for level, reference, column in coded:
            terms.append((factor.name, level, reference))
            columns.append(column)
    design = np.column_stack(columns)
    dropped = _aliased(design)
    if 1 in dropped:
        notes.append(f"every candidate of the {what} fit has the same cost: cost is no term")
    for j in dropped:
        if j >= 2:
            knob, level, _ = terms[j - 2]
            notes.append(
                f"{knob} {level}: a combination of cost and the terms before it in the {what} "
                "fit; dropped"
            )
    keep = [j for j in range(design.shape[1]) if j not in dropped]
    design = design[:, keep]
    terms = [terms[j - 2] for j in keep if j >= 2]
    if rows.size - design.shape[1] < 1:
        notes.append(
            f"the {what} fit has {rows.size} candidates for {design.shape[1]} coefficients; "
            "not fitted"
        )
        return None
    stats, r2_adj = _regress(data, rows, design, covariance=covariance, confidence=confidence)
    first = design.shape[1] - len(terms)  # the intercept and (unless dropped) cost
    for i, (knob, level, _) in enumerate(terms):
        vif = variance_inflation_factor(design, first + i)
        if vif > VIF_NOTE:
            notes.append(
                f"{knob} {level}: variance inflation {vif:.0f} in the {what} fit (the other "
                "terms nearly determine it), hence its wide interval"
            )
    runs = int(data.runs[rows].sum())
    return _Fit(terms, stats[first:], rows.size, runs, r2_adj, design.shape[1])


def _cost_trend(data: _Candidates, rows: np.ndarray, **options) -> _Fit | None:
    """The cost-only fit: the objective per doubling of cost, and the fit's adjusted R²."""
    if rows.size < 3 or np.ptp(data.log2_cost[rows]) == 0:
        return None
    design = np.column_stack([np.ones(rows.size), data.log2_cost[rows]])
    stats, r2_adj = _regress(data, rows, design, **options)
    runs = int(data.runs[rows].sum())
    return _Fit([("", PER_DOUBLING, "")], stats[1:], rows.size, runs, r2_adj, 2)


# ------------------------------------------------------------------------------ the answer
def _candidates(
    rows: pd.DataFrame, *, objective: str, cost: str, candidate: str, runs: str | None
) -> tuple[pd.DataFrame, _Candidates]:
    """The first row of each usable candidate, and every candidate's mean over its runs."""
    value = pd.to_numeric(rows[objective], errors="coerce").to_numpy(float)
    price = pd.to_numeric(rows[cost], errors="coerce").to_numpy(float)
    count = pd.to_numeric(rows[runs], errors="coerce").to_numpy(float) if runs else None
    count = np.ones(len(rows)) if count is None else count
    usable = np.isfinite(value) & np.isfinite(price) & (price > 0) & (count >= 1)
    rows, value, price, count = rows[usable], value[usable], price[usable], count[usable]
    keys, first, inverse = np.unique(
        rows[candidate].astype(str).to_numpy(), return_index=True, return_inverse=True
    )
    mismatch = np.flatnonzero(~np.isclose(price, price[first][inverse], rtol=1e-9))
    if mismatch.size:
        raise ValueError(
            f"{cost}: candidate {keys[inverse[mismatch[0]]]!r} has runs of different {cost}; "
            "a candidate is one network"
        )
    total = np.bincount(inverse, weights=count, minlength=keys.size)
    mean = np.bincount(inverse, weights=value * count, minlength=keys.size) / total
    data = _Candidates(mean, total, np.log2(price[first]))
    return rows.iloc[first].reset_index(drop=True), data


def _table_rows(fit: _Fit, *, model: str, direction: str) -> list[dict]:
    sign = 1.0 if direction == "maximize" else -1.0
    out = []
    for (knob, level, reference), (effect, se, low, high, p) in zip(fit.terms, fit.stats):
        resolved = bool(np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0))
        better = bool(sign * effect > 0)
        out.append({
            "knob": knob, "level": level, "reference": reference, "effect": float(effect),
            "se": float(se), "ci_low": float(low), "ci_high": float(high),
            "p_value": float(p), "better": better,
            "verdict": ("better" if better else "worse") if resolved else NOT_DISTINGUISHED,
            "n_candidates": fit.n_candidates, "n_runs": fit.n_runs, "model": model,
        })  # fmt: skip
    return out


def _check(name: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))}")


def knob_effects(
    rows: pd.DataFrame,
    *,
    objective: str,
    direction: str,
    cost: str,
    knobs: Sequence[str],
    candidate: str = "candidate",
    runs: str | None = None,
    family: str | None = None,
    family_reference: str | None = None,
    categorical: Sequence[str] = (),
    confidence: float = DEFAULT_CONFIDENCE,
    covariance: str = "CR2",
    model: str = "auto",
) -> KnobEffects:
    """Each knob's effect on ``objective`` at equal ``cost``, with intervals (module docstring).

    ``rows``: one per run (``candidate`` names the network: seeds of one candidate share it), or
    one per candidate with ``runs`` naming the column that counts the runs its value is the mean
    of. ``cost`` is the raw cost (GFLOPs: the model takes log2). ``direction`` says which sign of
    an effect is better. ``knobs`` may be missing (NaN) on the rows of another ``family`` (a
    baseline): such rows enter the family fit only. ``family_reference``: the family others are
    compared with (default: the most common). ``model``: ``"joint"``, ``"each"`` or ``"auto"``
    (joint when the candidates exceed its coefficients by :data:`MIN_RESIDUAL_DF`).
    """
    _check("direction", direction, ("maximize", "minimize"))
    _check("covariance", covariance, COVARIANCES)
    _check("model", model, ("auto", "joint", "each"))
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence!r} is not between 0 and 1")
    knobs = list(dict.fromkeys(knobs))
    needed = [candidate, objective, cost, *knobs, *(c for c in (runs, family) if c)]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ValueError(f"rows: no column {', '.join(map(repr, missing))}")
    unknown = sorted(set(categorical) - set(knobs))
    if unknown:
        raise ValueError(f"categorical: {unknown!r} are not among the knobs")
    firsts, data = _candidates(rows, objective=objective, cost=cost, candidate=candidate,
                               runs=runs)  # fmt: skip
    answer = {
        "objective": objective, "direction": direction, "cost": cost, "confidence": confidence,
        "covariance": covariance, "n_candidates": data.mean.size, "n_runs": int(data.runs.sum()),
    }  # fmt: skip
    empty = pd.DataFrame(columns=list(EFFECT_COLUMNS))
    if data.mean.size < MIN_CANDIDATES:
        reason = (
            f"{data.mean.size} candidates with a finite {objective} and {cost}; at least "
            f"{MIN_CANDIDATES} are needed"
        )
        return KnobEffects(table=empty, skipped=reason, **answer)
    options = {"covariance": covariance, "confidence": confidence}
    notes: list[str] = []
    factors = [_Factor.of(k, firsts[k], categorical=k in categorical) for k in knobs]
    kinds = None
    if family is not None:
        kinds = _Factor.of("family", firsts[family].astype(str), categorical=True,
                           reference=family_reference)  # fmt: skip
    everything = np.arange(data.mean.size)
    with_knobs = everything[np.all([f.present for f in factors], axis=0)] if knobs else everything
    # knob rows of several families (Dual-ViT variants with the same knobs): within-family
    nuisance = [kinds] if kinds is not None and np.unique(kinds.labels[with_knobs]).size > 1 else []
    trend = _cost_trend(data, with_knobs, **options)
    table = _table_rows(trend, model="cost", direction=direction) if trend else []
    if table:
        table[0]["knob"] = cost
    chosen, r2_model = "", math.nan
    if knobs and with_knobs.size >= MIN_CANDIDATES:
        joint_notes: list[str] = []
        joint = _fit(data, with_knobs, [*nuisance, *factors], joint_notes, what="joint",
                     **options)  # fmt: skip
        r2_model = joint.r2_adj if joint is not None else math.nan
        spare = joint.n_candidates - joint.coefficients if joint is not None else -1
        joint_fits = model == "joint" or (model == "auto" and spare >= MIN_RESIDUAL_DF)
        chosen = "joint" if joint_fits else "each"
        if joint_fits:
            notes += joint_notes
            fits = [joint]
        else:
            fits = [
                _fit(data, with_knobs, [*nuisance, factor], notes, what=factor.name, **options)
                for factor in factors
            ]
        for fit in fits:
            if fit is not None:
                rows_of = _table_rows(fit, model=chosen, direction=direction)
                table += [row for row in rows_of if row["knob"] != "family"]
    elif knobs:
        notes.append(
            f"{with_knobs.size} candidates have every knob; at least {MIN_CANDIDATES} are "
            "needed for knob effects"
        )
    if kinds is not None and np.unique(kinds.labels).size > 1:
        fit = _fit(data, everything, [kinds], notes, what="family", **options)
        table += _table_rows(fit, model="family", direction=direction) if fit else []
    frame = pd.DataFrame(table, columns=list(EFFECT_COLUMNS)) if table else empty
    frame["r2_adj_cost"] = trend.r2_adj if trend is not None else math.nan
    frame["r2_adj_model"] = r2_model
    return KnobEffects(
        table=frame,
        r2_adj_cost=trend.r2_adj if trend is not None else math.nan,
        r2_adj_model=r2_model,
        model=chosen,
        notes=tuple(dict.fromkeys(notes)),
        **answer,
    )
