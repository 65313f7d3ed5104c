"""A candidate already measured is not trained again: its measurement is reused and linked.

Two workers, or a sampler that proposes a network twice, would otherwise spend the whole
training budget on a candidate whose result the study already holds. A trial's candidate is
"already measured" when a COMPLETE trial of the same space version ran the same normalised
config (the DualViTConfig fields, the name aside) as its first run (rung 0, first seed: the
same fidelity). Follow-up runs -- promotions to a longer rung, repeats with another seed --
are never deduplicated: those are measurements the search asked for on purpose.

The reusing trial records the twin's metrics, timings and constraint values and the number
of the trial it reuses (``duplicate_of``), so every table and the front see one candidate
twice, each with the same figures, and nothing is trained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from dvbench.search.record import CONFIG, METRICS_ATTR, TIMINGS, run_of, space_version

__all__ = ["DUPLICATE_OF", "config_key", "measured_twin", "reuse_measurement"]

#: User attribute: the number of the trial whose measurement this trial reuses.
DUPLICATE_OF = "duplicate_of"
#: Optuna keeps each ``Trial.set_constraint(key, value)`` as the system attribute
#: ``constraints:KEY`` (read here through the FrozenTrial, a public object).
_CONSTRAINT_PREFIX = "constraints:"


def config_key(config: Mapping[str, Any]) -> str:
    """The normalised config: every field but ``name`` (a label, not the network), as
    sorted JSON with tuples and lists alike."""
    return json.dumps({k: v for k, v in config.items() if k != "name"}, sort_keys=True)


def measured_twin(
    trials: Sequence[FrozenTrial],
    number: int,
    config: Mapping[str, Any],
    version: int | None,
) -> FrozenTrial | None:
    """The earliest COMPLETE first run (rung 0, first seed) of ``config`` under the space
    ``version`` among ``trials``, other than trial ``number`` itself and not itself a reuse;
    None when the candidate has not been measured."""
    key = config_key(config)
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.number == number or trial.state != TrialState.COMPLETE:
            continue
        if DUPLICATE_OF in trial.user_attrs or not run_of(trial).first:
            continue
        if space_version(trial) != version or CONFIG not in trial.user_attrs:
            continue
        if config_key(trial.user_attrs[CONFIG]) == key:
            return trial
    return None


def reuse_measurement(
    trial: optuna.Trial, twin: FrozenTrial, metrics: Sequence[str]
) -> list[float] | None:
    """Record ``twin``'s measurement on ``trial`` (metrics, timings, constraint values and
    ``duplicate_of``) and return its objective values for ``metrics``; None when the twin
    lacks one of them (then the candidate is measured as usual)."""
    recorded = twin.user_attrs.get(METRICS_ATTR) or {}
    values = [recorded.get(m) for m in metrics]
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        return None
    for key, value in twin.system_attrs.items():
        if key.startswith(_CONSTRAINT_PREFIX):
            trial.set_constraint(key.removeprefix(_CONSTRAINT_PREFIX), value)
    trial.set_user_attr(DUPLICATE_OF, twin.number)
    trial.set_user_attr(METRICS_ATTR, dict(recorded))
    trial.set_user_attr(TIMINGS, dict(twin.user_attrs.get(TIMINGS) or {}))
    return [float(v) for v in values]
