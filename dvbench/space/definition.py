"""Search spaces: YAML files that declare knobs, fixed settings, objectives and budgets.

A space file (``search_spaces/<name>.yaml`` for the built-in ones) holds::

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
    train: {data: digits, resolution: 32, epochs: 3, ...}  # a DataSpec + TrainSettings
    profile: {resolution: 224, latency: false, batch_size: 1}  # ProfileSettings fields
    seeds: {dualvit_s_scaled: {width: 32, ...}}         # named seed trials (--seed-official)
    baselines: {pvt_v2_b0: {}, swin_t: {embed_dim: 48}} # default --baselines with overrides
    confidence: 0.95    # the noise-aware dominance rule's confidence (0: strict)
    repeats: {seeds: 3} # more seeds where the front is unsure (racing)

Everything is validated once, at load time, into typed settings (:class:`DataSpec`,
:class:`TrainSettings`, :class:`ProfileSettings`); an error names the file and the field.
``res`` is accepted for ``resolution`` (files written before the two were one word).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from dvbench import safe_yaml
from dvbench.errors import UsageError
from dvbench.metrics import CONSTRAINTS, METRICS
from dvbench.models import DualViTConfig
from dvbench.profile import ProfileSettings
from dvbench.runtime import spaces_dir
from dvbench.space.device import PREDICTED_LATENCY, check_device, device_record, load_device
from dvbench.space.knobs import Knob, check_value, first_value, knobs_to_config, parse_knob
from dvbench.space.prefilter import Prefilter
from dvbench.space.repeats import Repeats
from dvbench.space.rungs import Fidelity
from dvbench.space.sections import (
    Objective,
    parse_constraints,
    parse_noise,
    parse_objectives,
    parse_profile,
    parse_sampler,
    parse_train,
)
from dvbench.stats.pareto import DEFAULT_CONFIDENCE, DominanceRule
from dvbench.train import DataSpec, TrainSettings

#: The built-in spaces, on the file system whether installed from a wheel or in place.
SPACES_DIR = spaces_dir()


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
    data: DataSpec | None
    train: TrainSettings | None
    profile: ProfileSettings
    seeds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    baselines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    reference_point: Mapping[str, float] = field(default_factory=dict)
    fidelity: Fidelity | None = None  # multi-fidelity search (successive halving on rungs)
    prefilter: Prefilter | None = None  # train only candidates a training-free score ranks high
    confidence: float = DEFAULT_CONFIDENCE  # of the dominance rule (see _pareto); 0: strict
    repeats: Repeats | None = None  # more seeds where the front is unsure (see _repeats)
    device: Any = None  # a dvbench.latency.DeviceProfile: latency_pred_ms is predicted from it
    #: metric -> (seed sd of one run, its df) from a calibration: the seed variance's prior
    noise: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    # ------------------------------------------------------------------------- derived
    @property
    def needs_training(self) -> bool:
        """Whether an objective is measured by proxy training."""
        return any(METRICS[o.metric].needs_training for o in self.objectives)

    @property
    def proxies(self) -> tuple[str, ...]:
        """Training-free proxies an objective or constraint of the space needs."""
        used = [o.metric for o in self.objectives] + [CONSTRAINTS[k] for k in self.constraints]
        return tuple(dict.fromkeys(m for m in used if METRICS[m].kind == "proxy"))

    @property
    def needs_latency(self) -> bool:
        return self.profile.latency

    @property
    def needs_memory(self) -> bool:
        return bool(self.profile.memory)

    @property
    def resolution(self) -> int:
        """The proxy-training resolution when candidates are trained, else the profile's."""
        return self.data.resolution if self.data is not None else self.profile.resolution

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def predicts_latency(self) -> bool:
        """Whether an objective or constraint reads ``latency_pred_ms`` (from ``device``)."""
        used = set(self.metrics) | {CONSTRAINTS[k] for k in self.constraints}
        return PREDICTED_LATENCY in used

    def with_objectives(self, objectives: list[Objective]) -> SearchSpace:
        """The space with other objectives (timing and memory follow what they need)."""
        space = dataclasses.replace(self, objectives=tuple(objectives))
        space = dataclasses.replace(space, profile=_needed_profile(space))
        check_device(space)
        return space

    def record(self) -> dict[str, Any]:
        """The space's settings as plain data, for the study's attributes and reports."""
        train = {}
        if self.data is not None:
            train = {"data": self.data.source, **dataclasses.asdict(self.data)}
            del train["source"]
        if self.train is not None:
            train.update(dataclasses.asdict(self.train))
        profile = dataclasses.asdict(self.profile)
        profile["batch_size"] = profile["batch_sizes"][0]
        record = {
            "objectives": [dataclasses.asdict(o) for o in self.objectives],
            "constraints": dict(self.constraints),
            "train": train,
            "profile": profile,
        }
        for name in ("fidelity", "prefilter", "repeats"):  # absent when unset: older records
            if getattr(self, name) is not None:  # stay equal
                record[name] = dataclasses.asdict(getattr(self, name))
        record["confidence"] = self.confidence
        if self.noise:  # absent when unset: older records stay equal
            record["noise"] = {m: {"seed_sd": sd, "df": df} for m, (sd, df) in self.noise.items()}
        if self.device is not None and self.predicts_latency:  # absent otherwise, as before
            record["device_profile"] = device_record(self.device)
        return record

    @property
    def num_classes(self) -> int:
        """The classes a search of this space gives its candidates (the head is part of the
        cost): ``fixed.num_classes`` when set, else the training data's, else ImageNet's 1000
        (a space that only counts costs)."""
        if "num_classes" in self.fixed:
            return int(self.fixed["num_classes"])
        if self.data is not None and self.data.num_classes:
            return self.data.num_classes
        return 1000

    # ------------------------------------------------------------------------ sampling
    def random_candidates(
        self, count: int, seed: int, *, img_size: int | None = None
    ) -> list[tuple[dict[str, Any], DualViTConfig]]:
        """Up to ``count`` distinct buildable candidates drawn at random (Optuna's
        RandomSampler, ``seed``), as (knobs, config) with the space's classes at ``img_size``
        (default: the profiling resolution). Draws stop after ``50 * count`` tries, so a space
        with fewer distinct buildable candidates gives fewer: the caller says whether that is
        an error. Optuna's log level is left as it was."""
        img_size = img_size or self.profile.resolution
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "created a study" line
        try:
            study = optuna.create_study(
                sampler=optuna.samplers.RandomSampler(seed=seed), directions=["maximize"]
            )
        finally:
            optuna.logging.set_verbosity(verbosity)
        out: list[tuple[dict[str, Any], DualViTConfig]] = []
        seen: set[str] = set()
        for _ in range(count * 50):
            trial = study.ask()
            knobs = self.sample(trial)
            study.tell(trial, 0.0)
            key = json.dumps(knobs, sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            try:
                cfg = self.config(knobs, num_classes=self.num_classes, img_size=img_size)
            except ValueError:
                continue
            out.append((knobs, cfg))
            if len(out) == count:
                break
        return out

    def sample(self, trial: optuna.Trial, version: int = 1) -> dict[str, Any]:
        """Knob values for ``trial`` (Optuna parameters named for the space ``version``)."""
        return {knob.name: knob.suggest(trial, version) for knob in self.knobs}

    def config(self, knobs: Mapping[str, Any], *, num_classes: int, img_size: int) -> DualViTConfig:
        """The network for a set of knob values (ValueError naming the field if impossible)."""
        return knobs_to_config(
            {**self.fixed, **knobs},
            num_classes=num_classes,
            img_size=img_size,
            name=f"{self.name}_candidate",
        )


# --------------------------------------------------------------------------- loading
def space_path(name_or_path: str | Path) -> Path:
    """A space by name (``small`` -> the built-in search_spaces/small.yaml) or by path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.parent != Path("."):
        if not path.exists():  # anything else (a folder, a device) the reader refuses by name
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


def load_space(name_or_path: str | Path, *, device: str | Path | None = None) -> SearchSpace:
    """Read and validate a space; UsageError naming the file and the field otherwise.
    ``device`` (a device profile file) replaces the space's ``device:``."""
    path = space_path(name_or_path)
    try:
        data = safe_yaml.load_file(path)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"{path}: not valid YAML: {first}") from None
    except (ValueError, OSError) as exc:  # aliases, size, encoding; unreadable
        raise UsageError(f"{path}: {exc}") from None
    try:
        return parse_space(data, path=path, device=device)
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
    "fidelity",
    "prefilter",
    "confidence",
    "repeats",
    "device",
    "noise",
)


def parse_space(
    data: Any, *, path: Path | None = None, device: str | Path | None = None
) -> SearchSpace:
    if not isinstance(data, Mapping):
        raise ValueError("expected a mapping at the top level")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (keys: {', '.join(_TOP_KEYS)})")
    name = data.get("name") or (path.stem if path else None)
    if not isinstance(name, str) or not name:
        raise ValueError("name: must be a non-empty string")
    knobs = tuple(parse_knob(k, v) for k, v in _mapping(data, "knobs").items())
    if not knobs:
        raise ValueError("knobs: a space needs at least one knob")
    fixed = dict(_mapping(data, "fixed"))
    objectives = parse_objectives(data.get("objectives"))
    constraints = parse_constraints(_mapping(data, "constraints"))
    sampler = parse_sampler(_mapping(data, "sampler"))
    n_trials = data.get("n_trials", 20)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or not 0 < n_trials <= 100_000:
        raise ValueError(f"n_trials: an integer from 1 to 100000, got {n_trials!r}")
    for key, value in fixed.items():
        check_value(f"fixed.{key}", str(key), value)
    used = [o.metric for o in objectives] + [CONSTRAINTS[k] for k in constraints]
    needs_data = any(METRICS[m].needs_training or METRICS[m].kind == "proxy" for m in used)
    data_spec, train = parse_train(_mapping(data, "train"), needed=needs_data)
    profile = parse_profile(_mapping(data, "profile"))
    seeds = {str(k): dict(v or {}) for k, v in _mapping(data, "seeds").items()}
    baselines = {str(k): dict(v or {}) for k, v in _mapping(data, "baselines").items()}
    reference = {}
    for metric, value in _mapping(data, "reference_point").items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ValueError(f"reference_point.{metric}: must be a finite number, got {value!r}")
        reference[str(metric)] = float(value)
    fidelity = None
    if data.get("fidelity") is not None:
        fidelity = Fidelity.parse(_mapping(data, "fidelity"))
        if not any(METRICS[o.metric].needs_training for o in objectives):
            raise ValueError("fidelity: needs an objective measured by proxy training (top1)")
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
        data=data_spec,
        train=train,
        profile=profile,
        seeds=seeds,
        baselines=baselines,
        reference_point=reference,
        fidelity=fidelity,
        prefilter=Prefilter.parse(_mapping(data, "prefilter")) if data.get("prefilter") else None,
        confidence=_parse_confidence(data.get("confidence", DEFAULT_CONFIDENCE)),
        repeats=Repeats.parse(_mapping(data, "repeats")) if data.get("repeats") else None,
        noise=parse_noise(_mapping(data, "noise")),
        device=(
            load_device(device, None)
            if device is not None
            else load_device(data["device"], path)
            if data.get("device") is not None
            else None
        ),
    )
    if space.prefilter is not None and not space.needs_training:
        raise ValueError("prefilter: only a space that trains its candidates (top1) has one")
    if space.repeats is not None:
        if not space.needs_training:
            raise ValueError("repeats: only a space that trains its candidates (top1) has them")
        if space.confidence == 0:
            raise ValueError("repeats: need a confidence above 0 to tell an unsure front")
    trained = [k for k in space.constraints if METRICS[CONSTRAINTS[k]].needs_training]
    if trained and not space.needs_training:
        raise ValueError(f"constraints.{trained[0]}: bounds a trained metric; this space trains "
                         "nothing (add an objective measured by proxy training, top1)")  # fmt: skip
    if trained and (space.fidelity is not None or space.repeats is not None):
        raise ValueError(
            f"constraints.{trained[0]}: judged on a run's own result after it trains, and a "
            "candidate of a space with fidelity rungs or repeats has several runs; drop one"
        )
    space = dataclasses.replace(space, profile=_needed_profile(space))
    check_device(space)
    _check_knob_values(space)
    return space


def _parse_confidence(value: Any) -> float:
    try:
        return DominanceRule(value).confidence
    except ValueError as exc:
        raise ValueError(f"{exc} (0.95: a 95 % margin; 0: the strict rule)") from None


def _mapping(data: Mapping, key: str) -> Mapping:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: must be a mapping")
    return value


def _needed_profile(space: SearchSpace) -> ProfileSettings:
    """The profile settings with timing and memory on where an objective or constraint
    needs them."""
    metrics = set(space.metrics) | {CONSTRAINTS[key] for key in space.constraints}
    timed = {"latency_ms_median", "throughput_img_s"}
    return dataclasses.replace(
        space.profile,
        latency=bool(space.profile.latency or timed & metrics),
        memory=bool(space.profile.memory or "peak_mem_mb" in metrics),
    )


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
    res = space.resolution
    # The first value of every knob must at least name real knobs and fields; a range error
    # (an impossible combination) is fine here: such trials are recorded as infeasible.
    probe = {k.name: first_value(k) for k in space.knobs}
    try:
        knobs_to_config({**space.fixed, **probe}, num_classes=10, img_size=res)
    except ValueError as exc:
        if "not a knob" in str(exc) or "give " in str(exc) or "needs" in str(exc):
            raise ValueError(f"knobs/fixed: {exc}") from None
    for metric in space.reference_point:
        if metric not in space.metrics:
            raise ValueError(f"reference_point.{metric}: not an objective of this space")


def hypervolume_reference(space: SearchSpace) -> dict[str, float]:
    """The hypervolume reference point, per objective metric, in the metric's own units.

    Taken from ``reference_point`` in the space file; otherwise a cost uses its constraint
    bound when the space has one. Objectives left without a reference get one from the study
    (an accuracy: chance, 100 / classes; see ``tables.hypervolume_reference``).
    """
    ref: dict[str, float] = {}
    for o in space.objectives:
        if o.metric in space.reference_point:
            ref[o.metric] = space.reference_point[o.metric]
        elif METRICS[o.metric].kind != "accuracy":
            key = METRICS[o.metric].constraint
            if key in space.constraints:
                ref[o.metric] = space.constraints[key]
    return ref
