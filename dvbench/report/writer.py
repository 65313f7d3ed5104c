"""Write a study's report folder: the plots, then ``report.md`` that embeds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import optuna

from dvbench.files import ensure_folder, write_text_atomic
from dvbench.report.data import accuracy_axis_text, load_report_data, metric_name
from dvbench.report.effects import effects_section, get_effects_info, write_effects_table
from dvbench.report.markdown import render_report
from dvbench.report.plots import (
    draw_hypervolume,
    draw_importance,
    draw_pareto_front,
    get_hypervolume_info,
    get_importance_info,
    get_pareto_front_info,
    plot_file_name,
    report_axes,
)

__all__ = ["ReportFiles", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote: the page and the plots (caption -> file; the
    hypervolume and importance charts under those two names)."""

    markdown: Path
    plots: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # plots left out, and why


def write_report(
    study: optuna.Study, out_dir: str | Path, *, importance: bool = True
) -> ReportFiles:
    """Plot ``study`` and write ``report.md`` into ``out_dir`` (created if needed)."""
    out_dir = ensure_folder(out_dir, "report folder")
    data = load_report_data(study)
    fronts: dict[str, Path] = {}
    notes = []
    for x_metric, y_metric in report_axes(data):
        info = get_pareto_front_info(data, x_metric, y_metric)
        name = plot_file_name(x_metric, y_metric)
        if info.points:
            caption = f"{metric_name(y_metric)} vs {metric_name(x_metric)}"
            fronts[caption] = draw_pareto_front(info, out_dir / name)
        else:
            notes.append(f"{name}: nothing to draw yet")
    extra: dict[str, Path] = {}
    history = get_hypervolume_info(data)
    if history is not None:
        extra["hypervolume"] = draw_hypervolume(history, out_dir / "hypervolume.png")
    importance_info = get_importance_info(study, data) if importance else None
    if importance_info is not None and importance_info.params:
        extra["importance"] = draw_importance(importance_info, out_dir / "importance.png")
    elif importance_info is not None:
        notes.append(f"importance.png: {importance_info.skipped}")
    effects = get_effects_info(data)
    write_effects_table(effects, out_dir)
    text = render_report(
        data,
        front_plots={caption: path.name for caption, path in fronts.items()},
        hypervolume_plot=extra["hypervolume"].name if "hypervolume" in extra else None,
        importance=importance_info,
        importance_plot=extra["importance"].name if "importance" in extra else None,
        # a study's folder is RESULTS/NAME and its report RESULTS/NAME/report; a user's
        # calibrations come first, then the measurements committed with the project
        accuracy_axis=accuracy_axis_text(
            data.settings,
            [
                out_dir.parent.parent / "calibrate",
                out_dir.parent.parent / "benchmarks" / "calibrate",
            ],
        ),
        space_file=str(out_dir / "space.yaml") if data.settings.get("space_yaml") else None,
        knob_effects=effects_section(effects),
    )
    markdown = write_text_atomic(text, out_dir / "report.md")
    if data.settings.get("space_yaml"):  # the space as the study ran it (the Reproduce command)
        write_text_atomic(data.settings["space_yaml"], out_dir / "space.yaml")
    return ReportFiles(markdown, {**fronts, **extra}, tuple(notes))
