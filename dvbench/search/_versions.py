"""Space versions: what a trial's meaning depends on, and a study that changes it on purpose.

A resumed study must run under the space it was made with: a wider knob or a raised
``max_gflops`` changes what a candidate is and which ones count, and a front mixing both
regimes compares unlike things. :func:`space_record` is the part of a space that gives a trial
its meaning -- knobs and their ranges, fixed settings, objectives, constraints, training and
profiling settings -- as plain data; :func:`space_changes` names the fields that differ.
Comments, descriptions, ``n_trials``, the sampler, seed trials, baselines and the reference
point do not change what a trial means, nor do where the data lives (``train.data_dir``) and
whether it may be downloaded.

``--allow-space-change`` records the new space as the study's next version (study attribute
``space_version:N``); every trial records the version it ran under (user attribute
``space_version``), and the tables keep the newest version's trials on the front.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from dvbench import safe_yaml
from dvbench.search.record import study_entry
from dvbench.search.storage import STUDY_ATTR
from dvbench.space.definition import SearchSpace, parse_space
from dvbench.space.sections import Objective

VERSION_ATTR_PREFIX = "space_version:"  # study attribute: one per recorded space version
#: Fields of a space record that say where or how data is fetched, not what a trial means.
HARMLESS_FIELDS = frozenset({"train.data_dir", "train.download"})


@dataclass(frozen=True)
class SpaceVersion:
    """One version of a study's space: its record, and what changed from the version before."""

    number: int
    record: Mapping[str, Any] | None  # None: a study made before versions, read from settings
    changed: tuple[str, ...] = ()
    space_yaml: str | None = None
    space_file: str | None = None
    command: str | None = None
    recorded: str | None = None  # ISO date and time

    def as_attr(self) -> dict[str, Any]:
        return {
            "version": self.number,
            "record": self.record,
            "changed": list(self.changed),
            "space_yaml": self.space_yaml,
            "space_file": self.space_file,
            "command": self.command,
            "recorded": self.recorded,
        }


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), so stored and fresh records compare
    equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def space_record(space: SearchSpace) -> dict[str, Any]:
    """What a trial's meaning depends on: knobs, fixed settings, objectives, constraints, training
    and profiling settings, as plain data."""
    knobs = {
        knob.name: json.loads(optuna.distributions.distribution_to_json(knob.distribution))
        for knob in space.knobs
    }
    return _plain({"knobs": knobs, "fixed": dict(space.fixed), **space.record()})


def _fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """``section.key`` -> value (objectives: one field, their list)."""
    out: dict[str, Any] = {}
    for section, value in record.items():
        if isinstance(value, Mapping):
            out.update({f"{section}.{key}": item for key, item in value.items()})
        else:
            out[section] = value
    return out


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def space_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The fields of ``new`` that differ from ``old``, e.g. ``constraints.max_gflops 1.0 -> 2.0``
    or ``knobs.depth5 (added)``. Sections ``old`` lacks (a study made before they were recorded)
    are not compared."""
    before, after = _fields(old), _fields(new)
    sections = set(old)
    changes = []
    for name in sorted(set(before) | set(after)):
        if name in HARMLESS_FIELDS or name.split(".", 1)[0] not in sections:
            continue
        if name not in before:
            changes.append(f"{name} (added)")
        elif name not in after:
            changes.append(f"{name} (removed)")
        elif before[name] != after[name]:
            a, b = before[name], after[name]
            scalar = not isinstance(a, (dict, list)) and not isinstance(b, (dict, list))
            changes.append(f"{name} {_short(a)} -> {_short(b)}" if scalar else name)
    return changes


def settings_record(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The space record of a study's settings: stored, else rebuilt from the stored YAML (studies
    made before records), else the sections the settings hold (objectives, constraints, ...)."""
    if isinstance(settings.get("space_record"), Mapping):
        return dict(settings["space_record"])
    objectives = [Objective(o["metric"], o["direction"]) for o in settings.get("objectives", [])]
    try:
        space = parse_space(safe_yaml.load(settings["space_yaml"]))
        return space_record(space.with_objectives(objectives) if objectives else space)
    except Exception:  # no YAML, or one this version no longer reads: compare what is stored
        keys = ("objectives", "constraints", "train", "profile")
        partial = {key: settings[key] for key in keys if key in settings}
        return _plain(partial) if partial else None


def space_versions(attrs: Mapping[str, Any]) -> list[SpaceVersion]:
    """A study's space versions, oldest first, from its user attributes (a study made before
    versions, or never changed, has one: version 1, its settings)."""
    versions = []
    for key, value in attrs.items():
        if key.startswith(VERSION_ATTR_PREFIX) and isinstance(value, Mapping):
            versions.append(
                SpaceVersion(
                    number=int(value["version"]),
                    record=value.get("record"),
                    changed=tuple(value.get("changed") or ()),
                    space_yaml=value.get("space_yaml"),
                    space_file=value.get("space_file"),
                    command=value.get("command"),
                    recorded=value.get("recorded"),
                )
            )
    if not versions:
        settings = attrs.get(STUDY_ATTR) or {}
        first = SpaceVersion(
            1,
            settings.get("space_record"),
            space_yaml=settings.get("space_yaml"),
            space_file=settings.get("space_file"),
            command=settings.get("command"),
        )
        versions.append(first)
    return sorted(versions, key=lambda version: version.number)


def version_of(attrs: Mapping[str, Any], record: Mapping[str, Any]) -> int:
    """The newest version of the study whose record is ``record`` (else the newest version)."""
    versions = space_versions(attrs)
    mine = _plain(record)
    matching = [v.number for v in versions if v.record is not None and v.record == mine]
    return max(matching) if matching else versions[-1].number


def record_version(study: optuna.Study, version: SpaceVersion) -> SpaceVersion:
    """Store ``version`` under the first free number from its own; returns it as stored.

    Two workers recording the same new space at once write the same attribute, which is
    harmless; one recording another space at that moment moves on to the next number.
    """
    number = version.number
    while True:
        key = f"{VERSION_ATTR_PREFIX}{number}"
        stored = study_entry(study, key)
        if stored is None:
            study.set_user_attr(key, dataclasses.replace(version, number=number).as_attr())
            stored = study_entry(study, key)
        if stored and stored.get("record") == _plain(version.record):
            return dataclasses.replace(version, number=number)
        number += 1


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")
