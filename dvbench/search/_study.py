"""The study around the trials: creating or joining it once, its settings record, seed
trials, and failing (then retrying once) the trials of workers that died.

Creation is atomic in every storage (study names are unique), so of many workers started
together exactly one creates the study; it enqueues the seed trials and then writes the
study's settings. A joining worker waits for those settings before it samples, and compares
its space with the study's (see :mod:`dvbench.search._versions`).
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import timm
import torch
from optuna.trial import TrialState

from dvbench.errors import UsageError
from dvbench.files import ensure_folder
from dvbench.search._journal import stale_trials
from dvbench.search._options import SearchOptions, make_sampler
from dvbench.search._versions import (
    VERSION_ATTR_PREFIX,
    SpaceVersion,
    now,
    record_version,
    settings_record,
    space_changes,
    space_versions,
)
from dvbench.search.record import (
    SEED_NAME,
    SEEDS_ENQUEUED,
    STUDY_ATTR,
    seeds_enqueued,
    started_by,
    study_settings,
)
from dvbench.search.storage import (
    RDB_SCHEMES,
    open_storage,
    retry_callback,
    storage_scheme,
    study_lock,
)
from dvbench.space.definition import SearchSpace, hypervolume_reference
from dvbench.space.export import space_yaml
from dvbench.space.knobs import param_name

SETTINGS_WAIT_S = 10.0  # how long a joining worker waits for the creator's study settings


def settings_of(options: SearchOptions, *, space_version: int = 1) -> dict[str, Any]:
    """What the study records about how it was run (read by reports and joining workers)."""
    space = options.space
    return {
        "space": space.name,
        "space_file": str(space.path) if space.path else None,
        "space_yaml": space_yaml(space),  # the space as run, which loads back to it
        "space_version": space_version,
        "space_record": options.space_record,
        **space.record(),
        "sampler": options.sampler or space.sampler["name"],
        "population_size": space.sampler.get("population_size"),
        "seed": options.seed,
        "n_trials": options.total_trials,
        "reference_point": hypervolume_reference(space),
        "device": options.device,
        "command": options.command,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "timm": timm.__version__,
            "optuna": optuna.__version__,
        },
        "machine": f"{platform.machine()} {platform.system()}, {torch.get_num_threads()} threads",
    }


def make_storage(options: SearchOptions) -> optuna.storages.BaseStorage:
    """The study's storage; a database's with Optuna's heartbeat (journal workers beat
    themselves): a dead worker's trial is failed and retried once."""
    return open_storage(
        options.storage_url,
        heartbeat_interval=options.heartbeat_interval,
        grace_period=options.grace_period,
    )


def join_study(options: SearchOptions, log: Callable[[str], None] | None = None) -> optuna.Study:
    """Create the study, or join it, so that one-time set-up happens once per study.

    Creation is atomic in every storage (study names are unique), so of many workers started
    together exactly one creates the study; it enqueues the seed trials and then writes the
    study's settings. A joining worker waits for those settings before it samples, so it never
    enqueues the seeds again, and refuses a space that changes what a trial means unless
    ``allow_space_change`` (then the space becomes the study's next version).
    """
    log = log or (lambda message: None)
    # Optuna logs a traceback per failed trial; the tables hold each one's reason instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if options.storage is None:
        ensure_folder(options.study_dir, "results folder")
    sampler_name = options.sampler or options.space.sampler["name"]
    sampler = make_sampler(sampler_name, options.space, options.sampler_seed)
    storage = make_storage(options)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=options.name,
            sampler=sampler,
            directions=options.space.directions,
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=options.name, storage=storage, sampler=sampler)
        created = False
    if not created and [d.name.lower() for d in study.directions] != options.space.directions:
        raise UsageError(
            f"study {options.name!r} has directions "
            f"{', '.join(d.name.lower() for d in study.directions)}; use another --study-name"
        )
    existing = None if created else _wait_for_settings(study)
    if existing is None:  # a new study, or its creator died before writing the settings
        _name_metrics(study, options.space.metrics)
        if options.seed_official:
            enqueue_seeds(study, options.space, log)
        record_version(study, _version(options, 1))
        study.set_user_attr(STUDY_ATTR, settings_of(options))  # last: the "ready" mark
        return study
    theirs = [o["metric"] for o in existing["objectives"]]
    if theirs != options.space.metrics:
        raise UsageError(
            f"study {options.name!r} optimises {', '.join(theirs)}, not "
            f"{', '.join(options.space.metrics)}; use another --study-name"
        )
    version = _settle_space(study, options, existing, log)
    if study.metric_names is None:  # a study made before metric names were set
        _name_metrics(study, options.space.metrics)
    if options.seed_official and not seeds_enqueued(study):
        enqueue_seeds(study, options.space, log, version)  # asked for after the study began
    return study


def _name_metrics(study: optuna.Study, metrics: Sequence[str]) -> None:
    """Name the objectives for Optuna's own tools (optuna-dashboard, optuna.visualization)."""
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(metrics))


def _version(options: SearchOptions, number: int, changed: Sequence[str] = ()) -> SpaceVersion:
    space = options.space
    return SpaceVersion(
        number=number,
        record=options.space_record,
        changed=tuple(changed),
        space_yaml=space_yaml(space),
        space_file=str(space.path) if space.path else None,
        command=options.command,
        recorded=now(),
    )


def _settle_space(
    study: optuna.Study,
    options: SearchOptions,
    settings: dict[str, Any],
    log: Callable[[str], None],
) -> int:
    """Join under the study's newest space version, or record this space as the next one;
    returns the version joined. Under the study's lock: of two workers recording changed
    spaces at once, the second sees the first's version and takes the next number."""
    with study_lock(options.storage_url, options.name):
        attrs = study.user_attrs
        versions = space_versions(attrs)
        latest = versions[-1]
        theirs = latest.record if latest.record is not None else settings_record(settings)
        changed = space_changes(theirs or {}, options.space_record)
        if not changed:
            return latest.number
        if not options.allow_space_change:
            raise UsageError(
                f"study {options.name!r} ran under another space (changed: "
                f"{'; '.join(changed)}); pass --allow-space-change to continue it as space "
                f"version {latest.number + 1}, or give --study-name a new name"
            )
        if not any(key.startswith(VERSION_ATTR_PREFIX) for key in attrs):  # made before versions
            record_version(study, dataclasses.replace(latest, record=theirs))
        version = record_version(study, _version(options, latest.number + 1, changed))
        study.set_user_attr(STUDY_ATTR, settings_of(options, space_version=version.number))
    log(f"space version {version.number} of study {options.name}: {'; '.join(changed)}")
    return version.number


def _wait_for_settings(study: optuna.Study) -> dict[str, Any] | None:
    deadline = time.monotonic() + SETTINGS_WAIT_S
    while True:
        settings = study_settings(study)
        if settings is not None or time.monotonic() >= deadline:
            return settings
        time.sleep(0.2)


def enqueue_seeds(
    study: optuna.Study, space: SearchSpace, log: Callable[[str], None], version: int = 1
) -> None:
    """Enqueue the space's seed trials (once per study: ``seeds_enqueued`` records it), as
    the parameters of space ``version``."""
    for name, knobs in space.seeds.items():
        params = {param_name(knob, version): value for knob, value in knobs.items()}
        study.enqueue_trial(params, user_attrs={SEED_NAME: name}, skip_if_exists=True)
    study.set_user_attr(SEEDS_ENQUEUED, sorted(space.seeds))
    if space.seeds:
        log(f"enqueued seed trials: {', '.join(space.seeds)}")


def fail_orphaned_trials(
    study: optuna.Study,
    grace_period: float,
    trials: Sequence[optuna.trial.FrozenTrial] | None = None,
) -> list[int]:
    """Fail (and retry once) RUNNING trials whose worker died before the objective started.

    Optuna's heartbeat only covers trials whose heartbeat thread got to record once; a worker
    killed between creating a trial and starting it leaves a RUNNING trial without one,
    which no heartbeat check ever fails. Such a trial has no ``worker`` attribute naming it
    (the objective's first write; a retry inherits its predecessor's); once it is older than
    the grace period it is an orphan. (Journal storages need no such rule: their
    heartbeat counts from the trial's start.) Its reason is written by the tables (a FAIL
    without a worker: "worker died before the trial started").
    """
    now = datetime.datetime.now()
    retry = retry_callback()
    orphans = []
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        started = trial.datetime_start
        if started_by(trial) is not None or started is None:
            continue
        if (now - started).total_seconds() < grace_period:
            continue
        if _fail(study, trial, retry):
            orphans.append(trial.number)
    return orphans


def _fail(study: optuna.Study, trial: optuna.trial.FrozenTrial, retry) -> bool:
    """Fail ``trial`` (another worker's) and enqueue its one retry; False if another worker
    got there first."""
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False
    retry(study, next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number))
    return True


def count_states(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[TrialState, int]:
    counts = dict.fromkeys(TrialState, 0)
    for t in trials:
        counts[t.state] += 1
    return counts


def reap_stale_trials(study: optuna.Study, options: SearchOptions) -> list[int]:
    """Fail (and retry once) trials whose worker died: stale heartbeats, then orphans.

    Databases: Optuna's heartbeat check (``optuna.storages.fail_stale_trials``). Journals: the
    workers' own beats (``_journal.stale_trials``), failed under the study's lock so that of
    two workers that see a trial stale at once only one fails and retries it. Returns the
    numbers of the journal trials it failed.
    """
    if storage_scheme(options.storage_url) == "journal":
        failed = []
        with study_lock(options.storage_url, options.name):
            trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            retry = retry_callback()
            for trial in stale_trials(trials, options.grace_period):
                if _fail(study, trial, retry):
                    failed.append(trial.number)
        return failed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    if storage_scheme(options.storage_url) in RDB_SCHEMES:
        fail_orphaned_trials(study, options.grace_period)
    return []
