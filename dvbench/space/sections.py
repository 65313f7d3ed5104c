"""The typed sections of a space file, validated once: ``objectives:`` (:class:`Objective`),
``constraints:``, ``sampler:``, ``train:`` (a :class:`DataSpec` and :class:`TrainSettings`) and
``profile:`` (:class:`ProfileSettings`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dvbench.errors import UsageError
from dvbench.metrics import CONSTRAINTS, METRICS
from dvbench.profile import ProfileSettings
from dvbench.train import DataSpec, TrainSettings

SAMPLERS = ("nsga2", "tpe", "random", "gp")
_DATA_FIELDS = {f.name for f in dataclasses.fields(DataSpec)} - {"source"}
_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainSettings)}
_PROFILE_FIELDS = {f.name for f in dataclasses.fields(ProfileSettings)}
#: What a space's ``profile:`` block means when it does not say: counts at 224 px, and, when
#: an objective or constraint needs timing, short timings (each candidate is timed once).
PROFILE_DEFAULTS: dict[str, Any] = {
    "resolution": 224,
    "latency": False,
    "memory": False,
    "warmup": 1,
    "min_runs": 5,
    "min_time_s": 0.3,
    "max_runs": 50,
}


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


def parse_objectives(raw: Any) -> tuple[Objective, ...]:
    if raw is None:
        return (Objective("top1", "maximize"), Objective("gflops", "minimize"))
    if not isinstance(raw, list) or not raw:
        raise ValueError("objectives: must be a non-empty list of {metric, direction}")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"metric": item}
        if not isinstance(item, Mapping) or "metric" not in item:
            raise ValueError(f"objectives[{i}]: expected {{metric: NAME, direction: ...}}")
        metric = item["metric"]
        if metric not in METRICS:
            raise ValueError(f"objectives[{i}].metric: unknown {metric!r} ({', '.join(METRICS)})")
        direction = item.get("direction", METRICS[metric].direction)
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"objectives[{i}].direction: must be minimize or maximize")
        out.append(Objective(metric, direction))
    if len({o.metric for o in out}) != len(out):
        raise ValueError("objectives: a metric is listed twice")
    return tuple(out)


def parse_objectives_option(text: str) -> list[Objective]:
    """``top1,gflops`` or ``top1:max,latency_ms_median:min`` from the command line."""
    items = []
    for part in text.split(","):
        metric, _, direction = part.strip().partition(":")
        direction = {"max": "maximize", "min": "minimize", "": None}.get(direction, direction)
        items.append(
            {"metric": metric} if direction is None else {"metric": metric, "direction": direction}
        )
    try:
        return list(parse_objectives(items))
    except ValueError as exc:
        raise UsageError(f"--objectives: {exc}") from None


def parse_constraints(raw: Mapping) -> dict[str, float]:
    out = {}
    for key, value in raw.items():
        if key not in CONSTRAINTS:
            raise ValueError(f"constraints.{key}: unknown ({', '.join(CONSTRAINTS)})")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key.startswith("min_"):  # a proxy's lower bound: any finite score
            if not number or not math.isfinite(value):
                raise ValueError(f"constraints.{key}: must be a finite number, got {value!r}")
        elif not number or not value > 0 or not math.isfinite(value):
            raise ValueError(f"constraints.{key}: must be a positive number, got {value!r}")
        out[key] = float(value)
    return out


#: The largest values a training or profiling block may ask for: beyond them a "proxy" is
#: no longer one (and an ``.inf`` would run forever).
SECTION_LIMITS: dict[str, float] = {
    "epochs": 10_000, "max_steps": 10_000_000, "time_limit_s": 30 * 86400,
    "batch_size": 65_536, "eval_batch_size": 65_536, "batch_sizes": 65_536,
    "resolution": 4096, "train_samples": 10_000_000, "test_samples": 10_000_000,
    "crop_padding": 1024, "num_threads": 1024, "threads": 1024, "warmup": 10_000,
    "min_runs": 100_000, "max_runs": 100_000, "min_time_s": 86400,
}  # fmt: skip


def refuse_unknown(section: str, raw: Mapping, allowed: tuple[str, ...]) -> None:
    """ValueError naming the first key of ``raw`` that ``section`` does not have, with the
    keys it does."""
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValueError(f"{section}.{unknown[0]}: unknown setting ({', '.join(allowed)})")


def check_section(where: str, raw: Mapping) -> None:
    """Every number of a ``train:``/``profile:`` block is finite and within
    :data:`SECTION_LIMITS` (``ValueError`` naming the field)."""
    for key, value in raw.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if not math.isfinite(item):
                raise ValueError(f"{where}.{key}: must be a finite number, got {item!r}")
            if key in SECTION_LIMITS and item > SECTION_LIMITS[key]:
                raise ValueError(f"{where}.{key}: {item!r} is above {SECTION_LIMITS[key]:g}")


def parse_train(raw: Mapping, *, needed: bool) -> tuple[DataSpec | None, TrainSettings | None]:
    """The ``train:`` block: a :class:`DataSpec` and :class:`TrainSettings` (None when the
    space trains nothing and the block is empty)."""
    raw = _renamed(raw, "train")
    check_section("train", raw)
    unknown = sorted(set(raw) - _DATA_FIELDS - _TRAIN_FIELDS - {"data"})
    if unknown:
        raise ValueError(f"train.{unknown[0]}: unknown setting")
    if not raw and not needed:
        return None, None
    if "resolution" not in raw:
        raise ValueError(
            "train.resolution: the proxy resolution is required when accuracy or a "
            "training-free proxy is an objective or constraint"
        )
    data = {k: v for k, v in raw.items() if k in _DATA_FIELDS}
    try:
        spec = DataSpec(source=str(raw.get("data", "digits")), **data)
        settings = TrainSettings(**{k: v for k, v in raw.items() if k in _TRAIN_FIELDS})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"train.{exc}") from None
    return spec, settings


def parse_profile(raw: Mapping) -> ProfileSettings:
    raw = _renamed(raw, "profile")
    check_section("profile", raw)
    if "batch_size" in raw:
        raw["batch_sizes"] = (raw.pop("batch_size"),)
    refuse_unknown("profile", raw, tuple(sorted(_PROFILE_FIELDS)))
    try:
        return ProfileSettings(**{**PROFILE_DEFAULTS, **raw})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"profile.{exc}") from None


def parse_sampler(raw: Mapping) -> dict[str, Any]:
    out = {"name": "nsga2", **raw}
    if out["name"] not in SAMPLERS:
        raise ValueError(f"sampler.name: must be one of {', '.join(SAMPLERS)}, got {out['name']!r}")
    unknown = set(out) - {"name", "population_size", "n_startup_trials"}
    if unknown:
        raise ValueError(
            f"sampler.{sorted(unknown)[0]}: unknown (population_size, n_startup_trials)"
        )
    for key in ("population_size", "n_startup_trials"):
        value = out.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 100_000
        ):
            raise ValueError(f"sampler.{key}: an integer from 2 to 100000, got {value!r}")
    return out


def _renamed(raw: Mapping, where: str) -> dict[str, Any]:
    """``res`` -> ``resolution`` (the short form older space files use)."""
    out = dict(raw)
    if "res" in out:
        if "resolution" in out:
            raise ValueError(f"{where}.res: give resolution or res, not both")
        out["resolution"] = out.pop("res")
    return out


def parse_noise(raw: Mapping) -> dict[str, tuple[float, float]]:
    """A space's ``noise:`` section: for an accuracy metric, the seed sd of one run measured by
    a calibration and its degrees of freedom (``top1: {seed_sd: 0.49, df: 16}``), the prior of
    the seed variance until the study's own repeats pool one (see ``dvbench.stats.noise``)."""
    out: dict[str, tuple[float, float]] = {}
    for metric, entry in raw.items():
        where = f"noise.{metric}"
        if metric not in METRICS or METRICS[metric].kind != "accuracy":
            names = ", ".join(m for m, v in METRICS.items() if v.kind == "accuracy")
            raise ValueError(f"{where}: not a trained metric ({names})")
        if not isinstance(entry, Mapping) or set(entry) != {"seed_sd", "df"}:
            raise ValueError(f"{where}: want {{seed_sd: NUMBER, df: NUMBER}}, got {entry!r}")
        sd, df = entry["seed_sd"], entry["df"]
        for key, value in (("seed_sd", sd), ("df", df)):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value < 0 or (key == "df" and value < 1):
                raise ValueError(f"{where}.{key}: a finite number >= {0 if key == 'seed_sd' else 1}"
                                 f", got {value!r}")  # fmt: skip
        out[str(metric)] = (float(sd), float(df))
    return out
