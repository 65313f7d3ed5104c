"""The table for people: a view of the same frame that ``--out`` writes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich.markup import escape
from rich.table import Table

from dvbench.metrics import column_header, format_value
from dvbench.proxies._registry import PROXIES
from dvbench.proxies._runner import ProxyScores, scores_to_frame

__all__ = ["failure_lines", "scores_table"]


def scores_table(scores: Sequence[ProxyScores], *, title: str | None = None) -> Table:
    """One row per model, one column per proxy (a failed score reads ``failed``), then the
    seconds all of that model's proxies took together. Headers and precision are the metrics'
    (:mod:`dvbench.metrics`)."""
    frame = scores_to_frame(scores)
    shown = [name for name in PROXIES if name in frame.columns]
    table = Table(title=title if title is not None else _title(scores))
    table.add_column("model")
    for name in shown:
        table.add_column(column_header(name), justify="right")
    table.add_column("seconds", justify="right")
    for record in frame.to_dict("records"):
        cells = [escape(str(record["model"]))]
        for name in shown:
            ran = not pd.isna(record[f"{name}_s"])
            cells.append(_cell(name, record[name]) if ran else "")
        cells.append(f"{record['seconds']:.2f}")
        table.add_row(*cells)
    return table


def failure_lines(scores: Sequence[ProxyScores]) -> list[str]:
    """``MODEL: proxy: reason`` for every score that failed."""
    return [f"{s.model}: {reason}" for s in scores for reason in s.failures.values()]


def _cell(name: str, value: object) -> str:
    if value is None or pd.isna(value) or not math.isfinite(float(value)):
        return "[red]failed"
    return format_value(name, value)


def _title(scores: Sequence[ProxyScores]) -> str:
    if not scores:
        return "training-free proxies"
    first = scores[0]
    return (
        f"training-free proxies: {first.data} at {first.resolution} px, "
        f"{first.num_batches} x {first.batch_size} images, seed {first.seed}, {first.device}"
    )
