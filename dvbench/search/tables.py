"""Study -> pandas tables: every trial, the Pareto front, baselines, hypervolume.

Tables are computed from the study's storage alone, so any worker (or ``dvbench report``)
can write them, and they are written atomically (:mod:`dvbench.files`). What a trial stored
is read through :mod:`~dvbench.search.record`; a candidate's runs (rungs, repeats) are folded
into one row with the standard error of every accuracy (``_runs``); every comparison uses the
study's one noise-aware dominance rule (:mod:`dvbench.stats.pareto`) at the study's confidence,
carried with the objectives in a :class:`Criteria`, over the noise model of
:mod:`dvbench.stats.noise` (:meth:`Criteria.noise`: candidates scored on the same test images
compare paired).

Each trial row names the space version it ran under (``space_version``); the front, the
dominance of baselines and the hypervolume use the trials of the newest version only (see
:func:`front_version`), so that a front never mixes two spaces' constraints.

Files: ``trials.csv`` (every first run and baseline, with ``p_front``: the probability of being
on the front), ``pareto.csv`` (the noise-aware front, with ``p_front`` and ``tied_with``: the
front members its accuracy is not told apart from), and, for studies with follow-up runs,
``runs.csv`` (every run) and, multi-fidelity, ``provisional.csv`` (the front of each lower rung).

A study is analysed once per finished trial: :func:`analyse` reads its trials and makes a
:class:`Snapshot` (every row with ``p_front``, and the front), which the tables, the display
and the ladder all read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from dvbench.files import write_atomic
from dvbench.metrics import ACCURACY_METRICS
from dvbench.search import reasons, record
from dvbench.search._runs import NOISE, add_uncertainty, fold_runs, runs_frame
from dvbench.search.record import SPACE_VERSION
from dvbench.stats import DEFAULT_CONFIDENCE, DominanceRule, Estimate, Noise, front_probability

__all__ = [
    "DEFAULT_CONFIDENCE",
    "Criteria",
    "Snapshot",
    "analyse",
    "candidates",
    "dominance",
    "export_tables",
    "front_version",
    "pareto_frame",
    "provisional_frame",
    "trials_frame",
    "write_atomic",
]


@dataclass(frozen=True)
class Criteria:
    """How a study compares candidates: its objectives, their directions, and the confidence
    of its dominance rule (0: strict). Accuracy metrics are the noisy ones (their ``_se``
    columns are their standard errors); every other objective is exact."""

    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "directions", tuple(self.directions))
        DominanceRule(self.confidence)  # validates

    @classmethod
    def of_space(cls, space: Any) -> Criteria:
        """The criteria of a :class:`~dvbench.space.definition.SearchSpace`."""
        return cls(tuple(space.metrics), tuple(space.directions), space.confidence)

    @classmethod
    def of_settings(cls, settings: Mapping[str, Any]) -> Criteria:
        """The criteria a study recorded (studies made before confidences were strict)."""
        objectives = settings.get("objectives") or []
        return cls(
            tuple(str(o["metric"]) for o in objectives),
            tuple(str(o["direction"]) for o in objectives),
            float(settings.get("confidence", 0.0)),
        )

    @property
    def rule(self) -> DominanceRule:
        return DominanceRule(self.confidence)

    @property
    def noisy(self) -> tuple[bool, ...]:
        return tuple(m in ACCURACY_METRICS for m in self.metrics)

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[list(self.metrics)].astype(float).to_numpy().reshape(-1, len(self.metrics))

    def noise(self, frame: pd.DataFrame) -> Noise:
        """The rows' noise in the objectives (exact ones have none): each row's estimate from
        ``add_uncertainty`` (column ``noise``), paired where two rows have per-image values of
        one test set; a row without one, its ``<metric>_se`` (and ``_df``) as independent."""
        kept = frame[NOISE] if NOISE in frame.columns else pd.Series(None, index=frame.index)
        columns: list[list[Estimate] | None] = []
        for metric, noisy in zip(self.metrics, self.noisy):
            if not noisy:
                columns.append(None)
                continue
            se = _numbers(frame, f"{metric}_se", 0.0)
            df = _numbers(frame, f"{metric}_df", math.inf)
            columns.append([
                cell[metric] if isinstance(cell, dict) and metric in cell
                else Estimate.given(se[k], df[k])
                for k, cell in enumerate(kept)
            ])  # fmt: skip
        return Noise.of_estimates(columns, n=len(frame))

    def errors(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's standard error per objective (0 where exact or unknown)."""
        columns = []
        for metric, noisy in zip(self.metrics, self.noisy):
            se = f"{metric}_se"
            if noisy and se in frame.columns:
                columns.append(pd.to_numeric(frame[se], errors="coerce").fillna(0.0).to_numpy())
            else:
                columns.append(np.zeros(len(frame)))
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


def _numbers(frame: pd.DataFrame, column: str, missing: float) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), missing)
    return pd.to_numeric(frame[column], errors="coerce").fillna(missing).to_numpy(float)


# -------------------------------------------------------------------------------- the rows
def trials_frame(
    study: optuna.Study,
    trials: Sequence[optuna.trial.FrozenTrial] | None = None,
    *,
    prior: Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Every candidate (any state; its follow-up runs folded in) and every baseline, one row
    each, with standard errors (``trials``: the study's, already read; ``prior``: metric ->
    ``(seed_sd, df[, flip_sd])`` of a calibration, see ``_runs.add_uncertainty``; by default
    the ``noise:`` prior of the space the study recorded)."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    if prior is None:
        prior = recorded_prior(record.study_settings(study) or {})
    rows = [record.trial_row(t) for t in trials]
    _explain_stale_failures(rows)
    rows += record.baseline_rows(study)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["number"] = frame["number"].astype("Int64")
    frame[SPACE_VERSION] = frame[SPACE_VERSION].astype("Int64")
    frame = fold_runs(frame, runs_frame(trials, outcomes=True))
    return add_uncertainty(frame, prior=prior)


def recorded_prior(settings: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The seed-variance prior (metric -> ``(seed_sd, df)``) of a study's recorded space
    (its ``noise:`` section); empty for a space without one, or a study made before it."""
    out = {}
    for metric, entry in (settings.get("noise") or {}).items():
        if isinstance(entry, Mapping) and {"seed_sd", "df"} <= set(entry):
            out[str(metric)] = (float(entry["seed_sd"]), float(entry["df"]))
    return out


def _explain_stale_failures(rows: list[dict[str, Any]]) -> None:
    """Give trials failed for a stale heartbeat (their worker died) a reason and their retry.

    The objective records a reason for every failure it sees; a FAIL row without one was
    failed by another worker because its own worker stopped heartbeating.
    """
    retried, reason = record.RETRIED_FROM, record.FAIL_REASON
    retries = {r[retried]: r["number"] for r in rows if r[retried] is not None}
    for row in rows:
        if row["state"] == "FAIL" and not row[reason]:
            row[reason] = reasons.stale_reason(row[record.WORKER], retries.get(row["number"]))


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


def _finite_in(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.Series:
    keep = pd.Series(True, index=frame.index)
    for m in metrics:
        keep &= pd.to_numeric(frame[m], errors="coerce").map(
            lambda v: v is not None and math.isfinite(v)
        )
    return keep


def candidates(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Completed, feasible, non-baseline trials of the front's space version (see
    :func:`front_version`) with every objective finite; a trial that copied an earlier
    one's result (``duplicate_of``) is not a candidate of its own."""
    if frame.empty:
        return frame
    keep = (frame["state"] == "COMPLETE") & (~frame["baseline"].astype(bool))
    if record.DUPLICATE_OF in frame.columns:  # a copy of an earlier candidate's result
        keep &= frame[record.DUPLICATE_OF].isna()
    if "final" in frame.columns:  # multi-fidelity: the front is over the top rung's candidates
        keep &= frame["final"].fillna(False).astype(bool)
    keep &= _of_version(frame, front_version(frame))
    keep &= frame["feasible"].fillna(True).astype(bool)
    return frame[keep & _finite_in(frame, metrics)]


# ------------------------------------------------------------------------------ the fronts
def with_front_probability(frame: pd.DataFrame, criteria: Criteria) -> pd.DataFrame:
    """``frame`` with ``p_front``: each candidate's probability of being on the front of the
    true values (costs exact, accuracies within their SEs); empty for other rows."""
    out = frame.copy()
    out["p_front"] = math.nan
    pool = candidates(frame, criteria.metrics)
    if not pool.empty:
        chance = front_probability(criteria.values(pool), criteria.directions, criteria.noise(pool))
        out.loc[pool.index, "p_front"] = chance
    return out


def pareto_frame(frame: pd.DataFrame, criteria: Criteria) -> pd.DataFrame:
    """The front under the study's rule (candidates no other candidate dominates), sorted by
    the first cost (minimised) objective, with ``p_front`` and ``tied_with`` (the numbers of the
    front members whose accuracy the noise does not tell apart from this one's)."""
    pool = candidates(frame, criteria.metrics)
    if pool.empty:
        return pool
    values, noise = criteria.values(pool), criteria.noise(pool)
    rule = criteria.rule
    on_front = rule.front(values, criteria.directions, noise)
    front = pool[on_front].copy()
    known = "p_front" in pool.columns and pool["p_front"].notna().all()  # with_front_probability
    chance = pool["p_front"] if known else front_probability(values, criteria.directions, noise)
    front["p_front"] = np.asarray(chance, dtype=float)[on_front]
    ties = rule.tied(values[on_front], criteria.directions, noise.take(on_front))
    numbers = front["number"].tolist()
    front["tied_with"] = [" ".join(str(numbers[j]) for j in np.flatnonzero(row)) for row in ties]
    metrics, directions = criteria.metrics, criteria.directions
    sort_by = next((m for m, d in zip(metrics, directions) if d == "minimize"), metrics[0])
    return front.sort_values([sort_by, "number"]).reset_index(drop=True)


def provisional_frame(frame: pd.DataFrame, criteria: Criteria) -> pd.DataFrame:
    """Multi-fidelity: for each rung below the top, the front of the candidates that stopped
    there, at that rung's accuracy (``provisional.csv``; empty for other studies)."""
    if frame.empty or "final" not in frame.columns:
        return frame.iloc[0:0]
    parts = []
    stopped = frame[(frame["final"] == False) & frame["rung"].notna()]  # noqa: E712
    for _, group in stopped.groupby("rung"):
        front = pareto_frame(group.drop(columns="final"), criteria)
        if not front.empty:
            parts.append(front)
    if not parts:
        return frame.iloc[0:0]
    out = pd.concat(parts)
    out.insert(out.columns.get_loc("rung") + 1, "final", False)
    return out.sort_values(["rung", "number"]).reset_index(drop=True)


def dominance(frame: pd.DataFrame, criteria: Criteria) -> dict[str, list[str]]:
    """For each completed baseline measured under the front's space version, the candidates
    that dominate it under the study's rule (a baseline of another version is not compared)."""
    out: dict[str, list[str]] = {}
    if frame.empty:
        return out
    pool = candidates(frame, criteria.metrics)
    same = _of_version(frame, front_version(frame))
    base = frame[frame["baseline"].astype(bool) & (frame["state"] == "COMPLETE") & same]
    base = base[_finite_in(base, criteria.metrics)]
    if base.empty:
        return out
    rule = criteria.rule
    for index in base.index:
        both = pd.concat([base.loc[[index]], pool])
        beaten = rule.matrix(criteria.values(both), criteria.directions, criteria.noise(both))
        out[base.at[index, "name"]] = pool["name"][beaten[1:, 0]].tolist()
    return out


# ------------------------------------------------------------------------------- the files
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


#: The columns an empty ``trials.csv`` still has (a study with no trial yet).
EMPTY_COLUMNS = (
    "number", "state", "baseline", "name", "feasible", record.FAIL_REASON, SPACE_VERSION,
)  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """One analysis of a study as it stands (:func:`analyse`): the trials read, every row with
    its ``p_front`` (:func:`with_front_probability`; empty: the header columns), and the front
    (:func:`pareto_frame`). Made once per finished trial and handed to every reader."""

    trials: tuple[optuna.trial.FrozenTrial, ...]
    frame: pd.DataFrame
    front: pd.DataFrame

    def trial(self, number: int) -> optuna.trial.FrozenTrial | None:
        return next((t for t in self.trials if t.number == number), None)

    def describes(self, trials: Sequence[optuna.trial.FrozenTrial]) -> bool:
        """Whether ``trials`` (read later) have the same finished trials, in the same states:
        then this analysis still holds for them (a running trial is no candidate yet)."""
        return _finished(trials) == _finished(self.trials)


def _finished(trials: Sequence[optuna.trial.FrozenTrial]) -> set[tuple[int, str]]:
    return {(t.number, t.state.name) for t in trials if t.state.is_finished()}


def analyse(
    study: optuna.Study,
    criteria: Criteria,
    trials: Sequence[optuna.trial.FrozenTrial] | None = None,
) -> Snapshot:
    """The study's :class:`Snapshot` (``trials``: already read; else read now). The front
    probability is drawn here, once."""
    trials = tuple(study.get_trials(deepcopy=False) if trials is None else trials)
    frame = trials_frame(study, trials)
    if frame.empty:
        frame = pd.DataFrame(columns=[*EMPTY_COLUMNS, *criteria.metrics])
    else:
        frame = with_front_probability(frame, criteria)
    return Snapshot(trials, frame, pareto_frame(frame, criteria))


def export_tables(
    study: optuna.Study, out_dir: Path, criteria: Criteria, snapshot: Snapshot | None = None
) -> dict[str, Path]:
    """Write trials, pareto (and runs, provisional) as CSV and Parquet into ``out_dir``, from
    ``snapshot`` (default: :func:`analyse` of the study now)."""
    snapshot = snapshot or analyse(study, criteria)
    trials, frame = snapshot.trials, snapshot.frame
    tables = [("trials", frame), ("pareto", snapshot.front)]
    if record.has_runs(trials):
        tables.append(("runs", runs_frame(trials)))
    if "final" in frame.columns:
        tables.append(("provisional", provisional_frame(frame, criteria)))
    paths = {}
    for stem, table in tables:
        table = table.drop(columns=[NOISE], errors="ignore")  # objects, not table cells
        paths[f"{stem}.csv"] = write_atomic(table, out_dir / f"{stem}.csv")
        paths[f"{stem}.parquet"] = write_atomic(_parquet_ready(table), out_dir / f"{stem}.parquet")
    return paths
