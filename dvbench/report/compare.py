"""The comparison of models as a table and a plot, from the frame ``compare`` measured.

Measuring is not done here (the report room only reads): :func:`dvbench.evaluate.compare_models`
profiles and trains the models; this module shows its :meth:`~dvbench.evaluate.Comparison.frame`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from dvbench.files import ensure_folder
from dvbench.metrics import column_header
from dvbench.profile import write_results
from dvbench.report.data import metric_name, metric_text
from dvbench.report.plots import (
    ParetoFrontInfo,
    draw_pareto_front,
    get_points_info,
    model_family,
)
from dvbench.runtime import check_output_path

__all__ = [
    "TABLE_SUFFIXES",
    "check_comparison_path",
    "comparison_table",
    "get_comparison_info",
    "write_comparison",
]

TABLE_SUFFIXES = (".csv", ".json", ".parquet")
# Columns of the printed table, in order; a column is shown when some row has a value. Metric
# columns take their header and precision from dvbench.metrics; these two are not metrics.
_DISPLAY = ("model", "params_m", "gflops", "throughput_img_s", "latency_ms_median")
_DISPLAY += ("peak_mem_mb", "top1", "top5", "train_status")
_TEXT_COLUMNS = {"model": "model", "train_status": "training"}
_LEGEND = {
    "dualvit": "Dual-ViT",
    "searched": "Dual-ViT (searched)",
    "swin": "Swin",
    "pvt": "PVTv2",
    "other": "other",
}


def _header(column: str) -> str:
    return _TEXT_COLUMNS[column] if column in _TEXT_COLUMNS else column_header(column)


def _cell(column: str, value: Any) -> str:
    if column in _TEXT_COLUMNS:
        return "" if value is None else str(value)
    return metric_text(column, value)


def comparison_table(frame: pd.DataFrame, *, title: str | None = None) -> Table:
    """The comparison as a rich table (columns nobody measured are left out)."""
    shown = [c for c in _DISPLAY if c in frame and frame[c].notna().any()]
    table = Table(title=title)
    for column in shown:
        table.add_column(_header(column), justify="left" if column in _TEXT_COLUMNS else "right")
    for record in frame.to_dict("records"):
        table.add_row(*(_cell(column, record[column]) for column in shown))
    return table


def get_comparison_info(frame: pd.DataFrame) -> ParetoFrontInfo:
    """What the comparison plot shows: accuracy vs GFLOPs when trained, else throughput (or
    parameters, without timing) vs GFLOPs; every model labelled, families by marker."""
    if "top1" in frame and frame["top1"].notna().any():
        y_metric = "top1"
    elif frame["throughput_img_s"].notna().any():
        y_metric = "throughput_img_s"
    else:
        y_metric = "params_m"
    first = frame.iloc[0] if len(frame) else {}
    resolution = int(first["resolution"]) if len(frame) else None
    batch = int(first["batch_size"]) if len(frame) else 1
    subtitle = f"{metric_name('gflops')} at {resolution} px"
    if y_metric == "throughput_img_s":
        subtitle += (
            f"; {metric_name(y_metric)} on {first['device']} ({first['device_name']}), "
            f"batch {batch}"
        )
    if y_metric == "top1":
        subtitle += (
            f"; accuracy: proxy training, {first['proxy_data']}, {first['proxy_epochs']:g} epochs"
        )
    return get_points_info(
        frame.assign(name=frame["model"]),
        "gflops",
        y_metric,
        title=f"{metric_name(y_metric)} vs {metric_name('gflops')}",
        subtitle=subtitle,
        kind=lambda row, on_front: model_family(str(row["model"])),
        label=lambda row, on_front: str(row["model"]),
        legend=_LEGEND,
        resolution=resolution,
        batch_size=batch,
    )


def check_comparison_path(path: str | Path) -> Path:
    """``path`` if the comparison can be written there (checked before anything is measured)."""
    return check_output_path(path, TABLE_SUFFIXES)


def write_comparison(
    frame: pd.DataFrame, path: str | Path, *, plot: bool = True
) -> tuple[Path, Path | None]:
    """Write the comparison ``frame`` (``.csv``, ``.json`` or ``.parquet`` by suffix; folders
    are created) and its plot beside it (same name, ``.png``). Returns both paths (the
    plot's is None when not drawn)."""
    path = check_comparison_path(path)
    ensure_folder(path.parent, "out: folder")
    write_results(frame, path)
    if not plot:
        return path, None
    info = get_comparison_info(frame)
    if not info.points:
        return path, None
    return path, draw_pareto_front(info, path.with_suffix(".png"))
