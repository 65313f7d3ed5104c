"""Search spaces: YAML files that declare knobs, fixed settings, objectives and budgets.

A space file (``search_spaces/<name>.yaml``) holds::

    name: small
    description: one line
    knobs:              # Optuna distributions, by knob name (see KNOB_HELP)
      width: {choices: [16, 24, 32]}
      depth3: {low: 1, high: 3}
    fixed:              # DualViTConfig fields and fixed knob values
      head_dim: 8
      width_multipliers: [1, 2, 4, 5]
    objectives: [{metric: top1, direction: maximize}, {metric: gflops, direction: minimize}]
    constraints: {max_gflops: 1.0, max_params_m: 5}
    sampler: {name: nsga2, population_size: 8}
    n_trials: 20
    train: {data: digits, res: 32, epochs: 3, ...}     # TrainSettings fields + data options
    profile: {res: 224, latency: false, batch_size: 1}
    seeds: {dualvit_s_scaled: {width: 32, ...}}         # named seed trials (--seed-official)
    baselines: {pvt_v2_b0: {}, swin_t: {embed_dim: 48}} # default --baselines with overrides

Everything is validated before any trial runs; an error names the file and the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from dvbench.errors import UsageError
from dvbench.models import DualViTConfig

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"

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
METRICS = {
    "top1": "maximize",
    "top5": "maximize",
    "gflops": "minimize",
    "params_m": "minimize",
    "latency_ms_median": "minimize",
    "throughput_img_s": "maximize",
    "peak_mem_mb": "minimize",
    "train_time_s": "minimize",
}
TRAINING_METRICS = ("top1", "top5", "train_time_s")
CONSTRAINT_METRICS = {
    "max_gflops": "gflops",
    "max_params_m": "params_m",
    "max_latency_ms": "latency_ms_median",
    "max_peak_mem_mb": "peak_mem_mb",
}
SAMPLERS = ("nsga2", "tpe", "random", "gp")
TRAIN_DATA_KEYS = (
    "data",
    "data_dir",
    "res",
    "train_samples",
    "test_samples",
    "download",
    "val_fraction",
    "normalization",
)
PROFILE_KEYS = {"res": 224, "latency": False, "batch_size": 1, "threads": None, "memory": False}


@dataclass(frozen=True)
class Knob:
    name: str
    distribution: optuna.distributions.BaseDistribution

    def suggest(self, trial: optuna.Trial) -> Any:
        d = self.distribution
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            return trial.suggest_categorical(self.name, d.choices)
        if isinstance(d, optuna.distributions.IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.name, d.low, d.high, step=d.step, log=d.log)

    def contains(self, value: Any) -> bool:
        try:
            return self.distribution._contains(self.distribution.to_internal_repr(value))
        except ValueError:  # a categorical value that is not among the choices
            return False


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: Path | None
    description: str
    knobs: tuple[Knob, ...]
    fixed: Mapping[str, Any]
    objectives: tuple[Objective, ...]
    constraints: Mapping[str, float]
    sampler: Mapping[str, Any]
    n_trials: int
    train: Mapping[str, Any]
    profile: Mapping[str, Any]
    seeds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    baselines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    reference_point: Mapping[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------------- derived
    @property
    def needs_training(self) -> bool:
        return any(o.metric in TRAINING_METRICS for o in self.objectives)

    @property
    def needs_latency(self) -> bool:
        metrics = {o.metric for o in self.objectives}
        return bool(
            {"latency_ms_median", "throughput_img_s"} & metrics
            or "max_latency_ms" in self.constraints
            or self.profile.get("latency")
        )

    @property
    def needs_memory(self) -> bool:
        return bool(
            "peak_mem_mb" in {o.metric for o in self.objectives}
            or "max_peak_mem_mb" in self.constraints
            or self.profile.get("memory")
        )

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    def with_objectives(self, objectives: list[Objective]) -> SearchSpace:
        return dataclasses.replace(self, objectives=tuple(objectives))

    # ------------------------------------------------------------------------ sampling
    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        return {knob.name: knob.suggest(trial) for knob in self.knobs}

    def config(self, knobs: Mapping[str, Any], *, num_classes: int, img_size: int) -> DualViTConfig:
        """The network for a set of knob values (ValueError naming the field if impossible)."""
        return knobs_to_config(
            {**self.fixed, **knobs},
            num_classes=num_classes,
            img_size=img_size,
            name=f"{self.name}_candidate",
        )


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


# --------------------------------------------------------------------------- loading
def space_path(name_or_path: str | Path) -> Path:
    """A space by name (``small`` -> search_spaces/small.yaml) or by path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.parent != Path("."):
        if not path.is_file():
            raise UsageError(f"search space file not found: {path}")
        return path
    candidate = SPACES_DIR / f"{text}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
        raise UsageError(
            f"unknown search space {text!r} (spaces: {known}; or a path to a YAML file)"
        )
    return candidate


def list_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Read and validate a space; UsageError naming the file and the field otherwise."""
    path = space_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"{path}: not valid YAML: {first}") from None
    try:
        return parse_space(data, path=path)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None


_TOP_KEYS = (
    "name",
    "description",
    "knobs",
    "fixed",
    "objectives",
    "constraints",
    "sampler",
    "n_trials",
    "train",
    "profile",
    "seeds",
    "baselines",
    "reference_point",
)


def parse_space(data: Any, *, path: Path | None = None) -> SearchSpace:
    if not isinstance(data, Mapping):
        raise ValueError("expected a mapping at the top level")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (keys: {', '.join(_TOP_KEYS)})")
    name = data.get("name") or (path.stem if path else None)
    if not isinstance(name, str) or not name:
        raise ValueError("name: must be a non-empty string")
    knobs = tuple(_parse_knob(k, v) for k, v in _mapping(data, "knobs").items())
    if not knobs:
        raise ValueError("knobs: a space needs at least one knob")
    fixed = dict(_mapping(data, "fixed"))
    objectives = _parse_objectives(data.get("objectives"))
    constraints = _parse_constraints(_mapping(data, "constraints"))
    sampler = _parse_sampler(_mapping(data, "sampler"))
    n_trials = data.get("n_trials", 20)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials <= 0:
        raise ValueError(f"n_trials: must be a positive integer, got {n_trials!r}")
    train = dict(_mapping(data, "train"))
    profile = {**PROFILE_KEYS, **_mapping(data, "profile")}
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise ValueError(f"profile.{unknown[0]}: unknown setting ({', '.join(PROFILE_KEYS)})")
    _check_train(train, needed=any(o.metric in TRAINING_METRICS for o in objectives))
    seeds = {str(k): dict(v or {}) for k, v in _mapping(data, "seeds").items()}
    baselines = {str(k): dict(v or {}) for k, v in _mapping(data, "baselines").items()}
    reference = {}
    for metric, value in _mapping(data, "reference_point").items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"reference_point.{metric}: must be a number, got {value!r}")
        reference[str(metric)] = float(value)
    space = SearchSpace(
        name=name,
        path=path,
        description=str(data.get("description", "")),
        knobs=knobs,
        fixed=fixed,
        objectives=objectives,
        constraints=constraints,
        sampler=sampler,
        n_trials=n_trials,
        train=train,
        profile=profile,
        seeds=seeds,
        baselines=baselines,
        reference_point=reference,
    )
    _check_knob_values(space)
    return space


def _mapping(data: Mapping, key: str) -> Mapping:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: must be a mapping")
    return value


def _parse_knob(name: Any, spec: Any) -> Knob:
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


def _parse_objectives(raw: Any) -> tuple[Objective, ...]:
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
        direction = item.get("direction", METRICS[metric])
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
        return list(_parse_objectives(items))
    except ValueError as exc:
        raise UsageError(f"--objectives: {exc}") from None


def _parse_constraints(raw: Mapping) -> dict[str, float]:
    out = {}
    for key, value in raw.items():
        if key not in CONSTRAINT_METRICS:
            raise ValueError(f"constraints.{key}: unknown ({', '.join(CONSTRAINT_METRICS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"constraints.{key}: must be a positive number, got {value!r}")
        out[key] = float(value)
    return out


def _parse_sampler(raw: Mapping) -> dict[str, Any]:
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
            isinstance(value, bool) or not isinstance(value, int) or value < 2
        ):
            raise ValueError(f"sampler.{key}: must be an integer >= 2, got {value!r}")
    return out


def _check_train(train: Mapping[str, Any], *, needed: bool) -> None:
    from dvbench.train import TrainSettings

    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(train) - fields - set(TRAIN_DATA_KEYS))
    if unknown:
        raise ValueError(f"train.{unknown[0]}: unknown setting")
    if not needed:
        return
    if "res" not in train:
        raise ValueError(
            "train.res: the proxy resolution is required when accuracy is an objective"
        )
    try:
        TrainSettings(**{k: v for k, v in train.items() if k in fields})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"train.{exc}") from None


def _check_knob_values(space: SearchSpace) -> None:
    """Every seed trial lies inside the knobs, and the extremes of the space build."""
    names = {k.name for k in space.knobs}
    by_name = {k.name: k for k in space.knobs}
    for seed, values in space.seeds.items():
        for key, value in values.items():
            if key not in names:
                raise ValueError(f"seeds.{seed}.{key}: not a knob of this space")
            if not by_name[key].contains(value):
                raise ValueError(f"seeds.{seed}.{key}: {value!r} is outside the knob's range")
        missing = names - set(values)
        if missing:
            raise ValueError(f"seeds.{seed}: missing knob {sorted(missing)[0]}")
    res = int(space.train.get("res", space.profile["res"]))
    # The first value of every knob must at least name real knobs and fields; a range error
    # (an impossible combination) is fine here: such trials are recorded as infeasible.
    probe = {k.name: _first_value(k) for k in space.knobs}
    try:
        knobs_to_config({**space.fixed, **probe}, num_classes=10, img_size=res)
    except ValueError as exc:
        if "not a knob" in str(exc) or "give " in str(exc) or "needs" in str(exc):
            raise ValueError(f"knobs/fixed: {exc}") from None
    for metric in space.reference_point:
        if metric not in space.metrics:
            raise ValueError(f"reference_point.{metric}: not an objective of this space")


def _first_value(knob: Knob) -> Any:
    d = knob.distribution
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return d.choices[0]
    return d.low


def hypervolume_reference(space: SearchSpace) -> dict[str, float]:
    """The hypervolume reference point, per objective metric, in the metric's own units.

    Taken from ``reference_point`` in the space file; otherwise accuracy (percent) uses 0 and
    a cost uses its constraint bound when the space has one. Objectives left without a
    reference get one from the observed trials (documented with the table that uses it).
    """
    ref: dict[str, float] = {}
    for o in space.objectives:
        if o.metric in space.reference_point:
            ref[o.metric] = space.reference_point[o.metric]
        elif o.metric in ("top1", "top5"):
            ref[o.metric] = 0.0
        else:
            for key, metric in CONSTRAINT_METRICS.items():
                if metric == o.metric and key in space.constraints:
                    ref[o.metric] = space.constraints[key]
    return ref
