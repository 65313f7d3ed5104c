"""Knobs: what a search space varies, and how knob values become a :class:`DualViTConfig`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from dvbench.models import DualViTConfig

#: Knobs a space can vary besides plain DualViTConfig fields. ``{i}`` is a 1-based stage.
KNOB_HELP: dict[str, str] = {
    "width": "stage-1 width C1; stage i gets C1 * width_multipliers[i], rounded to head_dim",
    "width{i}": "width of stage i directly (rounded to head_dim)",
    "head_dim": "channels per attention head; heads = width / head_dim",
    "depth{i}": "blocks in stage i",
    "mlp_ratio{i}": "FFN ratio of stage i",
    "mlp_ratio": "one FFN ratio for every stage",
    "dual_stages": "stages that keep the two pathways apart before merging",
    "semantic_grid": "semantic tokens per side, pooled adaptively (grid x grid tokens)",
    "semantic_window": "pixel tokens per semantic token per side (window pooling)",
    "semantic_mlp_ratio_dual": "width ratio of the semantic MLP in dual stages",
    "semantic_mlp_ratio_merge": "width ratio of the semantic MLP in merge stages",
    "class_mlp_ratio": "FFN ratio of the class-attention head",
}
STRUCTURE_KEYS = (
    "width",
    "head_dim",
    "width_multipliers",
    "mlp_ratio",
    "class_mlp_ratio",
    "num_stages",
)


@dataclass(frozen=True)
class Knob:
    name: str
    distribution: optuna.distributions.BaseDistribution

    def suggest(self, trial: optuna.Trial, version: int = 1) -> Any:
        """Sample the knob as Optuna parameter :func:`param_name` of the space ``version``."""
        d, name = self.distribution, param_name(self.name, version)
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            return trial.suggest_categorical(name, d.choices)
        if isinstance(d, optuna.distributions.IntDistribution):
            return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)

    def contains(self, value: Any) -> bool:
        """Whether the knob can take ``value`` (Optuna's public distribution fields only)."""
        d = self.distribution
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            try:
                d.to_internal_repr(value)  # raises for a value that is not among the choices
            except ValueError:
                return False
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not d.low <= value <= d.high:
            return False
        if d.log or d.step is None:
            return True
        steps = (value - d.low) / d.step
        return abs(steps - round(steps)) < 1e-8


def param_name(knob: str, version: int = 1) -> str:
    """The Optuna parameter a knob is sampled as under space ``version``: the knob's name in the
    first version, ``knob@vN`` after it. A changed space is a new set of distributions, not a
    mutation of the old one (Optuna refuses a categorical whose choices changed), and the
    samplers learn each version's parameters apart."""
    return knob if version <= 1 else f"{knob}@v{version}"


def knob_of(param: str) -> str:
    """The knob an Optuna parameter samples (inverse of :func:`param_name`)."""
    return param.split("@v", 1)[0]


def knobs_to_config(
    values: Mapping[str, Any], *, num_classes: int, img_size: int, name: str | None = None
) -> DualViTConfig:
    """Turn knob values (and fixed settings) into a validated :class:`DualViTConfig`."""
    values = dict(values)
    fields = set(DualViTConfig.field_names())
    n = int(values.pop("num_stages", 0) or 0)
    multipliers = values.pop("width_multipliers", None)
    if not n:
        n = len(multipliers) if multipliers else len(values.get("embed_dims", ())) or 4
    head_dim = values.pop("head_dim", None)
    width = values.pop("width", None)
    stage_ratio = values.pop("mlp_ratio", None)
    class_ratio = values.pop("class_mlp_ratio", None)
    cfg: dict[str, Any] = {}

    dims = list(values.pop("embed_dims", [])) or [None] * n
    if width is not None:
        if not multipliers or len(multipliers) != n:
            raise ValueError(
                f"width_multipliers: needs {n} entries to turn width into stage widths"
            )
        dims = [width * m for m in multipliers]
    for i in range(n):
        if f"width{i + 1}" in values:
            dims[i] = values.pop(f"width{i + 1}")
    if any(d is None for d in dims):
        raise ValueError("width: give width (with width_multipliers), width1..N or embed_dims")
    if head_dim is not None:
        if head_dim <= 0:
            raise ValueError(f"head_dim: must be positive, got {head_dim}")
        dims = [head_dim * max(1, round(d / head_dim)) for d in dims]
        cfg["num_heads"] = [d // head_dim for d in dims]
    cfg["embed_dims"] = [int(round(d)) for d in dims]

    depths = list(values.pop("depths", [])) or [None] * n
    for i in range(n):
        if f"depth{i + 1}" in values:
            depths[i] = values.pop(f"depth{i + 1}")
    if any(d is None for d in depths):
        missing = next(i for i, d in enumerate(depths) if d is None)
        raise ValueError(f"depth{missing + 1}: no depth for stage {missing + 1}")
    cfg["depths"] = depths

    ratios = list(values.pop("mlp_ratios", [])) or [stage_ratio] * n
    ratios = ratios[:n] + ratios[n:]  # keep an explicit class ratio if given
    for i in range(n):
        if f"mlp_ratio{i + 1}" in values:
            ratios[i] = values.pop(f"mlp_ratio{i + 1}")
    if any(r is None for r in ratios[:n]):
        raise ValueError("mlp_ratio: give mlp_ratio, mlp_ratio1..N or mlp_ratios")
    if class_ratio is not None:
        ratios = ratios[:n] + [class_ratio]
    cfg["mlp_ratios"] = ratios

    if "semantic_grid" in values and values.get("semantic_pool", "grid") == "grid":
        cfg["semantic_pool"] = "grid"
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"{key}: not a knob ({', '.join(KNOB_HELP)}) or DualViTConfig field")
        cfg[key] = value
    cfg.update(num_classes=num_classes, img_size=img_size)
    if name is not None:
        cfg.setdefault("name", name)
    return DualViTConfig(**cfg)


#: Sane bounds of the numbers a space may give a network, by knob or field name (prefix
#: match: ``depth3`` is a ``depth``): a depth of 548,813,504 builds forever, a negative width
#: never. Inclusive (low, high).
LIMITS: dict[str, tuple[float, float]] = {
    "width": (1, 4096),
    "stem_hidden_dim": (1, 4096),
    "head_dim": (1, 1024),
    "depth": (1, 64),
    "mlp_ratio": (0.125, 64),
    "semantic_mlp_ratio": (0.125, 64),
    "class_mlp_ratio": (0.125, 64),
    "dual_stages": (0, 8),
    "num_stages": (1, 8),
    "semantic_grid": (1, 64),
    "semantic_window": (1, 64),
    "width_multipliers": (1, 64),
    "drop_path_rate": (0, 0.99),
    "drop_rate": (0, 0.99),
}


def _limit(name: str) -> tuple[float, float] | None:
    for prefix in sorted(LIMITS, key=len, reverse=True):
        if name.startswith(prefix):
            return LIMITS[prefix]
    return None


def check_value(where: str, name: str, value: Any) -> None:
    """``ValueError`` naming ``where`` when a number (or each number of a list) is not finite
    or lies outside ``name``'s bounds (:data:`LIMITS`)."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        if not math.isfinite(item):
            raise ValueError(f"{where}: must be a finite number, got {item!r}")
        bounds = _limit(name)
        if bounds is not None and not bounds[0] <= item <= bounds[1]:
            raise ValueError(f"{where}: {item!r} is outside {bounds[0]:g}..{bounds[1]:g}")


def parse_knob(name: Any, spec: Any) -> Knob:
    where = f"knobs.{name}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected {{choices: [...]}} or {{low: .., high: ..}}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}.choices: must be a non-empty list")
        if any(not isinstance(c, (int, float, str, bool)) and c is not None for c in choices):
            raise ValueError(f"{where}.choices: values must be numbers, strings or booleans")
        extra = set(spec) - {"choices"}
        if extra:
            raise ValueError(f"{where}.{sorted(extra)[0]}: not used with choices")
        check_value(f"{where}.choices", str(name), choices)
        return Knob(str(name), optuna.distributions.CategoricalDistribution(choices))
    unknown = set(spec) - {"low", "high", "step", "log", "type"}
    if unknown:
        raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown (choices, low, high, step, log)")
    if "low" not in spec or "high" not in spec:
        raise ValueError(f"{where}: needs low and high (or choices)")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), bool(spec.get("log", False))
    kind = spec.get("type") or (
        "int"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high) if v is not None)
        and (step is None or isinstance(step, int))
        else "float"
    )
    if kind not in ("int", "float"):
        raise ValueError(f"{where}.type: must be int or float, got {kind!r}")
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}.{key}: must be a number, got {value!r}")
    for key, value in (("low", low), ("high", high)):
        check_value(f"{where}.{key}", str(name), value)
    if low > high:
        raise ValueError(f"{where}: low {low} is above high {high}")
    try:
        if kind == "int":
            dist = optuna.distributions.IntDistribution(
                int(low), int(high), log=log, step=int(step or 1)
            )
        else:
            dist = optuna.distributions.FloatDistribution(
                float(low), float(high), log=log, step=step
            )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return Knob(str(name), dist)


def first_value(knob: Knob) -> Any:
    d = knob.distribution
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return d.choices[0]
    return d.low
