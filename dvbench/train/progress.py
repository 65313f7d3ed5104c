"""A rich progress bar for training runs (for people; programs read the result instead)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dvbench.train.loop import ProgressCallback, TrainProgress

_RESOLUTION = 1000  # bar steps; the budget may be time, so the bar tracks a fraction


@contextlib.contextmanager
def rich_progress(
    description: str, *, enabled: bool = True, console: Console | None = None
) -> Iterator[ProgressCallback | None]:
    """Yield a callback for :func:`train_candidate` that draws a bar (on stderr), or None."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    task = bar.add_task(description, total=_RESOLUTION, status="starting")

    def update(report: TrainProgress) -> None:
        steps = f"{report.step}/{report.total_steps}" if report.total_steps else str(report.step)
        bar.update(
            task,
            completed=round(report.fraction * _RESOLUTION),
            status=(
                f"step {steps}  epoch {report.epoch:.2f}  loss {report.loss:.3f}  "
                f"{report.images_per_s:,.0f} img/s"
            ),
        )

    with bar:
        yield update
