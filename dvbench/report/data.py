"""What a report shows, read from a finished study: tables, front, hypervolume, dominance.

Everything here is computed from the study's storage with the search's own table functions
(through :mod:`dvbench.search`'s public face), so the report agrees with
``trials.csv``/``pareto.csv``, compares candidates by the study's own noise-aware rule
(:class:`~dvbench.search.Criteria`), and carries every accuracy's standard error. When the
study's space changed (``--allow-space-change``), the front, plots, hypervolume and baseline
comparisons hold the newest space version's trials only. Nothing is trained or measured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from dvbench.errors import UsageError
from dvbench.metrics import ACCURACY_METRICS, METRICS, axis_label, format_value
from dvbench.search import (
    SPACE_VERSION,
    Criteria,
    HypervolumeSummary,
    SpaceVersion,
    candidates,
    dominance,
    front_version,
    hypervolume_history,
    hypervolume_summary,
    pareto_frame,
    space_versions,
    trials_frame,
    with_front_probability,
)
from dvbench.search.record import baseline_names, seeds_enqueued, study_settings

__all__ = [
    "ACCURACY_METRICS",
    "ReportData",
    "accuracy_axis_text",
    "load_report_data",
    "metric_label",
    "metric_name",
    "metric_text",
    "metric_unit",
]


def metric_name(metric: str) -> str:
    """``top-1 accuracy``, ``GFLOPs``, ``latency``, ...: the metric in words."""
    return METRICS[metric].label if metric in METRICS else metric


def metric_unit(metric: str) -> str:
    """``%``, ``ms``, ``M``, ...; the metric's name when it has no unit."""
    info = METRICS.get(metric)
    return (info.unit or info.label) if info else metric


def metric_label(metric: str, *, resolution: int | None = None, batch_size: int = 1) -> str:
    """An axis label with units and conditions, e.g. ``GFLOPs (224 px, per image)``."""
    return axis_label(metric, resolution=resolution, batch_size=batch_size)


def metric_text(metric: str, value: Any) -> str:
    """A table cell in the metric's precision (see :mod:`dvbench.metrics`)."""
    return format_value(metric, value)


def _setting(section: Mapping[str, Any] | None, key: str, old_key: str | None = None) -> Any:
    section = section or {}
    return section.get(key, section.get(old_key) if old_key else None)


@dataclass(frozen=True)
class ReportData:
    """A study as the report shows it. The frames are :mod:`dvbench.search.tables` views."""

    study_name: str
    settings: Mapping[str, Any]
    trials: pd.DataFrame  # every candidate (any state) and every baseline, one row each
    front: pd.DataFrame  # the study's Pareto front, as pareto.csv
    criteria: Criteria  # objectives, directions and the dominance rule's confidence
    hypervolume: HypervolumeSummary | None
    history: pd.DataFrame  # normalised hypervolume after each trial: number, hypervolume
    dominance: Mapping[str, list[str]]  # baseline -> candidates that dominate it
    versions: tuple[SpaceVersion, ...] = ()  # the study's space versions, oldest first
    baselines_run: tuple[str, ...] = ()  # the --baselines names the study measured
    seeded: bool = False  # the official shapes were enqueued (--seed-official)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.criteria.metrics

    @property
    def directions(self) -> tuple[str, ...]:
        return self.criteria.directions

    @property
    def front_version(self) -> int | None:
        """The space version the front, plots and hypervolume are made of (the newest any
        trial ran under); None for a study without trials."""
        return front_version(self.trials)

    @property
    def changed_space(self) -> bool:
        """Whether the study ran under more than one space version."""
        rows = self.trial_rows
        seen = set(rows[SPACE_VERSION].dropna()) if SPACE_VERSION in rows else set()
        return len(self.versions) > 1 or len(seen) > 1

    def version_trials(self, version: int) -> int:
        """Trials (any state, not baselines) that ran under space ``version``."""
        rows = self.trial_rows
        if rows.empty or SPACE_VERSION not in rows:
            return 0
        return int(rows[SPACE_VERSION].eq(version).fillna(False).sum())

    @property
    def resolution(self) -> int | None:
        """The resolution costs were measured at (``res`` in studies made before 0.2)."""
        res = _setting(self.settings.get("profile"), "resolution", "res")
        return int(res) if res else None

    def direction(self, metric: str) -> str:
        """How this study scores ``metric``: its own direction for an objective (a study may
        maximise what is usually minimised), else the metric's usual one."""
        if metric in self.metrics:
            return self.directions[self.metrics.index(metric)]
        return METRICS[metric].direction if metric in METRICS else "minimize"

    @property
    def batch_size(self) -> int:
        return int((self.settings.get("profile") or {}).get("batch_size") or 1)

    @property
    def trial_rows(self) -> pd.DataFrame:
        if self.trials.empty:
            return self.trials
        return self.trials[~self.trials["baseline"].astype(bool)]

    @property
    def baseline_rows(self) -> pd.DataFrame:
        if self.trials.empty:
            return self.trials
        return self.trials[self.trials["baseline"].astype(bool)]

    def count(self, state: str) -> int:
        """Trials (not baselines) in ``state``: COMPLETE, FAIL, RUNNING, ..."""
        rows = self.trial_rows
        return int((rows["state"] == state).sum()) if not rows.empty else 0

    @property
    def infeasible(self) -> int:
        """Completed trials over a constraint (not trained, not drawn)."""
        rows = self.trial_rows
        if rows.empty:
            return 0
        return int(((rows["state"] == "COMPLETE") & rows["feasible"].eq(False)).sum())

    def measured(self, metric: str) -> bool:
        """Whether any feasible completed trial or baseline has a finite ``metric``."""
        if self.trials.empty or metric not in self.trials:
            return False
        if not candidates(self.trials, [metric]).empty:
            return True
        base = self.baseline_rows
        return bool(pd.to_numeric(base[metric], errors="coerce").notna().any())


def load_report_data(study: optuna.Study) -> ReportData:
    """Read a dvbench study (settings, trials, baselines) into :class:`ReportData`."""
    settings = study_settings(study)
    if not isinstance(settings, Mapping):
        raise UsageError(
            f"study {study.study_name!r} has no dvbench settings; was it made by `dvbench search`?"
        )
    criteria = Criteria.of_settings(settings)
    if not criteria.metrics:
        raise UsageError(f"study {study.study_name!r}: its settings name no objectives")
    frame = trials_frame(study)
    fixed = {str(k): float(v) for k, v in (settings.get("reference_point") or {}).items()}
    fixed = {m: v for m, v in fixed.items() if m in criteria.metrics}
    if frame.empty:
        front, history, hv = frame, pd.DataFrame(columns=["number", "hypervolume"]), None
        beaten: dict[str, list[str]] = {}
    else:
        frame = with_front_probability(frame, criteria)
        front = pareto_frame(frame, criteria)
        history = hypervolume_history(frame, criteria, fixed)
        hv = hypervolume_summary(frame, criteria, fixed)
        beaten = dominance(frame, criteria)
    return ReportData(
        study_name=study.study_name,
        settings=dict(settings),
        trials=frame,
        front=front,
        criteria=criteria,
        hypervolume=hv,
        history=history,
        dominance=beaten,
        versions=tuple(space_versions(study.user_attrs)),
        baselines_run=tuple(baseline_names(study)),
        seeded=seeds_enqueued(study),
    )


#: An accuracy axis separates candidates when two seeds of one network agree at least this much
#: (ICC(1,1); the yardstick experiment's threshold, benchmarks/bench_yardstick.py).
RESOLVED_ICC = 0.7


def _seed_agreement(summary: Mapping[str, Any], where: Path) -> str:
    low, high = summary["icc_interval"]
    verdict = (
        "resolved"
        if summary["icc"] >= RESOLVED_ICC
        else f"NOT resolved (ICC below {RESOLVED_ICC}: its differences are mostly seed noise)"
    )
    return (
        f"two seeds of one network agree at ICC {summary['icc']:.2f} [{low:.2f}, {high:.2f}] "
        f"over {summary['measured']} candidates, so the axis is {verdict} ({where})"
    )


def accuracy_axis_text(
    settings: Mapping[str, Any], calibrations: Path | Sequence[Path]
) -> str | None:
    """What a study's accuracy axis is, and how well it is known to rank: the proxy schedule
    and, when a calibration of the same space and data lies in ``calibrations``
    (``results/calibrate``), that schedule's measured Kendall tau against the long schedule.
    None for a study that trains nothing."""
    objectives = [o.get("metric") for o in settings.get("objectives") or []]
    if not any(m in ACCURACY_METRICS for m in objectives):
        return None
    train = settings.get("train") or {}
    source = str(train.get("data", "?"))
    epochs = train.get("epochs")
    signal = f"{epochs:g}-epoch schedule" if isinstance(epochs, (int, float)) else None
    text = f"{signal or 'proxy training'} on {Path(source).name}"
    fidelity = settings.get("fidelity")
    if fidelity:  # multi-fidelity: rungs of one schedule whose horizon is the top rung
        rungs = "/".join(f"{r:g}" for r in fidelity["rungs"])
        return (
            f"multi-fidelity rungs {rungs} {fidelity['unit']} (eta {fidelity['eta']}) on "
            f"{Path(source).name}; the front is at the top rung"
        )
    folders = [calibrations] if isinstance(calibrations, (str, Path)) else calibrations
    summaries = [path for f in folders for path in sorted(Path(f).glob("*/summary.json"))]
    for summary_path in summaries:
        try:
            summary = json.loads(summary_path.read_text())
            signals = pd.read_csv(summary_path.with_name("signals.csv"))
        except (OSError, ValueError):
            continue
        same_data = str(summary.get("data", "")).split(":")[0] == Path(source).name
        if summary.get("space") != settings.get("space") or not same_data:
            continue
        if summary.get("icc") is not None and summary.get("target_epochs") == epochs:
            return f"{text}: {_seed_agreement(summary, summary_path.parent)}"
        row = signals[signals["signal"] == signal] if signal else signals.iloc[0:0]
        if row.empty:
            continue
        r = row.iloc[0]
        reliability = f"seed-to-seed tau {_figure(summary.get('seed_to_seed_tau'))}"
        if summary.get("icc") is not None:
            low, high = summary.get("icc_interval") or (None, None)
            reliability = (
                f"the target's ICC {_figure(summary['icc'])} [{_figure(low)}, "
                f"{_figure(high)}], a perfect predictor's expected tau "
                f"{_figure(summary.get('expected_tau_ceiling_seed_mean'))}"
            )
        return (
            f"{text}: Kendall tau {r['kendall_tau']:.2f} [{r['kendall_low']:.2f}, "
            f"{r['kendall_high']:.2f}] against {summary['target_epochs']:g} epochs on "
            f"{summary['measured']} candidates ({reliability}; {summary_path.parent})"
        )
    command = f"python cli.py calibrate --space {settings.get('space')} --data {source}"
    return f"{text}; not calibrated (`{command}`)"


def _figure(value: Any) -> str:
    """A summary figure to two decimals; ``null`` in a strict-JSON summary (a figure that
    could not be computed, e.g. seed-to-seed tau of a one-seed calibration) says so."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "not measured"
    return f"{number:.2f}" if math.isfinite(number) else "not measured"
