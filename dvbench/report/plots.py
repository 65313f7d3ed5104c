"""Plots of a study or a comparison: first what to draw (a NamedTuple), then the drawing.

As in Optuna's ``visualization`` package, each plot has a ``get_*_info`` function that
computes the points, lines and labels, and a ``draw_*`` function that only draws them; tests
check the info functions. Drawing uses matplotlib's object API (``Figure`` with an Agg
canvas), so it never switches the global backend or touches pyplot's figure list.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optuna
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import Bbox

from dvbench.files import write_with
from dvbench.metrics import METRICS
from dvbench.report.data import (
    ACCURACY_METRICS,
    ReportData,
    metric_label,
    metric_name,
    metric_text,
)
from dvbench.search import candidates
from dvbench.stats import STRICT, DominanceRule

__all__ = [
    "DPI",
    "FIGSIZE",
    "HypervolumeInfo",
    "ImportanceInfo",
    "ParetoFrontInfo",
    "PlotPoint",
    "draw_hypervolume",
    "draw_importance",
    "draw_pareto_front",
    "get_hypervolume_info",
    "get_importance_info",
    "get_pareto_front_info",
    "get_points_info",
    "model_family",
    "plot_file_name",
    "report_axes",
]

FIGSIZE = (8.0, 5.5)  # inches; at DPI this is 1200 x 825 pixels
DPI = 150
LOG_SCALE_DECADES = 1.5  # an axis whose values span more than this many decades is logarithmic
MIN_TRIALS_FOR_IMPORTANCE = 10

# Marker styles by kind of point. Named models (seeds, baselines) are outlined and on top.
_OUTLINED = dict(edgecolors="black", linewidths=0.5, zorder=5)
_STYLES: dict[str, dict[str, Any]] = {
    "trial": dict(marker="o", s=16, color="0.7", linewidths=0, zorder=2),
    "stopped": dict(marker="o", s=24, facecolors="none", edgecolors="0.45", linewidths=0.8),
    "front": dict(marker="o", s=30, color="tab:blue", edgecolors="white", linewidths=0.5, zorder=4),
    "searched": dict(marker="o", s=40, color="tab:blue", **_OUTLINED),
    "seed": dict(marker="*", s=150, color="tab:orange", **_OUTLINED),
    "dualvit": dict(marker="h", s=70, color="tab:brown", **_OUTLINED),
    "swin": dict(marker="s", s=50, color="tab:green", **_OUTLINED),
    "pvt": dict(marker="D", s=42, color="tab:red", **_OUTLINED),
    "other": dict(marker="^", s=55, color="tab:purple", **_OUTLINED),
}
_STUDY_LEGEND = {
    "trial": "other feasible trials",
    "stopped": "stopped at a lower rung (label: trial:budget; accuracy at that budget)",
    "front": "on the front, or tied with it within the noise (label: trial number)",
    "seed": "official Dual-ViT shapes (seed trials)",
    "dualvit": "Dual-ViT baseline",
    "swin": "Swin baseline",
    "pvt": "PVTv2 baseline",
    "other": "other baseline",
}


class PlotPoint(NamedTuple):
    x: float
    y: float
    name: str
    kind: str  # a key of the marker styles: trial, front, seed, swin, pvt, dualvit, ...
    label: str | None  # text drawn beside the marker; None for none
    on_front: bool  # not dominated under the study's rule (ties within the noise included)
    y_err: float = 0.0  # the y value's standard error (drawn as a bar of +-1 SE)


class ParetoFrontInfo(NamedTuple):
    title: str
    subtitle: str
    x_metric: str
    y_metric: str
    x_label: str
    y_label: str
    x_log: bool
    y_log: bool
    points: list[PlotPoint]  # everything drawn (feasible completed trials and baselines)
    front: list[tuple[float, float]]  # the estimated front (point estimates), sorted by x
    step: str  # matplotlib ``where`` of the front's staircase
    legend: dict[str, str]  # kind -> legend text, for the kinds present
    front_legend: str


class HypervolumeInfo(NamedTuple):
    title: str
    subtitle: str
    y_label: str
    numbers: list[int]
    values: list[float]


class ImportanceInfo(NamedTuple):
    title: str
    params: list[str]  # most important first
    importances: dict[str, list[float]]  # objective -> one value per param
    skipped: str | None  # why there are none, when there are none


# ------------------------------------------------------------------------------ infos
def model_family(name: str) -> str:
    """The marker kind for a model or baseline name: dualvit, searched, swin, pvt, other."""
    lowered = name.lower()
    if lowered.startswith("study:") or "_trial" in lowered:
        return "searched"
    if lowered.startswith("dualvit"):
        return "dualvit"
    if "swin" in lowered:
        return "swin"
    if "pvt" in lowered:
        return "pvt"
    return "other"


def plot_file_name(x_metric: str, y_metric: str) -> str:
    """``top1_vs_gflops.png``, ``top1_vs_latency.png``, ``params_vs_gflops.png``: each metric's
    file-name stem (:attr:`dvbench.metrics.Metric.stem`)."""
    return f"{_stem(y_metric)}_vs_{_stem(x_metric)}.png"


def _stem(metric: str) -> str:
    return METRICS[metric].stem if metric in METRICS else metric


def report_axes(data: ReportData) -> list[tuple[str, str]]:
    """The (x, y) metric pairs a study's report plots.

    Accuracy studies: accuracy against GFLOPs, against latency when it was measured, and
    against any other cost objective. Cost-only studies: the first cost objective against
    each other objective (a one-objective study: against GFLOPs, or parameters).
    """
    accuracy = next((m for m in data.metrics if m in ACCURACY_METRICS), None)
    if accuracy is not None:
        xs = ["gflops", "latency_ms_median", *data.metrics]
        xs = [x for x in dict.fromkeys(xs) if x not in ACCURACY_METRICS]
        return [(x, accuracy) for x in xs if data.measured(x)]
    if len(data.metrics) == 1:
        only = data.metrics[0]
        return [("gflops" if only != "gflops" else "params_m", only)]
    costs = [m for m, d in zip(data.metrics, data.directions, strict=True) if d == "minimize"]
    first = costs[0] if costs else data.metrics[0]
    return [(first, y) for y in data.metrics if y != first]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_log(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    if len(positive) < 2 or len(positive) < len(values):
        return False
    return math.log10(max(positive) / min(positive)) > LOG_SCALE_DECADES


def get_points_info(
    pool: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    *,
    title: str,
    subtitle: str = "",
    extra: pd.DataFrame | None = None,
    kind: Callable[[Mapping[str, Any], bool], str],
    label: Callable[[Mapping[str, Any], bool], str | None],
    legend: Mapping[str, str],
    resolution: int | None = None,
    batch_size: int = 1,
    directions: tuple[str, str] | None = None,
    rule: DominanceRule | None = None,
) -> ParetoFrontInfo:
    """Points of ``pool`` (its estimated front in these two axes drawn as a staircase) and
    ``extra``.

    ``kind(row, on_front)`` and ``label(row, on_front)`` choose each point's marker and text;
    rows without both metrics finite are left out. ``directions`` (x, y) decide the front: a
    study's own directions; without them, each metric's usual direction. A point is on the
    front when no other dominates it under ``rule`` (with the y value's standard error,
    column ``<y>_se``, where there is one): candidates tied with the front within the noise are
    on it too. The staircase joins the front of the point estimates.
    """
    x_dir, y_dir = directions or (_usual_direction(x_metric), _usual_direction(y_metric))
    rule = rule or STRICT
    se_column = f"{y_metric}_se"

    def point(row: Mapping[str, Any], on_front: bool) -> PlotPoint:
        error = row.get(se_column)
        return PlotPoint(
            float(row[x_metric]),
            float(row[y_metric]),
            str(row["name"]),
            kind(row, on_front),
            label(row, on_front),
            on_front,
            float(error) if _finite(error) else 0.0,
        )

    points: list[PlotPoint] = []
    front: list[tuple[float, float]] = []
    if len(pool):
        pool = pool[pool[x_metric].map(_finite) & pool[y_metric].map(_finite)]
    if len(pool):
        values = pool[[x_metric, y_metric]].astype(float).to_numpy()
        errors = np.zeros_like(values)
        if se_column in pool:
            errors[:, 1] = pd.to_numeric(pool[se_column], errors="coerce").fillna(0.0)
        mask = rule.front(values, (x_dir, y_dir), errors)
        strict = STRICT.front(values, (x_dir, y_dir))
        points = [point(row, bool(m)) for row, m in zip(pool.to_dict("records"), mask, strict=True)]
        front = sorted(
            (tuple(v) for v, m in zip(values.tolist(), strict, strict=True) if m),
            key=lambda xy: (xy[0], -xy[1] if y_dir == "maximize" else xy[1]),
        )
    rows = extra.to_dict("records") if extra is not None else []
    points += [
        point(row, False)
        for row in rows
        if _finite(row.get(x_metric)) and _finite(row.get(y_metric))
    ]
    present = {p.kind for p in points}
    return ParetoFrontInfo(
        title=title,
        subtitle=subtitle,
        x_metric=x_metric,
        y_metric=y_metric,
        x_label=metric_label(x_metric, resolution=resolution, batch_size=batch_size),
        y_label=metric_label(y_metric, resolution=resolution, batch_size=batch_size),
        x_log=_is_log([p.x for p in points]),
        y_log=y_metric not in ACCURACY_METRICS and _is_log([p.y for p in points]),
        points=points,
        front=front,
        # The attainment staircase: each front point holds until the next one along x.
        step="post" if x_dir == "minimize" else "pre",
        legend={k: text for k, text in legend.items() if k in present},
        front_legend="estimated front (point estimates; bars: +-1 SE)",
    )


def _usual_direction(metric: str) -> str:
    return METRICS[metric].direction if metric in METRICS else "minimize"


def get_pareto_front_info(data: ReportData, x_metric: str, y_metric: str) -> ParetoFrontInfo:
    """A study's feasible completed trials, their front and the baselines, in two metrics.

    Failed and over-budget trials are not drawn (the subtitle counts them). Front trials are
    labelled with their trial number, seed trials (official shapes) and baselines by name.
    """

    def kind(row: Mapping[str, Any], on_front: bool) -> str:
        if row.get("baseline"):
            return model_family(str(row["name"]))
        if _stopped(row):  # multi-fidelity: did not reach the top rung
            return "stopped"
        if str(row["name"]).startswith("dualvit_"):
            return "seed"
        return "front" if on_front else "trial"

    def label(row: Mapping[str, Any], on_front: bool) -> str | None:
        if row.get("baseline"):
            return str(row["name"])
        if str(row["name"]).startswith("dualvit_"):
            return f"{row['name']} ({int(row['number'])})"
        if _stopped(row):
            return f"{int(row['number'])}:{row['budget']}"
        return str(int(row["number"])) if on_front else None

    pool = candidates(data.trials, [x_metric, y_metric])
    baselines = data.baseline_rows
    baselines = baselines[baselines["state"] == "COMPLETE"] if len(baselines) else baselines
    stopped = 0
    if "final" in data.trials.columns:  # multi-fidelity: the rest, each at its last rung
        rest = candidates(data.trials.drop(columns="final"), [x_metric, y_metric])
        rest = rest.assign(final=False)[~rest["number"].isin(pool["number"])]
        baselines = pd.concat([baselines, rest]) if len(rest) else baselines
        stopped = len(rest)
    return get_points_info(
        pool,
        x_metric,
        y_metric,
        title=f"{data.study_name}: {metric_name(y_metric)} vs {metric_name(x_metric)}",
        subtitle=_study_subtitle(
            data, len(pool), stopped=stopped, accuracy=y_metric in ACCURACY_METRICS
        ),
        extra=baselines,
        kind=kind,
        label=label,
        legend=_STUDY_LEGEND,
        resolution=data.resolution,
        batch_size=data.batch_size,
        directions=(data.direction(x_metric), data.direction(y_metric)),
        rule=data.criteria.rule,
    )


def _stopped(row: Mapping[str, Any]) -> bool:
    """A multi-fidelity candidate that did not reach the top rung."""
    final = row.get("final")
    return isinstance(final, (bool, np.bool_)) and not final


def _study_subtitle(data: ReportData, drawn: int, *, stopped: int = 0, accuracy: bool) -> str:
    """What is drawn, counted as drawn: the candidates (and those stopped at a lower rung),
    then what is not drawn and why."""
    complete = data.count("COMPLETE")
    hidden = [
        f"{n} {what}"
        for n, what in (
            (data.count("FAIL"), "failed"),
            (data.infeasible, "over budget"),
            (data.count("PRUNED"), "pre-filtered or not run"),
        )
        if n
    ]
    text = f"{drawn + stopped} of {complete} completed candidates drawn"
    if stopped:
        text += f" ({stopped} stopped at a lower rung, hollow)"
    if hidden:
        text += f"; not drawn: {', '.join(hidden)}"
    train = data.settings.get("train") or {}
    if accuracy and train:
        epochs = train.get("epochs")
        budget = f", {epochs:g} epochs" if isinstance(epochs, (int, float)) else ""
        fidelity = data.settings.get("fidelity")
        if fidelity:  # multi-fidelity: the front is at the top rung
            rungs = "/".join(f"{r:g}" for r in fidelity["rungs"])
            budget = f", rungs {rungs} {fidelity['unit']} (front: top rung)"
        text += (
            f"\naccuracy: proxy training on {train.get('data', '?')} at "
            f"{train.get('resolution', train.get('res', '?'))} px{budget}"
        )
    return text


def get_hypervolume_info(data: ReportData) -> HypervolumeInfo | None:
    """The normalised hypervolume of the candidates completed up to each trial; None for one
    objective, or fewer than two points (a one-point history says nothing a number does not)."""
    if len(data.history) < 2 or data.hypervolume is None:
        return None
    hv = data.hypervolume
    reference = ", ".join(
        f"{m} {metric_text(m, r)}" for m, r in zip(data.metrics, hv.reference, strict=True)
    )
    return HypervolumeInfo(
        title=f"{data.study_name}: hypervolume of the Pareto front",
        subtitle=f"normalised axes (1 = every objective ideal); reference point: {reference}",
        y_label="hypervolume (share of the box from the reference to the ideal)",
        numbers=[int(n) for n in data.history["number"]],
        values=[float(v) for v in data.history["hypervolume"]],
    )


def get_importance_info(study: optuna.Study, data: ReportData) -> ImportanceInfo:
    """Optuna's parameter importances (PED-ANOVA) per objective, feasible trials only.

    Maximised objectives are negated first (the evaluator scores reaching low values). With
    fewer than ``MIN_TRIALS_FOR_IMPORTANCE`` feasible trials the result says why it is empty.
    """
    title = f"{data.study_name}: parameter importance (PED-ANOVA)"
    pool = candidates(data.trials, data.metrics)
    numbers = set(int(n) for n in pool["number"]) if len(pool) else set()
    trials = [t for t in study.get_trials(deepcopy=False) if t.number in numbers and t.params]
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCE:
        return ImportanceInfo(
            title,
            [],
            {},
            f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} "
            f"feasible completed trials, the study has {len(trials)}",
        )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "created a study" line
    try:
        feasible = optuna.create_study(directions=list(data.directions))
    finally:
        optuna.logging.set_verbosity(verbosity)
    feasible.add_trials(trials)
    importances: dict[str, dict[str, float]] = {}
    for i, (metric, direction) in enumerate(zip(data.metrics, data.directions, strict=True)):
        sign = -1.0 if direction == "maximize" else 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the evaluator's reminder about the sign
            try:
                importances[metric] = optuna.importance.get_param_importances(
                    feasible, target=lambda t, i=i, sign=sign: sign * t.values[i]
                )
            except (ValueError, RuntimeError) as exc:
                return ImportanceInfo(title, [], {}, f"Optuna could not compute them: {exc}")
    params = sorted(
        {p for values in importances.values() for p in values},
        key=lambda p: -sum(v.get(p, 0.0) for v in importances.values()),
    )
    return ImportanceInfo(
        title, params, {m: [v.get(p, 0.0) for p in params] for m, v in importances.items()}, None
    )


# ---------------------------------------------------------------------------- drawing
def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    """Save atomically, never through a link (:mod:`dvbench.files`); no bbox_inches: the image
    is exactly FIGSIZE x DPI."""
    return write_with(lambda tmp: figure.savefig(tmp, dpi=DPI), path)


def _titles(figure: Figure, ax: Any, title: str, subtitle: str) -> None:
    figure.suptitle(title, fontsize=12, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=8.5, color="0.35")


def _log_axis(axis: Any, decades: float = 1.0) -> None:
    """Plain-number ticks on a log axis: 1-2-5 per decade over a short span, one per decade
    over more than two decades (where 1-2-5 labels run into each other)."""
    subs = (1.0,) if decades > 2 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _staircase(front: Sequence[tuple[float, float]], where: str) -> list[tuple[float, float]]:
    """The vertices of the front's step line (as matplotlib's ``step`` draws it)."""
    out = [front[0]]
    for (x0, y0), (x1, y1) in zip(front, front[1:], strict=False):
        out += [(x1, y0) if where == "post" else (x0, y1), (x1, y1)]
    return out


def draw_pareto_front(info: ParetoFrontInfo, path: str | Path) -> Path:
    """Draw a :class:`ParetoFrontInfo` to a PNG file."""
    figure = _new_figure()
    ax = figure.add_subplot()
    stairs = _staircase(info.front, info.step) if len(info.front) > 1 else []
    if stairs:
        ax.plot(
            *zip(*stairs, strict=True),
            color="tab:blue",
            linewidth=1.3,
            alpha=0.7,
            zorder=3,
            label=info.front_legend,
        )
    for kind, text in info.legend.items():
        chosen = [p for p in info.points if p.kind == kind]
        ax.scatter([p.x for p in chosen], [p.y for p in chosen], label=text, **_STYLES[kind])
        errors = [p for p in chosen if p.y_err > 0]
        if errors:
            ax.errorbar(
                [p.x for p in errors], [p.y for p in errors], yerr=[p.y_err for p in errors],
                fmt="none", ecolor=_bar_colour(kind), elinewidth=0.8, capsize=2, zorder=1,
            )  # fmt: skip
    if info.x_log:
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    if info.y_log:
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
    ax.margins(x=0.08, y=0.1)
    ax.set_xlabel(info.x_label)
    ax.set_ylabel(info.y_label)
    ax.grid(True, which="major", alpha=0.3)
    _titles(figure, ax, info.title, info.subtitle)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        figure.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=min(len(handles), 2),  # three columns of these texts overflow the figure
            fontsize=8,
            frameon=False,
        )
    figure.draw_without_rendering()  # settle the layout before measuring label positions
    _place_labels(figure, ax, info.points, stairs)
    return _save(figure, path)


def _bar_colour(kind: str) -> str:
    style = _STYLES[kind]
    colour = style.get("color") or style.get("edgecolors") or "0.5"
    return colour if colour != "white" else "0.5"


def _label_offsets(radius: float) -> list[tuple[float, float, str, str]]:
    """Offsets (points) and alignments to try for a marker of ``radius`` points, nearest first."""
    out = []
    for r in (radius + 2.0, radius + 8.0, radius + 15.0, radius + 24.0):
        d = r * 0.8  # diagonal placements sit about as far from the centre as straight ones
        out += [
            (d, d, "left", "bottom"),
            (d, -d, "left", "top"),
            (-d, d, "right", "bottom"),
            (-d, -d, "right", "top"),
            (0.0, r, "center", "bottom"),
            (0.0, -r, "center", "top"),
            (r, 0.0, "left", "center"),
            (-r, 0.0, "right", "center"),
        ]
    return out


def _marker_radius(kind: str) -> float:
    """Half the marker's size in points (scatter sizes are areas in points squared)."""
    return math.sqrt(_STYLES[kind]["s"]) / 2


def _place_labels(
    figure: Figure,
    ax: Any,
    points: Sequence[PlotPoint],
    line: Sequence[tuple[float, float]] = (),
) -> None:
    """Label points greedily: each label takes the nearest offset that overlaps nothing.

    Overlaps with labels already placed cost most, then leaving the axes, then covering a
    marker or a segment of ``line``; far placements get a thin leader line. Baselines and
    seeds are placed first.
    """
    renderer = figure.canvas.get_renderer()
    scale = figure.dpi / 72.0
    inside = ax.get_window_extent(renderer)
    centres = ax.transData.transform(np.array([[p.x, p.y] for p in points])) if points else []
    markers = [
        Bbox.from_bounds(cx - r, cy - r, 2 * r, 2 * r)
        for (cx, cy), p in zip(centres, points, strict=True)
        for r in [_marker_radius(p.kind) * scale + 2]
    ]
    vertices = ax.transData.transform(np.array(line)) if len(line) else []
    segments = [
        Bbox.from_extents(
            min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])
        ).padded(1.0)
        for a, b in zip(vertices[:-1], vertices[1:], strict=True)
    ]
    placed: list[Bbox] = []
    order = sorted(
        (p for p in points if p.label), key=lambda p: (p.kind in ("trial", "front"), p.x, p.y)
    )
    for point in order:
        radius = _marker_radius(point.kind)
        best = None
        for dx, dy, ha, va in _label_offsets(radius):
            text = ax.annotate(
                point.label,
                (point.x, point.y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=7.5,
                annotation_clip=False,
            )
            box = text.get_window_extent(renderer).padded(1.5)
            text.remove()
            cost = (
                10 * sum(box.overlaps(b) for b in placed)
                + (0 if _contains(inside, box) else 6)
                + sum(box.overlaps(m) for m in markers)
                + sum(box.overlaps(segment) for segment in segments)
            )
            if best is None or cost < best[0]:
                best = (cost, dx, dy, ha, va, box)
            if cost == 0:
                break
        _, dx, dy, ha, va, box = best
        far = math.hypot(dx, dy) > radius + 6
        ax.annotate(
            point.label,
            (point.x, point.y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=7.5,
            annotation_clip=False,
            zorder=6,
            fontweight="bold" if point.kind not in ("trial", "front") else "normal",
            arrowprops=dict(arrowstyle="-", color="0.55", linewidth=0.5, shrinkA=0, shrinkB=radius)
            if far
            else None,
        ).set_in_layout(False)
        placed.append(box)


def _contains(outer: Bbox, inner: Bbox) -> bool:
    return (
        outer.x0 <= inner.x0
        and inner.x1 <= outer.x1
        and outer.y0 <= inner.y0
        and inner.y1 <= outer.y1
    )


def draw_hypervolume(info: HypervolumeInfo, path: str | Path) -> Path:
    """The hypervolume after each trial, as a staircase with the trials marked."""
    figure = _new_figure()
    ax = figure.add_subplot()
    ax.step(info.numbers, info.values, where="post", color="tab:blue", linewidth=1.5)
    ax.plot(info.numbers, info.values, "o", color="tab:blue", markersize=3.5)
    if info.values:
        ax.annotate(
            f"{info.values[-1]:.4g}",
            (info.numbers[-1], info.values[-1]),
            xytext=(-4, 6),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    ax.set_xlabel("trial number (feasible completed trials)")
    ax.set_ylabel(info.y_label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(info.values, default=1.0) * 1.1 or 1.0)
    ax.grid(True, alpha=0.3)
    _titles(figure, ax, info.title, info.subtitle)
    return _save(figure, path)


def draw_importance(info: ImportanceInfo, path: str | Path) -> Path:
    """Grouped horizontal bars: each parameter's importance for each objective."""
    figure = _new_figure()
    ax = figure.add_subplot()
    rows = np.arange(len(info.params))
    height = 0.8 / max(len(info.importances), 1)
    for i, (metric, values) in enumerate(info.importances.items()):
        ax.barh(
            rows + (i - (len(info.importances) - 1) / 2) * height,
            values,
            height=height,
            label=metric_name(metric),
        )
    ax.set_yticks(rows, info.params)
    ax.invert_yaxis()  # most important at the top
    ax.set_xlabel("importance (share of the objective's variation, sums to 1)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _titles(figure, ax, info.title, "feasible completed trials")
    return _save(figure, path)
