"""Terminal experience of a search: live progress, the final front, the files written."""

from __future__ import annotations

import math
import time

import optuna
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dvbench.metrics import format_value
from dvbench.search._loop import SearchObserver
from dvbench.search._options import SearchOptions, SearchSummary
from dvbench.search.record import PREDICTION_OUTSIDE, fail_reason
from dvbench.search.storage import display_url
from dvbench.search.tables import Snapshot, front_version

#: Seconds between the plain progress lines a trial in training sends to a log file.
PLAIN_EVERY_S = 30.0


class SearchDisplay(SearchObserver):
    """A search's terminal view: a rich progress bar (trial n/N, front size, ETA) that
    observes the run it is handed to (``run_study(options, observer=display)``), or a plain
    line per trial when stderr is a log file."""

    def __init__(self, options: SearchOptions):
        self.options = options
        self.console = Console(stderr=True, log_path=False)  # no source file:line on user logs
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[complete]}/{task.total} complete"),
            TextColumn("front {task.fields[front]}"),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=options.quiet,
        )
        self.metrics = options.space.metrics
        self._task = None
        self._started = time.monotonic()
        self._complete = 0  # complete trials seen
        self._printed = self._started  # when the last plain line went out

    def __enter__(self) -> SearchDisplay:
        self.progress.__enter__()
        self._task = self.progress.add_task(
            f"search {self.options.name}",
            total=self.options.total_trials,
            front="-",
            last="",
            complete=0,
        )
        self._started = self._printed = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def log(self, message: str) -> None:
        if not self.options.quiet:
            self.console.log(message)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]{message}[/]")

    def on_progress(self, number: int, progress) -> None:
        """A trial training here: the bar moves by its fraction (so the ETA shows before the
        first trial ends), and a log file gets a plain line every 30 s."""
        fraction = min(max(float(progress.fraction), 0.0), 1.0)
        now = time.monotonic()
        running = f"trial {number}: {fraction:.0%} trained, epoch {progress.epoch:.1f}"
        self.progress.update(self._task, completed=self._complete + fraction, last=running)
        if self.console.is_terminal or self.options.quiet:
            return
        if now - self._printed < PLAIN_EVERY_S:
            return
        self._printed = now
        self.console.print(
            _plain_progress(self._complete, self.options.total_trials, None,
                            now - self._started, running, running=fraction),
            highlight=False, markup=False,
        )  # fmt: skip

    def on_trial(self, snapshot: Snapshot, trial: optuna.trial.FrozenTrial) -> None:
        frame = snapshot.frame
        complete = int((frame["state"] == "COMPLETE").sum() - frame["baseline"].sum())
        if trial.state.name == "COMPLETE":
            last = "last: " + ", ".join(
                f"{m}={format_value(m, v)}" for m, v in zip(self.metrics, trial.values)
            )
        else:
            reason = fail_reason(trial) or ""
            last = f"last: trial {trial.number} {trial.state.name} {reason[:60]}"
        self._complete, self._printed = complete, time.monotonic()
        front = len(snapshot.front)
        self.progress.update(
            self._task, completed=complete, complete=complete, front=front, last=last
        )
        if not self.console.is_terminal and not self.options.quiet:
            # the live bar is not drawn in a log file: one plain line a trial instead
            self.console.print(
                _plain_progress(complete, self.options.total_trials, front,
                                time.monotonic() - self._started, last),
                highlight=False, markup=False,
            )  # fmt: skip

    def finish(self, summary: SearchSummary) -> None:
        """The run is over: the bar shows the study's final count."""
        self.progress.update(self._task, completed=summary.completed, complete=summary.completed)


def _plain_progress(
    complete: int,
    total: int,
    front: int | None,
    elapsed: float,
    last: str,
    *,
    running: float = 0.0,
) -> str:
    """``7/20 complete, front 4, 3m12s elapsed, ETA 5m57s; last: ...``. The ETA is the mean
    time per trial so far, counting the ``running`` fraction of the trial training now: a
    first estimate before the first trial ends; none before anything has moved. ``front``
    None (a line sent while a trial trains) leaves the front out."""

    def clock(seconds: float) -> str:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes}m{secs:02d}s"

    done = complete + running
    eta = ""
    if 0 < done < total:
        eta = f", ETA {clock(elapsed / done * (total - done))}"
    where = "" if front is None else f", front {front}"
    return f"{complete}/{total} complete{where}, {clock(elapsed)} elapsed{eta}; {last}"


def _fmt(value, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format_value(metric, value)


def _any_value(summary: SearchSummary, metric: str) -> bool:
    frames = [f for f in (summary.pareto, summary.baselines) if f is not None and not f.empty]
    return any(metric in f and f[metric].notna().any() for f in frames)


def predicted_latency_note(device, front=None) -> str:
    """What ``latency_pred_ms`` is: predicted for which device, with the profile's held-out
    error, and how many front candidates it extrapolates to."""
    held = device.held_out
    text = (
        f"latency_pred_ms is predicted, not measured: {device.label}, from "
        f"{len(device.samples)} timed candidates (leave-one-out median error "
        f"{held['mdape']:.1f} %, Spearman {held['spearman']:.2f})"
    )
    column = PREDICTION_OUTSIDE
    if front is not None and column in front:
        outside = int(front[column].notna().sum())
        if outside:
            text += f"; {outside} front candidate(s) lie outside its measured range"
    return text


def print_summary(summary: SearchSummary, options: SearchOptions, *, quiet: bool = False) -> None:
    console = Console()
    metrics = options.space.metrics
    if summary.interrupted:
        console.print(
            "[yellow]interrupted: completed trials are saved; re-run the same "
            "command to continue[/]"
        )
    if summary.stopped_reason:
        console.print(f"[yellow]stopped: {summary.stopped_reason}[/]")
    if not quiet:
        table = Table(
            title=f"Pareto front of {summary.study_name} "
            f"({summary.completed} complete, {summary.failed} failed, "
            f"{summary.infeasible} over budget)"
        )
        table.add_column("trial", justify="right")
        table.add_column("name")
        extra = [
            m
            for m in ("params_m", "gflops", "top1", "latency_ms_median")
            if m not in metrics and _any_value(summary, m)  # no column of dashes
        ]
        for m in metrics + extra:
            table.add_column(m, justify="right")
        for _, row in summary.pareto.iterrows():
            table.add_row(
                str(row["number"]),
                str(row["name"]),
                *[_fmt(row.get(m), m) for m in metrics + extra],
            )
        frame = summary.baselines
        if frame is not None and not frame.empty:
            for _, row in frame.iterrows():
                table.add_row(
                    "-",
                    f"[cyan]{row['name']} (baseline)[/]",
                    *[_fmt(row.get(m), m) for m in metrics + extra],
                )
        console.print(table)
        device = options.space.device if options.space.predicts_latency else None
        if device is not None:
            console.print(predicted_latency_note(device, summary.pareto), highlight=False)
        version = front_version(summary.pareto) if summary.pareto is not None else None
        if version is not None and version > 1:
            console.print(
                f"the front holds space version {version}'s trials only (the space changed "
                "during the study; trials.csv has every trial and its space_version)"
            )
        for baseline, winners in summary.dominance.items():
            if winners:
                console.print(f"{baseline} is dominated by: {', '.join(winners)}")
            else:
                console.print(f"{baseline} is dominated by no candidate")
        if summary.hypervolume is not None:
            ref = ", ".join(f"{m}={r:g}" for m, r in zip(metrics, summary.reference_point))
            console.print(f"hypervolume {summary.hypervolume:.4g} (reference point {ref})")
    for _, path in sorted(summary.files.items()):
        console.print(f"wrote {path}")
    if summary.workers > 1:
        console.print(
            f"{summary.workers} workers ran {summary.new_trials} trials; "
            f"logs: {summary.worker_logs[0].parent}"
        )
    if summary.checkpoint_peak_bytes is not None:
        console.print(
            f"multi-fidelity checkpoints: at most {summary.checkpoint_peak_bytes / 1e6:.1f} MB "
            "on disk at once (removed once a candidate can no longer be promoted)"
        )
    console.print(f"storage {display_url(summary.storage)}")
