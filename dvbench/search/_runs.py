"""A candidate's runs folded into one row, and the uncertainty of every accuracy.

A candidate may train more than once: to higher rungs of a multi-fidelity study (each a
trial that continues its checkpoint) and with more seeds where its place on the front is
unsure (repeats, see ``_repeats``). ``runs.csv`` lists every run; ``trials.csv`` keeps one row
per first run (a candidate, or a failed try at one) and folds its other runs into it:

- multi-fidelity: ``top1@<budget>`` and ``train_s@<budget>`` for every rung its first seed
  completed, ``rung``/``budget`` of the highest, ``final`` when that is the top rung;
- each accuracy metric (``top1``, ``top5``) at its highest rung is the mean over the seeds that
  completed there, with ``<metric>_seeds`` and ``<metric>_seed_sd`` (sd over seeds, from two);
- ``train_s`` is the sum over every run (rungs and repeats): seeds are compute;
- ``trials``: the Optuna numbers of its completed runs (``optuna best-trials`` names those).

**Standard errors** (``<metric>_se``, used by every comparison, see ``_pareto``): one
evaluation of a network has the variance its seeds show -- pooled over every candidate with
two or more seeds at the same budget (within-candidate variance, which holds the test set's
sampling) -- and never less than the binomial variance of an accuracy on ``test_images``
images; a mean over ``n`` seeds has that over ``n``. Until some candidate has two seeds, the
binomial term alone is known: a lower bound, and the tables say so (``<metric>_se_from``).
Baselines get the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from dvbench.metrics import ACCURACY_METRICS, accuracy_standard_error
from dvbench.search.record import (
    CHECKPOINT_NOTE,
    FAIL_REASON,
    METRICS_ATTR,
    TIMINGS,
    TRAIN_SEED,
    run_of,
)

#: What a rung's training measures; the candidate row takes it from its highest rung.
_TRAINED = ("train_time_s", "train_images_per_s", "test_loss")


def runs_frame(trials: Sequence[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    """Every run: its trial number, candidate, rung, repeat, budget, state, what it measured."""
    rows = []
    for t in trials:
        mark = run_of(t)
        metrics, timings = t.user_attrs.get(METRICS_ATTR, {}), t.user_attrs.get(TIMINGS, {})
        done = t.state == TrialState.COMPLETE
        rows.append({
            "number": t.number, "candidate": mark.candidate, "rung": mark.rung,
            "repeat": mark.repeat, "budget": mark.budget, "top": mark.top, "state": t.state.name,
            **{m: metrics.get(m) if done else None for m in ACCURACY_METRICS},
            "test_images": metrics.get("test_images"),
            "train_seed": t.user_attrs.get(TRAIN_SEED),
            "train_s": timings.get("train_s"),
            "resumed_from_step": timings.get("resumed_from_step"),
            "fail_reason": t.user_attrs.get(FAIL_REASON),
            "checkpoint_note": t.user_attrs.get(CHECKPOINT_NOTE),
        })  # fmt: skip
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
    for index, row in out.iterrows():
        if row["baseline"]:
            for m in accuracy:
                out.at[index, f"{m}_seeds"] = 1 if _finite(row[m]) else 0
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
    return out.reset_index(drop=True)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def add_uncertainty(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``<metric>_se`` (and ``<metric>_se_from``: ``seeds`` when a pooled seed
    variance is known, ``test set`` otherwise) for every accuracy metric."""
    frame = frame.copy()
    budgets = frame["budget"] if "budget" in frame.columns else pd.Series(None, index=frame.index)
    group = budgets.astype(object).where(budgets.notna(), "")
    for m in _accuracy_columns(frame):
        seeds = pd.to_numeric(frame.get(f"{m}_seeds"), errors="coerce").fillna(1).clip(lower=1)
        sd = pd.to_numeric(frame.get(f"{m}_seed_sd"), errors="coerce")
        pooled: dict[object, float] = {}
        for key, members in frame.groupby(group):
            have = sd[members.index].notna() & (seeds[members.index] >= 2)
            dof = (seeds[members.index][have] - 1).sum()
            if dof > 0:
                pooled[key] = float(
                    ((seeds[members.index][have] - 1) * sd[members.index][have] ** 2).sum() / dof
                )
        ses, sources = [], []
        for index, row in frame.iterrows():
            binomial = accuracy_standard_error(row[m], row.get("test_images"))
            variance = binomial**2 if math.isfinite(binomial) else math.nan
            source = "test set"
            if group[index] in pooled:
                variance = max(pooled[group[index]], variance if math.isfinite(variance) else 0)
                source = "seeds"
            ses.append(math.sqrt(variance / seeds[index]) if _finite(row[m]) else math.nan)
            sources.append(source if _finite(row[m]) and math.isfinite(variance) else None)
        frame[f"{m}_se"] = np.array(ses, dtype=float)
        frame[f"{m}_se_from"] = sources
    return frame
