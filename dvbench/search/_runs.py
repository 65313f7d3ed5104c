"""A candidate's runs folded into one row, and the uncertainty of every accuracy.

A candidate may train more than once: to higher rungs of a multi-fidelity study (each a
trial that continues its checkpoint) and with more seeds where its place on the front is
unsure (repeats, see :mod:`dvbench.space.repeats`). ``runs.csv`` lists every run;
``trials.csv`` keeps one row per first run (a candidate, or a failed try at one) and folds its
other runs into it:

- multi-fidelity: ``top1@<budget>`` and ``train_s@<budget>`` for every rung its first seed
  completed, ``rung``/``budget`` of the highest, ``final`` when that is the top rung;
- each accuracy metric (``top1``, ``top5``) at its highest rung is the mean over the seeds that
  completed there, with ``<metric>_seeds`` and ``<metric>_seed_sd`` (sd over seeds, from two);
- ``train_s`` is the sum over every run (rungs and repeats): seeds are compute;
- ``trials``: the Optuna numbers of its completed runs (``optuna best-trials`` names those).

**Standard errors** (``<metric>_se``, used by every comparison; the model is
:mod:`dvbench.stats.noise`, its reasoning ``docs/statistics.md``): a mean over ``n`` seeds has
variance ``sigma²/n + tau²``. ``sigma²``, the seed variance of one run, is pooled over every
candidate with two or more seeds at the same budget, combined with the caller's calibration
prior where there is one; ``tau²``, the test set's, is the variance over images of the
candidate's seed-averaged per-image values over their number (the runs' stored outcomes,
:func:`record.outcomes_of`), else the binomial one of an accuracy in percent, else unknown (a
lower bound) -- less the seeds' own per-image flips where some candidate's repeats measured
them (``phi``, pooled like ``sigma²``, which holds them already). ``<metric>_se_from`` says
which (``seeds (pooled, df=4)``, ``calibration (df=16)``, ``test set only (lower bound)``...)
and ``<metric>_df`` gives the SE's Welch–Satterthwaite degrees of freedom. Each row keeps its
:class:`~dvbench.stats.noise.Estimate` of every noisy metric in the column ``noise``
(per-image values included, for the paired comparisons of ``tables``); that column is not
written to files. Baselines get the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from dvbench.metrics import ACCURACY_METRICS, METRICS, accuracy_standard_error
from dvbench.search.record import (
    CHECKPOINT_NOTE,
    FAIL_REASON,
    OUTCOMES,
    TRAIN_SEED,
    checkpoint_note_of,
    fail_reason,
    metrics_of,
    outcomes_of,
    run_of,
    timings_of,
    train_seed_of,
)
from dvbench.stats import Estimate, ImageOutcomes, SeedVariance, flip_variance

#: What a rung's training measures; the candidate row takes it from its highest rung.
_TRAINED = ("train_time_s", "train_images_per_s")
#: The column of each row's noise estimates (metric -> Estimate); never written to a file.
NOISE = "noise"
_IMAGES = "image_values"  # fold_runs -> add_uncertainty: metric -> seed-averaged per image


def runs_frame(
    trials: Sequence[optuna.trial.FrozenTrial], *, outcomes: bool = False
) -> pd.DataFrame:
    """Every run: its trial number, candidate, rung, repeat, budget, state, what it measured
    (with ``outcomes``: its per-image :class:`ImageOutcomes`, or None, in column ``outcomes``)."""
    rows = []
    for t in trials:
        mark = run_of(t)
        metrics, timings = metrics_of(t), timings_of(t)
        done = t.state == TrialState.COMPLETE
        rows.append({
            "number": t.number, "candidate": mark.candidate, "rung": mark.rung,
            "repeat": mark.repeat, "budget": mark.budget, "top": mark.top, "state": t.state.name,
            **{m: metrics.get(m) if done else None for m in ACCURACY_METRICS},
            "test_images": metrics.get("test_images"),
            TRAIN_SEED: train_seed_of(t),
            "train_s": timings.get("train_s"),
            "resumed_from_step": timings.get("resumed_from_step"),
            FAIL_REASON: fail_reason(t),
            CHECKPOINT_NOTE: checkpoint_note_of(t),
        })  # fmt: skip
        if outcomes:
            rows[-1][OUTCOMES] = outcomes_of(t) if done else None
    return pd.DataFrame(rows)


def _accuracy_columns(frame: pd.DataFrame) -> list[str]:
    return [m for m in ACCURACY_METRICS if m in frame.columns]


def fold_runs(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per trial, :func:`record.trial_row`) with every candidate's runs
    folded into its first run's row (see the module docstring)."""
    for column in ("candidate", "rung", "repeat", "budget"):  # only baselines: no trial yet
        if column not in frame.columns:
            frame = frame.assign(**{column: None})
    firsts = (frame["rung"].fillna(0) == 0) & (frame["repeat"].fillna(0) == 0)
    out = frame[firsts | frame["baseline"].astype(bool)].copy()
    accuracy = _accuracy_columns(out)
    multi = runs["budget"].notna().any() if not runs.empty else False
    done = runs[runs["state"] == "COMPLETE"] if not runs.empty else runs
    labels = list(dict.fromkeys(done.sort_values("rung")["budget"].dropna())) if multi else []
    extra = ["trials", *(f"{m}_seeds" for m in accuracy), *(f"{m}_seed_sd" for m in accuracy)]
    if multi:
        extra += ["final", *(f"{k}@{b}" for b in labels for k in ("top1", "train_s"))]
    for column in extra:
        out[column] = None
    by_number = frame.set_index("number", drop=False)
    groups = dict(tuple(done.groupby("candidate"))) if not done.empty else {}
    images: list[dict[str, tuple]] = [{} for _ in range(len(out))]
    for place, (index, row) in enumerate(out.iterrows()):
        if row["baseline"]:
            for m in accuracy:
                out.at[index, f"{m}_seeds"] = 1 if _finite(row[m]) else 0
            images[place] = _image_values([row.get(OUTCOMES)], accuracy)
            continue
        reached = groups.get(row["candidate"])
        if row["state"] != "COMPLETE" or reached is None:
            continue
        first_seed = reached[reached["repeat"] == 0].sort_values("rung")
        top_rung = int(reached["rung"].max())
        at_top = reached[reached["rung"] == top_rung]
        if multi:
            for run in first_seed.to_dict("records"):
                out.at[index, f"top1@{run['budget']}"] = run["top1"]
                out.at[index, f"train_s@{run['budget']}"] = run["train_s"]
            last = at_top.sort_values("repeat").iloc[0]
            out.at[index, "rung"] = top_rung
            out.at[index, "budget"] = last["budget"]
            out.at[index, "final"] = bool(top_rung == last["top"])
            highest = by_number.loc[last["number"]]
            for column in _TRAINED:
                if column in out.columns:
                    out.at[index, column] = highest[column]
        for m in accuracy:
            values = pd.to_numeric(at_top[m], errors="coerce").dropna().to_numpy(float)
            out.at[index, f"{m}_seeds"] = len(values)
            if len(values):
                out.at[index, m] = float(values.mean())
            if len(values) >= 2:
                out.at[index, f"{m}_seed_sd"] = float(values.std(ddof=1))
        trained = pd.to_numeric(reached["train_s"], errors="coerce").dropna()
        if len(trained):  # every run's seconds (an over-budget candidate trained none)
            out.at[index, "train_s"] = float(trained.sum())
        out.at[index, "trials"] = " ".join(str(n) for n in sorted(reached["number"]))
        if OUTCOMES in at_top.columns:
            images[place] = _image_values(at_top[OUTCOMES].tolist(), accuracy)
    out[_IMAGES] = images
    return out.drop(columns=[OUTCOMES], errors="ignore").reset_index(drop=True)


def _image_values(
    outcomes: Sequence[ImageOutcomes | None], metrics: Sequence[str]
) -> dict[str, tuple[np.ndarray, float, int]]:
    """Per metric with per-image values: their mean over the runs' outcomes (the runs with
    outcomes of the first one's length: one test set), the runs' :func:`flip_variance` (NaN
    for one run) and the number of runs."""
    usable = [o for o in outcomes if isinstance(o, ImageOutcomes) and len(o)]
    usable = [o for o in usable if len(o) == len(usable[0])]
    out = {}
    for m in metrics if usable else ():
        try:
            runs = np.stack([o.metric(m) for o in usable])
        except KeyError:  # no per-image values for it (top5)
            continue
        out[m] = (runs.mean(axis=0), flip_variance(runs), len(usable))
    return out


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as numbers (NaN where missing or not a number, or no such column)."""
    if name not in frame.columns:
        return pd.Series(math.nan, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce")


def add_uncertainty(
    frame: pd.DataFrame, *, prior: Mapping[str, Sequence[float]] | None = None
) -> pd.DataFrame:
    """``frame`` with ``<metric>_se``, ``<metric>_se_from`` and ``<metric>_df`` for every
    accuracy metric, and the column ``noise`` (see the module docstring). ``prior``: metric ->
    ``(seed_sd, df)`` or ``(seed_sd, df, flip_sd)`` of a calibration, used before (and pooled
    with) the study's own repeats (:meth:`SeedVariance.pooled`)."""
    frame = frame.copy()
    budgets = frame["budget"] if "budget" in frame.columns else pd.Series(None, index=frame.index)
    group = budgets.astype(object).where(budgets.notna(), "")
    images = frame[_IMAGES] if _IMAGES in frame.columns else pd.Series(None, index=frame.index)
    estimates: list[dict[str, Estimate]] = [{} for _ in range(len(frame))]
    prior = dict(prior or {})
    for m in _accuracy_columns(frame):
        seeds = _column(frame, f"{m}_seeds").fillna(1).clip(lower=1)
        sd = _column(frame, f"{m}_seed_sd")
        own = {i: v[m] for i, v in images.items() if isinstance(v, dict) and m in v}
        flips = pd.Series({i: v[1] for i, v in own.items()}, index=frame.index, dtype=float)
        flip_runs = pd.Series({i: v[2] for i, v in own.items()}, index=frame.index, dtype=float)
        pooled = {
            key: SeedVariance.pooled(
                sd[rows.index], seeds[rows.index], prior=prior.get(m),
                flips=flips[rows.index], flip_seeds=flip_runs[rows.index].fillna(0),
            )
            for key, rows in frame.groupby(group)
        }  # fmt: skip
        ses, sources, dfs = [], [], []
        for place, (index, row) in enumerate(frame.iterrows()):
            if not _finite(row[m]):
                ses.append(math.nan)
                sources.append(None)
                dfs.append(math.nan)
                continue
            seed = pooled[group[index]]
            values, _, runs = own.get(index, (None, math.nan, None))
            test_images = row.get("test_images")
            if values is not None and _finite(test_images) and len(values) != int(test_images):
                values = runs = None  # not the test set the metric was measured on
            test_var = math.nan
            if values is None and METRICS[m].unit == "%":  # a proportion: binomial, less phi
                binomial = accuracy_standard_error(row[m], test_images) ** 2
                test_var = max(binomial - seed.flip, 0.0) if math.isfinite(binomial) else math.nan
            estimate = Estimate(int(seeds[index]), seed, test_var, values, runs)
            estimates[place][m] = estimate
            ses.append(estimate.se)
            sources.append(estimate.label if math.isfinite(estimate.se) else None)
            dfs.append(estimate.df if math.isfinite(estimate.se) else math.nan)
        frame[f"{m}_se"] = np.array(ses, dtype=float)
        frame[f"{m}_se_from"] = sources
        frame[f"{m}_df"] = np.array(dfs, dtype=float)
    frame[NOISE] = estimates
    return frame.drop(columns=[_IMAGES], errors="ignore")
