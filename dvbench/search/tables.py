"""Study -> pandas tables: every trial, the Pareto front, baselines, hypervolume.

Tables are computed from the study's storage alone, so any worker (or ``dvbench report``)
can write them, and they are written atomically (temporary file + rename): a reader never
sees a half-written file. Each trial row names the space version it ran under
(``space_version``); the front, the dominance of baselines and the hypervolume use the
trials of the newest version only (see :func:`front_version`), so that a front never mixes
two spaces' constraints.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from dvbench.metrics import METRICS

BASELINE_ATTR_PREFIX = "baseline:"
RUNG_ATTR = "rung"  # multi-fidelity: {"candidate", "rung", "budget", "top"} of a rung run
SPACE_VERSION = "space_version"  # trial attribute and column: the space version it ran under
#: Metric columns of the tables: every metric of :mod:`dvbench.metrics`, in its order.
METRIC_COLUMNS = tuple(name for name, m in METRICS.items() if m.kind != "proxy")
#: Proxy metric columns appear only in studies that measure them.
PROXY_COLUMNS = tuple(name for name, m in METRICS.items() if m.kind == "proxy")
TIMING_COLUMNS = ("count_s", "train_s", "profile_s", "duration_s")


def started_by(trial: optuna.trial.FrozenTrial) -> str | None:
    """host:pid of the worker that started this trial, or None if none did (yet).

    A retried trial inherits its predecessor's attributes, so the record names its trial.
    """
    record = trial.user_attrs.get("worker")
    if isinstance(record, dict):
        return record.get("id") if record.get("trial") == trial.number else None
    return record  # studies from before several workers: a plain host:pid


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool | None:
    """Within the space's constraints (as reported to the sampler); None if never measured."""
    if trial.constraints:
        return all(value <= 0 for value in trial.constraints.values())
    if "feasible" in trial.user_attrs:  # studies from before constraints were the record
        return trial.user_attrs["feasible"]
    return True if "metrics" in trial.user_attrs else None  # a space without constraints


def _space_version(trial: optuna.trial.FrozenTrial) -> int | None:
    """The space version the trial ran under; trials of studies made before versions ran under
    version 1; a trial still waiting to start has none."""
    version = trial.user_attrs.get(SPACE_VERSION)
    if version is None and trial.state != optuna.trial.TrialState.WAITING:
        return 1
    return version


def trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    attrs = trial.user_attrs
    duration = trial.duration.total_seconds() if trial.duration else None
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "baseline": False,
        "name": attrs.get("seed_name") or f"trial_{trial.number}",
        "feasible": is_feasible(trial),
        "fail_reason": attrs.get("fail_reason"),
        "retried_from": attrs.get("retried_from", trial.system_attrs.get("failed_trial")),
        "worker": started_by(trial),
        SPACE_VERSION: _space_version(trial),
    }
    row.update({f"knob.{k}": v for k, v in trial.params.items()})
    metrics = attrs.get("metrics", {})
    for column in METRIC_COLUMNS:
        row[column] = metrics.get(column)
    row.update({column: metrics[column] for column in PROXY_COLUMNS if column in metrics})
    if "prefilter" in attrs:  # the pre-filter's training-free score (see _prefilter)
        row["prefilter_score"] = attrs["prefilter"]["values"][0]
    timings = attrs.get("timings", {})
    for column in TIMING_COLUMNS[:-1]:
        row[column] = timings.get(column)
    row["duration_s"] = duration
    row["config"] = json.dumps(attrs["config"], sort_keys=True) if "config" in attrs else None
    return row


def baseline_rows(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for key, record in sorted(study.user_attrs.items()):
        if not key.startswith(BASELINE_ATTR_PREFIX):
            continue
        metrics = record.get("metrics", {})
        row = {
            "number": None,
            "state": record.get("state", "COMPLETE"),
            "baseline": True,
            "name": record.get("name", key[len(BASELINE_ATTR_PREFIX) :]),
            "feasible": True,
            "fail_reason": record.get("fail_reason"),
            "retried_from": None,
            "worker": record.get("worker"),
            SPACE_VERSION: record.get(SPACE_VERSION, 1),
        }
        row.update({c: metrics.get(c) for c in METRIC_COLUMNS})
        row.update({c: record.get("timings", {}).get(c) for c in TIMING_COLUMNS})
        row["config"] = json.dumps(record.get("overrides") or {}, sort_keys=True)
        rows.append(row)
    return rows


def trials_frame(
    study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None
) -> pd.DataFrame:
    """Every trial (any state) and every baseline, one row each (``trials``: the study's,
    already read)."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    rows = [trial_row(t) for t in trials]
    _explain_stale_failures(rows)
    rows += baseline_rows(study)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["number"] = frame["number"].astype("Int64")
    frame[SPACE_VERSION] = frame[SPACE_VERSION].astype("Int64")
    if any(RUNG_ATTR in t.user_attrs for t in trials):  # multi-fidelity: a row per candidate
        from dvbench.search._rung_tables import fold_rungs, rung_runs

        frame = fold_rungs(frame, rung_runs(trials))
    return frame


def _explain_stale_failures(rows: list[dict[str, Any]]) -> None:
    """Give trials failed for a stale heartbeat (their worker died) a reason and their retry.

    The objective records a reason for every failure it sees; a FAIL row without one was
    failed by another worker because its own worker stopped heartbeating.
    """
    retries = {r["retried_from"]: r["number"] for r in rows if r["retried_from"] is not None}
    for row in rows:
        if row["state"] != "FAIL" or row["fail_reason"]:
            continue
        who = f"worker {row['worker']}" if row["worker"] else "its worker"
        reason = f"{who} stopped heartbeating (died or hung)"
        retry = retries.get(row["number"])
        row["fail_reason"] = f"{reason}; retried as trial {retry}" if retry is not None else reason


def is_dominated_by(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True when ``b`` dominates ``a``: no worse in every objective, better in one."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "minimize":
            x, y = -x, -y
        if y < x:
            return False
        if y > x:
            better = True
    return better


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (rows x objectives)."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    losses = values * sign  # minimisation form
    n = len(losses)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        others = losses[np.arange(n) != i]
        dominated = np.any(np.all(others <= losses[i], axis=1) & np.any(others < losses[i], axis=1))
        mask[i] = not dominated
    return mask


def front_version(frame: pd.DataFrame) -> int | None:
    """The newest space version any trial ran under: the version the front is made of.

    None for a table without versions (empty, or written before versions were recorded).
    """
    if frame.empty or SPACE_VERSION not in frame:
        return None
    trials = frame[~frame["baseline"].astype(bool)]
    versions = pd.to_numeric(trials[SPACE_VERSION], errors="coerce").dropna()
    return int(versions.max()) if len(versions) else None


def _of_version(frame: pd.DataFrame, version: int | None) -> pd.Series:
    if version is None:
        return pd.Series(True, index=frame.index)
    versions = pd.to_numeric(frame[SPACE_VERSION], errors="coerce")
    return versions.eq(version).fillna(False).astype(bool)


def candidates(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Completed, feasible, non-baseline trials of the front's space version (see
    :func:`front_version`) with every objective finite."""
    if frame.empty:
        return frame
    keep = (frame["state"] == "COMPLETE") & (~frame["baseline"].astype(bool))
    if "final" in frame.columns:  # multi-fidelity: the front is over the top rung's candidates
        keep &= frame["final"].fillna(False).astype(bool)
    keep &= _of_version(frame, front_version(frame))
    keep &= frame["feasible"].fillna(True).astype(bool)
    for m in metrics:
        keep &= pd.to_numeric(frame[m], errors="coerce").map(
            lambda v: v is not None and math.isfinite(v)
        )
    return frame[keep]


def pareto_frame(
    frame: pd.DataFrame, metrics: Sequence[str], directions: Sequence[str]
) -> pd.DataFrame:
    """The non-dominated candidates, sorted by the first cost (minimised) objective."""
    pool = candidates(frame, metrics)
    if pool.empty:
        return pool
    values = pool[list(metrics)].astype(float).to_numpy()
    front = pool[pareto_mask(values, directions)].copy()
    sort_by = next((m for m, d in zip(metrics, directions) if d == "minimize"), metrics[0])
    return front.sort_values([sort_by, "number"]).reset_index(drop=True)


def dominance(
    frame: pd.DataFrame, metrics: Sequence[str], directions: Sequence[str]
) -> dict[str, list[str]]:
    """For each completed baseline measured under the front's space version, the candidates
    that dominate it (a baseline of another version is not compared)."""
    out: dict[str, list[str]] = {}
    if frame.empty:
        return out
    pool = candidates(frame, metrics)
    same = _of_version(frame, front_version(frame))
    base = frame[frame["baseline"].astype(bool) & (frame["state"] == "COMPLETE") & same]
    for _, b in base.iterrows():
        bvals = [float(b[m]) if b[m] is not None else math.nan for m in metrics]
        if any(not math.isfinite(v) for v in bvals):
            continue
        out[b["name"]] = [
            c["name"]
            for _, c in pool.iterrows()
            if is_dominated_by(bvals, [float(c[m]) for m in metrics], directions)
        ]
    return out


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Hypervolume of the points (rows) dominated inside ``reference`` (metric units).

    Uses Optuna's exact hypervolume (the one its ``plot_hypervolume_history`` uses). Points
    not strictly better than the reference in every objective add nothing.
    """
    from optuna._hypervolume import compute_hypervolume

    if len(values) == 0:
        return 0.0
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    losses = np.asarray(values, dtype=float) * sign
    ref = np.asarray(reference, dtype=float) * sign
    inside = np.all(losses < ref, axis=1)
    if not inside.any():
        return 0.0
    return float(compute_hypervolume(losses[inside], ref))


def resolve_reference(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    directions: Sequence[str],
    fixed: Mapping[str, float],
) -> list[float]:
    """The reference point: fixed values where given, else 1.1x the worst observed cost."""
    ref = []
    pool = candidates(frame, metrics)
    for m, d in zip(metrics, directions):
        if m in fixed:
            ref.append(float(fixed[m]))
            continue
        column = pool[m].astype(float) if not pool.empty else pd.Series([], dtype=float)
        if column.empty:
            ref.append(math.nan)
        elif d == "minimize":
            ref.append(float(column.max()) * 1.1)
        else:
            ref.append(float(column.min()) * 0.9)
    return ref


def hypervolume_history(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    directions: Sequence[str],
    reference: Sequence[float],
) -> pd.DataFrame:
    """Hypervolume of the front after each trial number (candidates only)."""
    pool = candidates(frame, metrics).sort_values("number")
    rows = []
    values: list[list[float]] = []
    for _, row in pool.iterrows():
        values.append([float(row[m]) for m in metrics])
        rows.append(
            {
                "number": int(row["number"]),
                "hypervolume": hypervolume(np.array(values), directions, reference),
            }
        )
    return pd.DataFrame(rows, columns=["number", "hypervolume"])


def _temporary_file(path: Path) -> Path:
    """A new, empty file beside ``path`` with the mode any new file gets (0666 less the umask).

    ``tempfile.mkstemp`` would make it 0600, and the rename would carry that mode to the table.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def write_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write CSV or Parquet (by suffix) through a temporary file and an atomic rename; the file
    gets the user's usual mode (0666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_file(path)
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed types (None and floats/bools/strings) as Parquet accepts them."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            kinds = {type(v) for v in out[column] if v is not None and v == v}
            if kinds and kinds <= {bool}:
                out[column] = out[column].astype("boolean")
            elif kinds and kinds <= {int, float}:
                out[column] = pd.to_numeric(out[column], errors="coerce")
            elif kinds:
                out[column] = out[column].map(lambda v: None if v is None or v != v else str(v))
    return out


def provisional_frame(
    frame: pd.DataFrame, metrics: Sequence[str], directions: Sequence[str]
) -> pd.DataFrame:
    """Multi-fidelity: for each rung below the top, the front of the candidates that stopped
    there, at that rung's accuracy (``provisional.csv``; empty for other studies)."""
    from dvbench.search._rung_tables import provisional_frame as rung_fronts

    return rung_fronts(frame, metrics, directions)


def export_tables(
    study: optuna.Study,
    out_dir: Path,
    metrics: Sequence[str],
    directions: Sequence[str],
) -> dict[str, Path]:
    """Write trials.csv/.parquet and pareto.csv/.parquet for ``study`` into ``out_dir``."""
    trials = study.get_trials(deepcopy=False)
    frame = trials_frame(study, trials)
    front = pareto_frame(frame, metrics, directions)
    tables = [("trials", frame), ("pareto", front)]
    if "final" in frame.columns:  # multi-fidelity: every rung run, and the provisional front
        from dvbench.search._rung_tables import rung_runs

        tables.append(("rungs", rung_runs(trials)))
        tables.append(("provisional", provisional_frame(frame, metrics, directions)))
    paths = {}
    for stem, table in tables:
        paths[f"{stem}.csv"] = write_atomic(table, out_dir / f"{stem}.csv")
        paths[f"{stem}.parquet"] = write_atomic(_parquet_ready(table), out_dir / f"{stem}.parquet")
    return paths
