"""Tables for people: views of profile results, built from the same frame that ``--out`` writes."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from rich import box
from rich.table import Table

from dvbench.metrics import METRICS, column_header
from dvbench.profile.runner import ProfileResult, results_to_frame

__all__ = ["breakdown_table", "results_table", "uncounted_warnings"]

# The frame's columns in the order shown; a column is shown only when some row has a value.
_DISPLAY: tuple[str, ...] = (
    "model",
    "resolution",
    "batch_size",
    "params_m",
    "gflops",
    "latency_ms_median",
    "latency_ms_p10",
    "latency_ms_p90",
    "runs",
    "throughput_img_s",
    "compile_s",
    "peak_mem_mb",
    "status",
)
# Metrics take their header (short name over unit) and precision from dvbench.metrics; these
# columns are not metrics: (header, format).
_OTHER: dict[str, tuple[str, str]] = {
    "model": ("model", "{}"),
    "resolution": ("res", "{:d}"),
    "batch_size": ("batch", "{:d}"),
    "runs": ("runs", "{:.0f}"),
    "compile_s": ("compile\ns", "{:.1f}"),
    "status": ("status", "{}"),
}
_TEXT_COLUMNS = {"model", "status"}
_MEASURED = ("latency_ms_median", "peak_mem_mb", "compile_s")


def _header(column: str) -> str:
    return _OTHER[column][0] if column in _OTHER else column_header(column, narrow=True)


def _cell(column: str, value: object) -> str:
    if column in METRICS:
        return METRICS[column].text(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return _OTHER[column][1].format(value)


def results_table(results: Sequence[ProfileResult], *, title: str | None = None) -> Table:
    """One table for all models and batch sizes; columns nobody measured are left out."""
    frame = results_to_frame(results)
    measured = frame[list(_MEASURED)].notna().any().any()
    shown = [
        column
        for column in _DISPLAY
        if frame[column].notna().any()
        and (column != "status" or (frame[column] != "ok").any())
        and (column != "batch_size" or measured or frame[column].nunique() > 1)
    ]
    # no vertical rules: the twelve columns a CPU run fills fit 80 columns
    table = Table(
        title=title if title is not None else _title(results),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,  # the box draws one space between columns
    )
    names = [str(r) for r in frame["model"]] if "model" in frame else []
    for column in shown:
        header = _header(column)
        if column == "model":  # names whole; the other columns wrap, never cut ("para…")
            table.add_column(header, no_wrap=True, min_width=max(map(len, names), default=5))
        elif column in _TEXT_COLUMNS:  # a status such as "oom" may wrap
            table.add_column(header, justify="left", overflow="fold")
        else:  # numbers are never wrapped or cut; headers are short lines
            table.add_column(header, justify="right", no_wrap=True)
    for record in frame.to_dict("records"):
        table.add_row(*(_cell(column, record[column]) for column in shown))
    return table


def _title(results: Sequence[ProfileResult]) -> str:
    flops = f"{METRICS['gflops'].label}: fvcore MACs per image"
    s = results[0].settings if results else None
    if s is None or not (s.latency or s.memory or s.compile):
        return flops
    parts = [s.device, f"{s.threads} threads", "train step" if s.train else "inference"]
    if s.amp:
        parts.append(s.amp)
    if s.channels_last:
        parts.append("channels-last")
    if s.compile:
        parts.append("torch.compile")
    per_batch = [what for what, on in (("latency", s.latency), ("memory", s.memory)) if on]
    suffix = f"; {' and '.join(per_batch)} per batch" if per_batch else ""
    return ", ".join(parts) + f"; {flops}{suffix}"


def breakdown_table(result: ProfileResult) -> Table:
    """Parameters and FLOPs per top-level module (timm stage containers expanded); headers and
    precision are the metrics' (:mod:`dvbench.metrics`)."""
    cost = result.cost
    params, gflops = METRICS["params_m"], METRICS["gflops"]
    table = Table(title=f"{result.model} at {result.settings.resolution} px: cost by module")
    for header, justify in (
        ("module", "left"),
        ("type", "left"),
        (params.header(), "right"),
        (gflops.header(), "right"),
        ("% FLOPs", "right"),
    ):
        table.add_column(header, justify=justify)
    for row in cost.breakdown:
        share = 100 * row.flops / cost.flops if cost.flops else 0.0
        cells = (params.text(row.params / 1e6), gflops.text(row.flops / 1e9), f"{share:.1f}")
        table.add_row(row.name, row.kind, *cells)
    total = (params.text(cost.params_m), gflops.text(cost.gflops), "100.0")
    table.add_row("total", "", *total, style="bold")
    return table


def uncounted_warnings(results: Sequence[ProfileResult]) -> list[str]:
    """One line per model whose count skipped ops that are not zero-cost by convention."""
    lines, seen = [], set()
    for result in results:
        if result.model in seen or not result.cost.uncounted_ops:
            continue
        seen.add(result.model)
        ops = ", ".join(f"{op} x{n}" for op, n in result.cost.uncounted_ops.items())
        flops = METRICS["gflops"].label
        lines.append(f"{result.model}: {flops} leave out ops fvcore cannot count: {ops}")
    return lines
