"""Compare models as the paper's tables do: one profiling method for all, proxy accuracy optional.

Models are anything :func:`dvbench.models.create_model` takes (dvbench names, aliases such as
``swin_t``, timm names, config files, ``study:NAME:TRIAL``). Costs and timings come from
:func:`dvbench.profile.profile_models`; with a data source, each model is also trained on the
same short schedule with :func:`dvbench.train.train_candidate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.table import Table

from dvbench.errors import UsageError
from dvbench.profile import ProfileResult, profile_models, results_to_frame
from dvbench.report.data import metric_name, metric_text
from dvbench.report.plots import (
    ParetoFrontInfo,
    draw_pareto_front,
    get_points_info,
    model_family,
)

if TYPE_CHECKING:
    from dvbench.train import TrainResult

__all__ = [
    "Comparison",
    "check_comparison_path",
    "compare_models",
    "comparison_table",
    "get_comparison_info",
    "write_comparison",
]

TABLE_SUFFIXES = (".csv", ".json", ".parquet")
# (column, header) of the printed table; a column is shown when some row has a value.
_DISPLAY = (
    ("model", "model"),
    ("params_m", "params (M)"),
    ("gflops", "GFLOPs"),
    ("throughput_img_s", "img/s"),
    ("latency_ms_median", "latency (ms)"),
    ("peak_mem_mb", "peak mem (MiB)"),
    ("top1", "top-1 (%)"),
    ("top5", "top-5 (%)"),
    ("train_status", "training"),
)
_LEGEND = {
    "dualvit": "Dual-ViT",
    "searched": "Dual-ViT (searched)",
    "swin": "Swin",
    "pvt": "PVTv2",
    "other": "other",
}


@dataclass(frozen=True)
class Comparison:
    """Profile results (one per model) and, when trained, one proxy result per model.

    ``training`` is aligned with ``profile``: a :class:`~dvbench.train.TrainResult`, or the
    reason the model could not be built for training.
    """

    profile: list[ProfileResult]
    training: list[TrainResult | str] = field(default_factory=list)
    data: str | None = None  # description of the proxy data, when trained
    epochs: float | None = None

    def frame(self) -> pd.DataFrame:
        """The profile table plus top1/top5/train_status when the models were trained."""
        frame = results_to_frame(self.profile)
        if self.data is None:
            return frame
        cells = [_training_cells(result) for result in self.training]
        frame["top1"] = pd.array([c[0] for c in cells], dtype="Float64")
        frame["top5"] = pd.array([c[1] for c in cells], dtype="Float64")
        frame["train_status"] = [c[2] for c in cells]
        frame["proxy_data"] = self.data
        frame["proxy_epochs"] = self.epochs
        return frame


def _training_cells(result: TrainResult | str) -> tuple[float | None, float | None, str]:
    if isinstance(result, str):
        return None, None, result
    if not result.ok:
        return None, None, result.reason or "failed"
    return result.top1, result.top5, "ok"


def compare_models(
    models: Sequence[str],
    *,
    resolution: int = 224,
    batch_size: int = 1,
    device: str = "cpu",
    latency: bool = True,
    memory: bool | None = None,
    data: str | None = None,
    epochs: float = 3.0,
    train_res: int = 32,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Profile ``models`` alike and, with ``data``, proxy-train each for ``epochs``.

    Costs are at ``resolution`` px; latency and throughput at ``batch_size``. Training uses
    ``data`` (``digits``, ``cifar10``, ``cifar100`` or an image folder) at ``train_res`` px
    and the default :class:`~dvbench.train.TrainSettings` otherwise, seeded by ``seed``.
    A model that cannot be trained is reported in ``train_status``; the others go on.
    """
    if len(set(models)) != len(models):
        raise UsageError("models: a model is named twice")
    report = progress or (lambda message: None)
    results = profile_models(
        list(models),
        resolution=resolution,
        batch_sizes=(batch_size,),
        device=device,
        latency=latency,
        memory=memory,
        progress=report,
    )
    if data is None:
        return Comparison(results)
    from dvbench.train import TrainSettings, load_data, train_candidate

    try:
        settings = TrainSettings(epochs=epochs)
        proxy = load_data(data, res=train_res, seed=seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    training: list[TrainResult | str] = []
    for spec, result in zip(models, results, strict=True):
        report(f"{result.model}: training on {proxy.name}")
        try:
            training.append(train_candidate(spec, proxy, settings, seed=seed, device=device))
        except UsageError as exc:
            training.append(str(exc))
    return Comparison(results, training, data=proxy.describe(), epochs=epochs)


def _cell(column: str, value: Any) -> str:
    if column in ("model", "train_status"):
        return "" if value is None else str(value)
    return metric_text(column, value)


def comparison_table(frame: pd.DataFrame, *, title: str | None = None) -> Table:
    """The comparison as a rich table (columns nobody measured are left out)."""
    shown = [(c, h) for c, h in _DISPLAY if c in frame and frame[c].notna().any()]
    table = Table(title=title)
    for column, header in shown:
        table.add_column(header, justify="left" if column in ("model", "train_status") else "right")
    for record in frame.to_dict("records"):
        table.add_row(*(_cell(column, record[column]) for column, _ in shown))
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
    subtitle = f"GFLOPs at {resolution} px"
    if y_metric == "throughput_img_s":
        subtitle += f"; throughput on {first['device']} ({first['device_name']}), batch {batch}"
    if y_metric == "top1":
        subtitle += (
            f"; accuracy: proxy training, {first['proxy_data']}, {first['proxy_epochs']:g} epochs"
        )
    return get_points_info(
        frame.assign(name=frame["model"]),
        "gflops",
        y_metric,
        title=f"{metric_name(y_metric)} vs GFLOPs",
        subtitle=subtitle,
        kind=lambda row, on_front: model_family(str(row["model"])),
        label=lambda row, on_front: str(row["model"]),
        legend=_LEGEND,
        resolution=resolution,
        batch_size=batch,
    )


def check_comparison_path(path: str | Path) -> Path:
    """``path`` if the comparison can be written there (checked before anything is measured)."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise UsageError(f"out: {path} must end in {', '.join(TABLE_SUFFIXES)}")
    if path.is_dir():
        raise UsageError(f"out: {path} is a folder; give a file name such as compare.csv")
    return path


def write_comparison(
    comparison: Comparison, path: str | Path, *, plot: bool = True
) -> tuple[Path, Path | None]:
    """Write the table (``.csv``, ``.json`` or ``.parquet`` by suffix; folders are created)
    and the plot beside it (same name, ``.png``). Returns both paths (the plot's is None
    when not drawn)."""
    from dvbench.profile import write_results

    path = check_comparison_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = comparison.frame()
    table = write_results(frame, path)
    if not plot:
        return table, None
    info = get_comparison_info(frame)
    if not info.points:
        return table, None
    return table, draw_pareto_front(info, Path(path).with_suffix(".png"))
