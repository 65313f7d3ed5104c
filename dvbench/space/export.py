"""A space as the YAML that loads back to it: what a study records as "the space it ran".

A study may run a space changed in code (a benchmark replacing its data or rungs, or
``--objectives``), so the file it was read from is not the space it ran. :func:`space_yaml`
writes the space object itself -- every knob, fixed field, objective, constraint, the training,
profiling, fidelity, pre-filter, repeat and confidence settings, seeds, baselines -- in the
space-file format, so that ``load_space`` of it gives a space with the same record (what a
trial means) and ``dvbench search --space`` of it reproduces the study.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna
import yaml

__all__ = ["space_yaml"]


def _knob(distribution: optuna.distributions.BaseDistribution) -> dict[str, Any]:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return {"choices": list(distribution.choices)}
    out: dict[str, Any] = {"low": distribution.low, "high": distribution.high}
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        out["type"] = "float"
    if distribution.step not in (None, 1) or (
        isinstance(distribution, optuna.distributions.FloatDistribution) and distribution.step
    ):
        out["step"] = distribution.step
    if distribution.log:
        out["log"] = True
    return out


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (YAML's safe dumper writes no tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def space_yaml(space: Any) -> str:
    """The :class:`~dvbench.space.definition.SearchSpace` ``space`` as a space file."""
    data: dict[str, Any] = {
        "name": space.name,
        "description": space.description,
        "knobs": {k.name: _knob(k.distribution) for k in space.knobs},
        "fixed": dict(space.fixed),
        "objectives": [dataclasses.asdict(o) for o in space.objectives],
        "constraints": dict(space.constraints),
        "sampler": dict(space.sampler),
        "n_trials": space.n_trials,
        "confidence": space.confidence,
    }
    if space.data is not None or space.train is not None:
        train: dict[str, Any] = {}
        if space.data is not None:
            train.update(dataclasses.asdict(space.data))
            train["data"] = train.pop("source")
        if space.train is not None:
            train.update(dataclasses.asdict(space.train))
        data["train"] = train
    profile = dataclasses.asdict(space.profile)
    data["profile"] = profile
    for name in ("fidelity", "prefilter", "repeats"):
        if getattr(space, name) is not None:
            data[name] = dataclasses.asdict(getattr(space, name))
    for name in ("seeds", "baselines", "reference_point"):
        if getattr(space, name):
            data[name] = {k: dict(v) if isinstance(v, dict) else v
                          for k, v in getattr(space, name).items()}  # fmt: skip
    header = (
        f"# The space study runs of `{space.name}` used, written by dvbench (every setting,\n"
        "# defaults included). Load it with: python cli.py search --space THIS_FILE ...\n"
    )
    return header + yaml.safe_dump(_plain(data), sort_keys=False, default_flow_style=None)
