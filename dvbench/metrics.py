"""The one table of metrics: what each number dvbench measures is called, and how it is read.

Every room reads this table -- space validation (objectives, constraints), the search's
tables and terminal display, the profiler's table, plots, the report and ``compare`` -- so a
metric's direction, unit and precision are defined once. A study's own directions (it may
maximise what is usually minimised) always win over :attr:`Metric.direction`, which is only
the default a space gets when it names a metric without a direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACCURACY_METRICS",
    "PREDICTION_OUTSIDE",
    "accuracy_standard_error",
    "format_with_error",
    "CONSTRAINTS",
    "METRICS",
    "PROXY_METRICS",
    "Metric",
    "axis_label",
    "column_header",
    "violation",
    "format_value",
    "get_metric",
]


@dataclass(frozen=True)
class Metric:
    """One measured quantity.

    ``kind`` is ``"accuracy"`` (changes with the training budget), ``"cost"`` (a property
    of the network and the hardware, measured once per candidate), ``"time"`` (what a step
    of the harness itself took) or ``"proxy"`` (a training-free score). ``constraint`` is the
    space key that bounds it: ``max_gflops`` from above, ``min_synflow`` from below.

    ``label`` names it in headers, axes and prose (``parameters``); ``short`` in tables short
    of width, such as the profile's terminal table (``params``; the label when not given);
    ``stem`` in file names, such as the plots' ``params_vs_gflops.png`` (the name when not
    given).
    """

    name: str
    direction: str
    label: str
    unit: str = ""
    fmt: str = ".4g"
    kind: str = "cost"
    constraint: str | None = None
    conditioned: bool = False  # measured at a resolution and batch size (timing, memory)
    short: str = ""
    stem: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "short", self.short or self.label)
        object.__setattr__(self, "stem", self.stem or self.name)

    @property
    def needs_training(self) -> bool:
        return self.kind == "accuracy" or self.name == "train_time_s"

    def header(self, *, narrow: bool = False) -> str:
        """A column header: the label and its unit, ``parameters (M)``. ``narrow``: the short
        name on a line above its unit, ``params`` over ``(M)``; a short name that is the unit
        itself (``img/s``) stands alone."""
        name = self.short if narrow else self.label
        if not self.unit or name == self.unit:
            return name
        return f"{name}\n({self.unit})" if narrow else f"{name} ({self.unit})"

    def text(self, value: Any) -> str:
        """A table cell in the metric's precision; empty when missing or not finite.

        Costs below 1 keep three significant digits, so tiny models do not show as 0.00.
        """
        try:
            number = float(value)
        except (TypeError, ValueError):
            return "" if value is None or value != value else str(value)
        if not math.isfinite(number):
            return ""
        if self.kind == "cost" and self.fmt.endswith("f") and 0 < abs(number) < 1:
            return f"{number:.3g}"
        return f"{number:{self.fmt}}"


_TABLE = (
    Metric(
        "params_m",
        "minimize",
        "parameters",
        "M",
        ".2f",
        constraint="max_params_m",
        short="params",
        stem="params",
    ),
    Metric("gflops", "minimize", "GFLOPs", "", ".2f", constraint="max_gflops"),
    Metric(
        "latency_ms_median",
        "minimize",
        "latency",
        "ms",
        ".2f",
        constraint="max_latency_ms",
        conditioned=True,
        stem="latency",
    ),
    # predicted from a device profile (dvbench.latency), not measured: its label says so
    Metric(
        "latency_pred_ms",
        "minimize",
        "predicted latency",
        "ms",
        ".2f",
        constraint="max_latency_pred_ms",
        conditioned=True,
        short="predicted",
    ),
    Metric("latency_ms_p10", "minimize", "latency p10", "ms", ".2f", conditioned=True, short="p10"),
    Metric("latency_ms_p90", "minimize", "latency p90", "ms", ".2f", conditioned=True, short="p90"),
    Metric(
        "throughput_img_s",
        "maximize",
        "throughput",
        "img/s",
        ".1f",
        conditioned=True,
        short="img/s",
        stem="throughput",
    ),
    Metric(
        "peak_mem_mb",
        "minimize",
        "peak memory",
        "MiB",
        ".0f",
        constraint="max_peak_mem_mb",
        conditioned=True,
        short="peak mem",
        stem="memory",
    ),
    Metric("top1", "maximize", "top-1 accuracy", "%", ".2f", kind="accuracy"),
    Metric("top5", "maximize", "top-5 accuracy", "%", ".2f", kind="accuracy"),
    # mean cross-entropy on the test set: noisy like an accuracy (seeds, images), no binomial
    Metric(
        "test_loss",
        "minimize",
        "test loss",
        "",
        ".4f",
        kind="accuracy",
        constraint="max_test_loss",
    ),
    Metric(
        "train_time_s",
        "minimize",
        "proxy training time",
        "s",
        ".1f",
        kind="time",
        stem="train_time",
    ),
    Metric("train_images_per_s", "maximize", "training speed", "img/s", ".0f", kind="time"),
    # training-free scores of dvbench.proxies (higher predicts higher accuracy); a space bounds
    # them from below (min_<name>) and measures them on its train: data, untrained. These
    # labels are the proxies' own: dvbench.proxies reads them from here
    *(
        Metric(name, "maximize", label, "", ".4g", kind="proxy", constraint=f"min_{name}")
        for name, label in (
            ("synflow", "SynFlow"),
            ("naswot", "NASWOT"),
            ("grad_norm", "grad norm"),
            ("snip", "SNIP"),
            ("jacob_cov", "Jacobian covariance"),
            ("zico", "ZiCo"),
            ("meco", "MeCo"),
        )
    ),
)

#: Every metric by name, in the order tables show them.
METRICS: dict[str, Metric] = {m.name: m for m in _TABLE}
#: Space constraint key -> the metric it bounds: ``max_*`` from above, ``min_*`` from below.
CONSTRAINTS: dict[str, str] = {m.constraint: m.name for m in _TABLE if m.constraint}
#: The training-free proxy metrics (measured by :mod:`dvbench.proxies`).
PROXY_METRICS: tuple[str, ...] = tuple(m.name for m in _TABLE if m.kind == "proxy")
#: Beside ``latency_pred_ms``: the cost features outside the device profile's measured range
#: (the prediction extrapolates); an evaluation's note, a trial's attribute, a table column.
PREDICTION_OUTSIDE = "latency_pred_outside"
#: Metrics that change with the training budget.
ACCURACY_METRICS: tuple[str, ...] = tuple(m.name for m in _TABLE if m.kind == "accuracy")


def get_metric(name: str) -> Metric:
    """The metric called ``name``; ``ValueError`` listing the known ones otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r} ({', '.join(METRICS)})") from None


def format_value(name: str, value: Any) -> str:
    """``value`` as a table cell in ``name``'s precision (``.4g`` for unknown columns)."""
    metric = METRICS.get(name)
    if metric is None:
        return Metric(name, "minimize", name).text(value)
    return metric.text(value)


def column_header(name: str, *, narrow: bool = False) -> str:
    """``name``'s column header (:meth:`Metric.header`); the name itself for unknown columns."""
    metric = METRICS.get(name)
    return name if metric is None else metric.header(narrow=narrow)


def axis_label(name: str, *, resolution: int | None = None, batch_size: int = 1) -> str:
    """An axis label with unit and conditions, e.g. ``GFLOPs (224 px, per image)``."""
    metric = METRICS.get(name)
    if metric is None:
        return name
    if name == "gflops":
        where = f"{resolution} px, " if resolution else ""
        return f"{metric.label} ({where}per image)"
    if metric.conditioned:
        where = f"{resolution} px, " if resolution else ""
        return f"{metric.label} ({metric.unit}, {where}batch {batch_size})"
    return metric.header()


def violation(key: str, value: float, bound: float) -> float:
    """Optuna's constraint value for ``key`` (feasible when <= 0): the relative excess over
    a ``max_*`` bound, or the relative shortfall under a ``min_*`` bound."""
    scale = abs(bound) or 1.0
    return (bound - value) / scale if key.startswith("min_") else (value - bound) / scale


def accuracy_standard_error(accuracy_percent: float, test_images: int) -> float:
    """Binomial standard error, in points, of an accuracy measured on ``test_images`` images
    (NaN when the count is unknown)."""
    try:
        p = min(max(float(accuracy_percent) / 100.0, 0.0), 1.0)
        n = int(test_images)
    except (TypeError, ValueError):
        return math.nan
    if n <= 0 or not math.isfinite(p):
        return math.nan
    return 100.0 * math.sqrt(p * (1 - p) / n)


def format_with_error(value: Any, error: Any) -> str:
    """``value ± error`` with the precision the error allows: the error to two significant
    digits, the value to the same decimal place (``86.7 ± 1.8``, ``48.48 ± 0.56``); the value
    alone (``.2f``) when the error is unknown."""
    try:
        number, se = float(value), float(error)
    except (TypeError, ValueError):
        return format_value("top1", value)
    if not math.isfinite(number):
        return ""
    if not math.isfinite(se) or se <= 0:
        return f"{number:.2f}"
    decimals = max(0, 1 - math.floor(math.log10(se)))
    return f"{number:.{decimals}f} ± {se:.{decimals}f}"
