"""What a device profile file may hold, checked before anything reads it.

A device profile is a file a user may have been handed, so it is read like a space file: a
regular file only (a link to ``/dev/zero`` is refused by its kind, not read until memory runs
out), at most :data:`MAX_BYTES`, strict JSON (no ``NaN``/``Infinity``), nested at most
:data:`MAX_DEPTH` deep (checked before parsing, so a 100,000-deep file is no
``RecursionError``), and every field of the schema with its type and range: coefficients and
intercept finite, non-negative and bounded (a prediction is then never negative or
non-finite), ``fit.model`` one of the models fitted, batch size and resolution integers in
range. Each violation is one ``ValueError`` naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dvbench.files import read_bounded

__all__ = ["MAX_BYTES", "MAX_DEPTH", "check_profile", "read_json_file", "strict_json"]

#: A profile of 20 candidates is about 20 KB; a thousand would still fit.
MAX_BYTES = 8 << 20
#: A profile nests 5 deep (samples -> sample -> config -> list); anything deeper is not one.
MAX_DEPTH = 32
#: Largest coefficient or intercept accepted (ms per unit of a feature, or ms).
MAX_COEF = 1e9
MAX_BATCH = 1 << 16
MIN_RESOLUTION, MAX_RESOLUTION = 8, 16384
MAX_THREADS = 1 << 12

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def read_json_file(path: Path, *, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value of ``path``: a regular file of at most ``max_bytes``, nested at most
    :data:`MAX_DEPTH` deep, strict JSON. ``FileNotFoundError`` when it is missing,
    ``ValueError`` (one line) for anything else."""
    raw = read_bounded(path, max_bytes, "profile")
    return strict_json(raw)


def strict_json(raw: bytes) -> Any:
    """Parse UTF-8 JSON ``raw``, refusing ``NaN``/``Infinity`` and nesting deeper than
    :data:`MAX_DEPTH` (measured on the bytes, before the recursive parser sees them)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    depth = _depth(raw)
    if depth > MAX_DEPTH:
        raise ValueError(f"nested {depth} deep; a profile nests at most {MAX_DEPTH}")

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON (strict JSON has no NaN or Infinity)")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except RecursionError:  # the depth check makes this unreachable; kept as a guard
        raise ValueError(f"nested deeper than {MAX_DEPTH}") from None


def _depth(raw: bytes) -> int:
    """Deepest bracket nesting of JSON bytes, strings left out."""
    brackets = _STRINGS.sub(b"", raw)
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{")))).astype(np.int64) - np.isin(
        codes, (ord("]"), ord("}"))
    ).astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


# -------------------------------------------------------------------------------- schema
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, field: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{field}: a finite number, got {value!r}")
    if not low <= value <= high:
        bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise ValueError(f"{field}: must be {bound}, got {value!r}")
    return float(value)


def _integer(value: Any, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field}: must be between {low} and {high}, got {value}")
    return value


def _typed(value: Any, field: str, kind: type) -> Any:
    """``value`` when it is a ``kind`` (str, Mapping, list), else one line naming ``field``."""
    if not isinstance(value, kind):
        noun = {str: "a string", Mapping: "a mapping", list: "a list"}[kind]
        raise ValueError(f"{field}: {noun}, got {type(value).__name__}")
    return value


def _optional(data: Mapping, key: str, default: Any) -> Any:
    value = data.get(key, default)
    return default if value is None else value


def check_profile(data: Any) -> None:
    """``ValueError`` naming the first field of ``data`` (a parsed profile of the right format
    and version) that breaks the schema; nothing when every field is of its type and range."""
    from dvbench.latency.features import FEATURES
    from dvbench.latency.predictor import MODELS

    data = _typed(data, "the profile", Mapping)
    for key in ("device", "device_name", "torch"):
        if key not in data:
            raise ValueError(f"{key}: missing")
        _typed(data[key], key, str)
    for key in ("space", "created"):
        _typed(_optional(data, key, ""), key, str)
    for key in ("batch_size", "resolution"):
        if key not in data:
            raise ValueError(f"{key}: missing")
    _integer(data["batch_size"], "batch_size", low=1, high=MAX_BATCH)
    _integer(data["resolution"], "resolution", low=MIN_RESOLUTION, high=MAX_RESOLUTION)
    if data.get("threads") is not None:
        _integer(data["threads"], "threads", low=1, high=MAX_THREADS)
    for key, value in _typed(_optional(data, "timing", {}), "timing", Mapping).items():
        if not (isinstance(value, str) or (_is_number(value) and math.isfinite(value))):
            raise ValueError(f"timing.{key}: a number or a string, got {value!r}")

    inputs_known = {"gflops", *FEATURES}
    if "samples" not in data:
        raise ValueError("samples: missing")
    for index, sample in enumerate(_typed(data["samples"], "samples", list)):
        where = f"samples[{index}]"
        sample = _typed(sample, where, Mapping)
        if "name" not in sample:
            raise ValueError(f"{where}.name: missing")
        _typed(sample["name"], f"{where}.name", str)
        if "features" not in sample:
            raise ValueError(f"{where}.features: missing")
        for name, value in _typed(sample["features"], f"{where}.features", Mapping).items():
            _number(value, f"{where}.features.{name}")
        for key in ("latency_ms_median", "latency_ms_p10", "latency_ms_p90"):
            if key not in sample:
                raise ValueError(f"{where}.{key}: missing")
            _number(sample[key], f"{where}.{key}")
        if "runs" not in sample:
            raise ValueError(f"{where}.runs: missing")
        _integer(sample["runs"], f"{where}.runs", low=0, high=2**62)
        for i, value in enumerate(_typed(_optional(sample, "rounds", []), f"{where}.rounds", list)):
            _number(value, f"{where}.rounds[{i}]")
        _typed(_optional(sample, "config", {}), f"{where}.config", Mapping)

    if "fit" not in data:
        raise ValueError("fit: missing")
    fit = _typed(data["fit"], "fit", Mapping)
    for key in ("model", "inputs", "coef", "intercept", "samples"):
        if key not in fit:
            raise ValueError(f"fit.{key}: missing")
    loo = _typed(_optional(fit, "loo", {}), "fit.loo", Mapping)
    for model, figures in loo.items():
        if model not in MODELS:
            raise ValueError(f"fit.loo.{model}: not a model ({', '.join(MODELS)})")
        for name, value in _typed(figures, f"fit.loo.{model}", Mapping).items():
            if value is not None:  # null: a figure that was not defined (constant ranks)
                _number(value, f"fit.loo.{model}.{name}", low=-math.inf)
    model = _typed(fit["model"], "fit.model", str)
    if model not in MODELS or model not in loo:
        fitted = ", ".join(loo) or "none"
        raise ValueError(f"fit.model: {model!r} is not among the fitted models ({fitted})")
    if "mdape" not in loo[model]:
        raise ValueError(f"fit.loo.{model}.mdape: missing")
    inputs = _typed(fit["inputs"], "fit.inputs", list)
    for i, name in enumerate(inputs):
        if not isinstance(name, str) or name not in inputs_known:
            raise ValueError(f"fit.inputs[{i}]: unknown input {name!r}")
    if tuple(inputs) != MODELS[model]:
        raise ValueError(f"fit.inputs: model {model} reads {list(MODELS[model])}, got {inputs}")
    coef = _typed(fit["coef"], "fit.coef", list)
    if len(coef) != len(inputs):
        raise ValueError(f"fit.coef: {len(coef)} coefficients for {len(inputs)} inputs")
    for i, value in enumerate(coef):
        _number(value, f"fit.coef[{i}]", high=MAX_COEF)
    _number(fit["intercept"], "fit.intercept", high=MAX_COEF)
    _integer(fit["samples"], "fit.samples", low=1, high=2**31)
    for name, bounds in _typed(_optional(fit, "ranges", {}), "fit.ranges", Mapping).items():
        if name not in inputs_known:
            raise ValueError(f"fit.ranges.{name}: unknown input")
        bounds = _typed(bounds, f"fit.ranges.{name}", list)
        if len(bounds) != 2:
            raise ValueError(f"fit.ranges.{name}: [low, high], got {len(bounds)} values")
        low = _number(bounds[0], f"fit.ranges.{name}[0]")
        _number(bounds[1], f"fit.ranges.{name}[1]", low=low)
