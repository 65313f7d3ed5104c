"""Multi-fidelity tables: one row per candidate, fronts that compare like with like.

A multi-fidelity study holds one trial per run of a candidate at a rung (see ``_ladder``).
``trials.csv`` keeps one row per rung-0 run (a candidate, or a failed try at one) and folds
its later rungs into it: ``top1@<budget>`` and ``train_s@<budget>`` for every rung it
completed, ``rung``/``budget`` of the highest, ``final`` when that is the top rung, and the
objective columns at the highest rung. ``rungs.csv`` lists every run, whatever its state.

Fronts compare accuracies at the same budget: the final front (``pareto.csv``) is over the
candidates that reached the top rung; the provisional front (``provisional.csv``) is, for
each lower rung, the non-dominated candidates among those that stopped there, compared at
that rung.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
import pandas as pd

from dvbench.search.tables import RUNG_ATTR

RUNG_COLUMNS = ("candidate", "rung", "budget", "final")
# what a rung's training measures (dvbench.evaluate.training_metrics); taken from the highest
_TRAINED = ("top1", "top5", "train_time_s", "train_images_per_s")


def rung_runs(trials: Sequence[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    """Every rung run: its trial number, candidate, rung, budget, state and what it measured."""
    rows = []
    for t in trials:
        mark = t.user_attrs.get(RUNG_ATTR) or {"candidate": t.number, "rung": 0}
        metrics, timings = t.user_attrs.get("metrics", {}), t.user_attrs.get("timings", {})
        rows.append({
            "number": t.number, "candidate": mark["candidate"], "rung": mark["rung"],
            "budget": mark.get("budget"), "top": mark.get("top"), "state": t.state.name,
            "top1": metrics.get("top1") if t.state.name == "COMPLETE" else None,
            "train_s": timings.get("train_s"),
            "resumed_from_step": timings.get("resumed_from_step"),
            "fail_reason": t.user_attrs.get("fail_reason"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def fold_rungs(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per trial) with the promotions folded into their candidate's row."""
    if runs.empty:
        return frame
    rung = dict(zip(runs["number"], runs["rung"]))
    out = frame[frame["number"].map(lambda n: 0 if pd.isna(n) else rung.get(n, 0)) == 0].copy()
    done = runs[runs["state"] == "COMPLETE"].sort_values(["candidate", "rung"])
    labels = list(dict.fromkeys(done.sort_values("rung")["budget"].dropna()))
    for column in (*RUNG_COLUMNS, *(f"{k}@{b}" for b in labels for k in ("top1", "train_s"))):
        out[column] = None
    by_number = frame.set_index("number", drop=False)
    candidate_of = dict(zip(runs["number"], runs["candidate"]))
    for index, row in out.iterrows():
        if row["baseline"] or pd.isna(row["number"]) or row["state"] != "COMPLETE":
            continue
        candidate = candidate_of.get(row["number"], row["number"])
        reached = done[done["candidate"] == candidate]
        if reached.empty:
            continue
        for run in reached.to_dict("records"):
            out.at[index, f"top1@{run['budget']}"] = run["top1"]
            out.at[index, f"train_s@{run['budget']}"] = run["train_s"]
        last = reached.iloc[-1]
        out.at[index, "candidate"] = int(candidate)
        out.at[index, "rung"] = int(last["rung"])
        out.at[index, "budget"] = last["budget"]
        out.at[index, "final"] = bool(last["rung"] == last["top"])
        highest = by_number.loc[last["number"]]
        for column in _TRAINED:
            if column in out.columns:
                out.at[index, column] = highest[column]
        out.at[index, "train_s"] = float(reached["train_s"].fillna(0).sum())  # every rung's
    return out.reset_index(drop=True)


def provisional_frame(
    frame: pd.DataFrame, metrics: Sequence[str], directions: Sequence[str]
) -> pd.DataFrame:
    """For each rung below the top, the front of the candidates that stopped there."""
    from dvbench.search.tables import pareto_frame

    if frame.empty or "final" not in frame.columns:
        return frame.iloc[0:0]
    parts = []
    stopped = frame[(frame["final"] == False) & frame["rung"].notna()]  # noqa: E712
    for _, group in stopped.groupby("rung"):
        front = pareto_frame(group.drop(columns="final"), metrics, directions)
        if not front.empty:
            parts.append(front)
    if not parts:
        return frame.iloc[0:0]
    out = pd.concat(parts)
    out.insert(out.columns.get_loc("rung") + 1, "final", False)
    return out.sort_values(["rung", "number"]).reset_index(drop=True)
