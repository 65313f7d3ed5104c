"""Run an Optuna multi-objective study over a search space, one worker per call.

A trial: sample knobs -> build the config (an impossible one is a failed trial with its
reason) -> count FLOPs/params at the deployment resolution (cheap) -> latency/memory when an
objective or constraint needs them -> check constraints (over budget: reported to the
sampler through ``Trial.set_constraint`` and not trained) -> proxy-train -> objectives.
Every trial stores its config, metrics and timings as user attributes, so it can be rebuilt
and re-profiled later (``study:NAME:TRIAL`` names it everywhere a model is accepted).

``n_trials`` is the study's total of COMPLETE trials, so re-running the same command after
an interruption finishes the same study; tables are re-exported after every trial.

Any number of workers (this function in several processes or machines, or
:func:`dvbench.search.workers.run_workers`) can share one study through its storage. The stop
is exact: a worker starts a trial only while COMPLETE + RUNNING trials are fewer than
``n_trials``, waits while the rest are running elsewhere (one may still fail and need a
retry), and a trial that two workers started at the same moment beyond the total is not run
(PRUNED, with its reason). A worker that dies mid-trial leaves a RUNNING trial with a stale
heartbeat; a live worker fails it and runs it once more (``retried_from`` in the tables).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import shlex
import socket
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import timm
import torch
from optuna.trial import TrialState

from dvbench.errors import UsageError
from dvbench.models import create_model
from dvbench.search.space import (
    CONSTRAINT_METRICS,
    TRAIN_DATA_KEYS,
    SearchSpace,
    hypervolume_reference,
)
from dvbench.search.storage import (
    RDB_SCHEMES,
    STUDY_ATTR,
    open_storage,
    retry_callback,
    storage_scheme,
    study_folder_storage,
)
from dvbench.search.tables import BASELINE_ATTR_PREFIX, export_tables, started_by

MAX_CONSECUTIVE_FAILURES = 25
WORKER_ATTR = "worker"  # {"id": host:pid, "trial": number}: who ran the trial (see started_by)
SEEDS_ATTR = "seeds_enqueued"
SETTINGS_WAIT_S = 10.0  # how long a joining worker waits for the creator's study settings


class TrialFailure(Exception):
    """A candidate that could not be evaluated; the study records it as FAIL and goes on."""


@dataclass(frozen=True)
class SearchOptions:
    space: SearchSpace
    study_name: str | None = None
    results_dir: Path = Path("results")
    storage: str | None = None
    sampler: str | None = None
    seed: int = 0
    n_trials: int | None = None
    timeout: float | None = None
    seed_official: bool = False
    baselines: tuple[str, ...] = ()
    device: str = "cpu"
    quiet: bool = False
    command: str | None = None
    # RDB storages: a worker's heartbeat; a RUNNING trial silent for grace_period seconds
    # (its worker died) is marked FAIL and retried once by a live worker.
    heartbeat_interval: int = 10
    grace_period: int = 30
    # Several workers: worker_index (0..K-1, from run_workers) picks the sampler seed; threads
    # caps this worker's torch threads; poll_interval is how often a waiting worker looks again.
    worker_index: int | None = None
    threads: int | None = None
    poll_interval: float = 1.0

    @property
    def name(self) -> str:
        return self.study_name or self.space.name

    @property
    def study_dir(self) -> Path:
        return Path(self.results_dir) / self.name

    @property
    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return study_folder_storage(self.study_dir)

    @property
    def sampler_seed(self) -> int:
        """The sampler's seed: ``seed`` for a lone worker, distinct for each shared worker.

        Workers with the same seed would propose the same candidates. ``run_workers`` numbers
        its workers; a worker started by hand on a shared ``--storage`` mixes in host:pid.
        """
        if self.worker_index is not None:
            return self.seed + self.worker_index
        if self.storage:
            return self.seed + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 10**6
        return self.seed

    @property
    def total_trials(self) -> int:
        return self.n_trials or self.space.n_trials


@dataclass
class SearchSummary:
    study_name: str
    storage: str
    completed: int
    failed: int
    infeasible: int
    files: dict[str, Path]
    pareto: Any  # pandas.DataFrame
    dominance: dict[str, list[str]]
    hypervolume: float | None
    reference_point: list[float]
    baselines: Any = None  # pandas.DataFrame of the baseline rows
    interrupted: bool = False
    stopped_reason: str | None = None
    new_trials: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    workers: int = 1
    worker_logs: list[Path] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers
def make_sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    settings = space.sampler
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=int(settings.get("population_size") or 50), seed=seed
        )
    if name == "tpe":
        return optuna.samplers.TPESampler(
            n_startup_trials=int(settings.get("n_startup_trials") or 10),
            seed=seed,
            multivariate=True,
            constant_liar=True,
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        try:
            import scipy  # noqa: F401

            return optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=int(settings.get("n_startup_trials") or 10)
            )
        except ImportError as exc:
            raise UsageError(f"sampler gp: needs {exc.name}, which is not installed") from None
    raise UsageError(f"unknown sampler {name!r} (nsga2, tpe, random, gp)")


def _train_settings(space: SearchSpace):
    from dvbench.train import TrainSettings

    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    return TrainSettings(**{k: v for k, v in space.train.items() if k in fields})


def _load_data(space: SearchSpace, seed: int):
    from dvbench.train import load_data

    options = {k: v for k, v in space.train.items() if k in TRAIN_DATA_KEYS}
    source = options.pop("data", "digits")
    return load_data(source, seed=seed, **options)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Evaluator:
    """Measures one candidate (trial or baseline) the same way."""

    def __init__(self, options: SearchOptions):
        self.options = options
        self.space = options.space
        self.data = _load_data(self.space, options.seed) if self.space.needs_training else None
        self.train_settings = _train_settings(self.space) if self.space.needs_training else None
        self.profile_res = int(self.space.profile["res"])
        self.num_classes = (
            self.data.num_classes
            if self.data is not None
            else int(self.space.fixed.get("num_classes", 1000))
        )

    # cheap counts, then the measured costs ------------------------------------------
    def costs(self, spec: Any, timings: dict[str, float]) -> dict[str, float]:
        """Params and GFLOPs; latency/memory too when an objective or constraint needs them.

        ``profile_models`` counts FLOPs itself, so a trial that is timed is traced once.
        """
        from dvbench.profile import count_cost, profile_models

        start = time.perf_counter()
        model = (
            spec
            if isinstance(spec, torch.nn.Module)
            else create_model(spec, img_size=self.profile_res)
        )
        if not (self.space.needs_latency or self.space.needs_memory):
            cost = count_cost(model, self.profile_res)
            timings["count_s"] = time.perf_counter() - start
            return {"params_m": cost.params / 1e6, "gflops": cost.gflops}
        profile = self.space.profile
        result = profile_models(
            [model],
            resolution=self.profile_res,
            batch_sizes=(int(profile.get("batch_size") or 1),),
            latency=self.space.needs_latency,
            memory=self.space.needs_memory,
            threads=profile.get("threads"),
            warmup=1,
            min_runs=5,
            min_time_s=0.3,
            max_runs=50,
        )[0]
        timings["profile_s"] = time.perf_counter() - start
        if result.status != "ok":
            raise TrialFailure(f"profiling failed: {result.status}")
        row = result.row()
        metrics = {"params_m": result.cost.params / 1e6, "gflops": result.cost.gflops}
        for key in (
            "latency_ms_median",
            "latency_ms_p10",
            "latency_ms_p90",
            "throughput_img_s",
            "peak_mem_mb",
        ):
            if row.get(key) is not None:
                metrics[key] = float(row[key])
        return metrics

    def violations(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Constraint values in Optuna's convention: feasible when <= 0 (relative excess)."""
        out = {}
        for key, bound in self.space.constraints.items():
            value = metrics.get(CONSTRAINT_METRICS[key])
            if value is None:
                continue
            out[key] = (value - bound) / bound
        return out

    def train(
        self,
        spec: Any,
        *,
        seed: int,
        overrides: Mapping[str, Any] | None = None,
        timings: dict[str, float],
    ) -> dict[str, float]:
        from dvbench.train import train_candidate

        start = time.perf_counter()
        result = train_candidate(
            spec,
            self.data,
            self.train_settings,
            seed=seed,
            device=self.options.device,
            overrides=overrides,
        )
        timings["train_s"] = time.perf_counter() - start
        if not result.ok:
            raise TrialFailure(f"training failed: {result.reason}")
        return {
            "top1": result.top1,
            "top5": result.top5,
            "train_time_s": result.train_time_s,
            "train_images_per_s": result.images_per_s,
        }


# -------------------------------------------------------------------------- the study
def _study_settings(options: SearchOptions) -> dict[str, Any]:
    space = options.space
    return {
        "space": space.name,
        "space_file": str(space.path) if space.path else None,
        "space_yaml": space.path.read_text() if space.path else None,
        "objectives": [dataclasses.asdict(o) for o in space.objectives],
        "constraints": dict(space.constraints),
        "sampler": options.sampler or space.sampler["name"],
        "population_size": space.sampler.get("population_size"),
        "seed": options.seed,
        "n_trials": options.total_trials,
        "train": dict(space.train),
        "profile": dict(space.profile),
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
    """The study's storage, with heartbeats: a dead worker's trial is failed and retried once."""
    return open_storage(
        options.storage_url,
        heartbeat_interval=options.heartbeat_interval,
        grace_period=options.grace_period,
    )


def open_study(options: SearchOptions, log: Callable[[str], None] | None = None) -> optuna.Study:
    """Create the study, or join it, so that one-time set-up happens once per study.

    Creation is atomic in every storage (study names are unique), so of many workers started
    together exactly one creates the study; it enqueues the seed trials and then writes the
    study's settings. A joining worker waits for those settings before it samples, so it never
    enqueues the seeds again.
    """
    log = log or (lambda message: None)
    # Optuna logs a traceback per failed trial; the tables hold each one's reason instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if options.storage is None:
        options.study_dir.mkdir(parents=True, exist_ok=True)
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
    if created:
        if options.seed_official:
            _enqueue_seeds(study, options.space, log)
        study.set_user_attr(STUDY_ATTR, _study_settings(options))  # last: the "ready" mark
        return study
    existing = _wait_for_settings(study)
    if existing is None:  # its creator died before writing them
        study.set_user_attr(STUDY_ATTR, _study_settings(options))
    else:
        theirs = [o["metric"] for o in existing["objectives"]]
        if theirs != options.space.metrics:
            raise UsageError(
                f"study {options.name!r} optimises {', '.join(theirs)}, not "
                f"{', '.join(options.space.metrics)}; use another --study-name"
            )
    if [d.name.lower() for d in study.directions] != options.space.directions:
        raise UsageError(
            f"study {options.name!r} has directions "
            f"{', '.join(d.name.lower() for d in study.directions)}; use another --study-name"
        )
    if options.seed_official and SEEDS_ATTR not in study.user_attrs:
        _enqueue_seeds(study, options.space, log)  # seeds asked for after the study began
    return study


def _wait_for_settings(study: optuna.Study) -> dict[str, Any] | None:
    deadline = time.monotonic() + SETTINGS_WAIT_S
    while True:
        settings = study.user_attrs.get(STUDY_ATTR)
        if settings is not None or time.monotonic() >= deadline:
            return settings
        time.sleep(0.2)


def _enqueue_seeds(study: optuna.Study, space: SearchSpace, log: Callable[[str], None]) -> None:
    """Enqueue the space's seed trials (once per study: ``seeds_enqueued`` records it)."""
    for name, knobs in space.seeds.items():
        study.enqueue_trial(dict(knobs), user_attrs={"seed_name": name}, skip_if_exists=True)
    study.set_user_attr(SEEDS_ATTR, sorted(space.seeds))
    if space.seeds:
        log(f"enqueued seed trials: {', '.join(space.seeds)}")


def run_baselines(
    study: optuna.Study, evaluator: _Evaluator, names: Sequence[str], log: Callable[[str], None]
) -> None:
    """Train and profile each baseline once per study, with the trials' exact settings."""
    space = evaluator.space
    for name in names:
        key = f"{BASELINE_ATTR_PREFIX}{name}"
        record = study.user_attrs.get(key)
        if record and record.get("state") == "COMPLETE":
            continue
        overrides = dict(space.baselines.get(name) or {})
        label = (
            name
            if not overrides
            else f"{name}({', '.join(f'{k}={v}' for k, v in overrides.items())})"
        )
        log(f"baseline {label}")
        timings: dict[str, float] = {}
        record = {"name": label, "overrides": overrides, "state": "COMPLETE"}
        start = time.perf_counter()
        try:
            cost_model = create_model(
                name, img_size=evaluator.profile_res, num_classes=evaluator.num_classes, **overrides
            )
            metrics = evaluator.costs(cost_model, timings)
            if evaluator.data is not None:
                metrics.update(
                    evaluator.train(
                        name, seed=options_seed(study), overrides=overrides, timings=timings
                    )
                )
        except (TrialFailure, UsageError, ValueError, RuntimeError) as exc:
            record.update(state="FAIL", fail_reason=str(exc), metrics={})
        else:
            record["metrics"] = metrics
        timings["duration_s"] = time.perf_counter() - start
        record["timings"] = timings
        study.set_user_attr(key, record)


def options_seed(study: optuna.Study) -> int:
    return int(study.user_attrs.get(STUDY_ATTR, {}).get("seed", 0))


def make_objective(options: SearchOptions, evaluator: _Evaluator):
    space = options.space

    def objective(trial: optuna.Trial) -> list[float]:
        # First write of every trial: marks it as started by a live worker (see
        # fail_orphaned_trials); by now Optuna's heartbeat thread is running too.
        objective.last = (trial._trial_id, TrialState.FAIL)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        trial.set_user_attr(WORKER_ATTR, {"id": worker, "trial": trial.number})
        if trial.user_attrs.get("fail_reason"):  # a retry inherits its predecessor's attrs
            trial.set_user_attr("fail_reason", None)
        ahead = _trials_ahead(trial, options.total_trials, objective.finished_before)
        if ahead >= options.total_trials:
            # Another worker started a trial at the same moment and the study is full.
            trial.set_user_attr(
                "fail_reason",
                f"not run: {ahead} earlier trials were complete or running "
                f"(n_trials {options.total_trials})",
            )
            objective.last = (trial._trial_id, TrialState.PRUNED)
            raise optuna.TrialPruned()
        try:
            values = _evaluate(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C / SIGINT)")
            raise
        objective.last = (trial._trial_id, TrialState.COMPLETE)
        return values

    objective.last = None  # (trial id, state) of the trial this worker ran last
    objective.finished_before = 0  # FAIL/PRUNED trials seen before asking (see _trials_ahead)

    def _evaluate(trial: optuna.Trial) -> list[float]:
        timings: dict[str, float] = {}
        knobs = space.sample(trial)
        try:
            try:
                cfg = space.config(
                    knobs, num_classes=evaluator.num_classes, img_size=evaluator.profile_res
                )
                train_cfg = None
                if evaluator.data is not None:
                    train_cfg = cfg.replace(img_size=evaluator.data.res)
            except ValueError as exc:
                raise TrialFailure(f"invalid config: {exc}") from None
            trial.set_user_attr("config", cfg.to_dict())
            metrics = evaluator.costs(cfg, timings)
            violations = evaluator.violations(metrics)
            for key, value in violations.items():
                trial.set_constraint(key, value)
            feasible = all(v <= 0 for v in violations.values())  # tables read the constraints
            if evaluator.data is not None:
                if feasible:
                    metrics.update(
                        evaluator.train(
                            train_cfg, seed=options.seed + trial.number, timings=timings
                        )
                    )
                else:
                    # Over budget: not trained. Accuracy 0 keeps it off any front; the
                    # constraint tells the sampler why.
                    over = ", ".join(k for k, v in violations.items() if v > 0)
                    trial.set_user_attr("skipped", f"over budget ({over}); not trained")
                    metrics.update(top1=0.0, top5=0.0, train_time_s=0.0)
            values = [metrics.get(m) for m in space.metrics]
            bad = [m for m, v in zip(space.metrics, values) if not _finite(v)]
            if bad:
                raise TrialFailure(f"objective {bad[0]} is {values[space.metrics.index(bad[0])]}")
        except TrialFailure as exc:
            trial.set_user_attr("fail_reason", str(exc))
            trial.set_user_attr("timings", timings)
            raise
        except (torch.OutOfMemoryError, RuntimeError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            trial.set_user_attr("fail_reason", reason)
            trial.set_user_attr("timings", timings)
            raise TrialFailure(reason) from exc
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("timings", timings)
        return [float(v) for v in values]

    return objective


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
    heartbeat counts from the trial's start.)
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
        try:
            # the reason first: a finished trial's attributes can no longer be written
            trial_handle = optuna.Trial(study, trial._trial_id)
            trial_handle.set_user_attr("fail_reason", "worker died before the trial started")
            study.tell(trial.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # another worker got there first
            continue
        retry(study, study.get_trials(deepcopy=False)[trial.number])
        orphans.append(trial.number)
    return orphans


def _counts(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[TrialState, int]:
    counts = dict.fromkeys(TrialState, 0)
    for t in trials:
        counts[t.state] += 1
    return counts


def _trials_ahead(trial: optuna.Trial, total: int, finished_before: int) -> int:
    """COMPLETE or RUNNING trials numbered before ``trial`` (the ones that fill the study).

    ``finished_before`` FAIL/PRUNED trials, seen before this trial was asked for, are numbered
    before it and stay finished, so at most ``number - finished_before`` trials are ahead;
    when that is under ``total`` nothing is read. Only near the end of a study, when another
    worker may have started a trial at the same moment, are the trials themselves read.
    """
    if trial.number - finished_before < total:
        return trial.number - finished_before  # an upper bound, below the total
    live = (TrialState.COMPLETE, TrialState.RUNNING)
    trials = trial.study.get_trials(deepcopy=False, states=live)
    return sum(1 for t in trials if t.number < trial.number)


def reap_stale_trials(study: optuna.Study, options: SearchOptions) -> None:
    """Fail (and retry once) trials whose worker died: stale heartbeats, then orphans."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    if storage_scheme(options.storage_url) in RDB_SCHEMES:
        fail_orphaned_trials(study, options.grace_period)


def set_threads(threads: int | None) -> None:
    """Cap this process's torch threads (workers sharing a machine must not oversubscribe)."""
    if threads:
        torch.set_num_threads(threads)


def run_search(
    options: SearchOptions,
    *,
    log: Callable[[str], None] | None = None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> SearchSummary:
    """Run (or continue) the study until it holds ``n_trials`` COMPLETE trials.

    Safe to run in any number of processes on one study (see the module docstring).
    """
    log = log or (lambda message: None)
    set_threads(options.threads)
    study = open_study(options, log)
    evaluator = _Evaluator(options)
    space = options.space
    metrics, directions = space.metrics, space.directions
    files: dict[str, Path] = {}

    def export() -> None:
        files.update(export_tables(study, options.study_dir, metrics, directions))

    interrupted = False
    stopped_reason = None
    new_trials = 0
    overhead = {"export_s": 0.0, "wait_s": 0.0}
    try:
        if options.baselines:
            run_baselines(study, evaluator, options.baselines, log)
            export()
        consecutive_failures = 0
        started = time.monotonic()
        objective = make_objective(options, evaluator)
        waiting_since = None
        rdb = storage_scheme(options.storage_url) in RDB_SCHEMES
        while True:
            trials = study.get_trials(deepcopy=False)
            if rdb and fail_orphaned_trials(study, options.grace_period, trials):
                trials = study.get_trials(deepcopy=False)
            counts = _counts(trials)
            complete, running = counts[TrialState.COMPLETE], counts[TrialState.RUNNING]
            if complete >= options.total_trials:
                break
            if options.timeout is not None and time.monotonic() - started >= options.timeout:
                stopped_reason = f"timeout of {options.timeout:g} s reached"
                break
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                stopped_reason = f"{consecutive_failures} trials failed in a row; see fail_reason"
                break
            if complete + running >= options.total_trials and not counts[TrialState.WAITING]:
                # The last trials run on other workers; stay, in case one dies or fails.
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    log(f"waiting: the last {running} trial(s) run on other workers")
                time.sleep(options.poll_interval)
                reap_stale_trials(study, options)
                continue
            if waiting_since is not None:
                overhead["wait_s"] += time.monotonic() - waiting_since
                waiting_since = None
            objective.last = None
            objective.finished_before = counts[TrialState.FAIL] + counts[TrialState.PRUNED]
            try:
                with warnings.catch_warnings():
                    # Optuna warns once per failed trial; the reason is in the tables instead.
                    # Before asking, optimize() fails trials with stale heartbeats itself.
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.optimize(
                        objective, n_trials=1, catch=(TrialFailure,), gc_after_trial=False
                    )
            except optuna.exceptions.UpdateFinishedTrialError as exc:
                # This worker was silent past the grace period (suspended, overloaded) and a
                # live worker failed its trial as stale and queued the retry; drop the result.
                log(f"dropped a result: {exc}")
                continue
            new_trials += 1
            trial_id, state = objective.last or (None, TrialState.FAIL)
            if state == TrialState.FAIL:
                consecutive_failures += 1
            elif state == TrialState.COMPLETE:
                consecutive_failures = 0
            start = time.perf_counter()
            export()
            overhead["export_s"] += time.perf_counter() - start
            if on_trial is not None and trial_id is not None:
                on_trial(study, study._storage.get_trial(trial_id))
    except KeyboardInterrupt:
        interrupted = True
    export()
    return summarize(
        study,
        options,
        files=files,
        interrupted=interrupted,
        stopped_reason=stopped_reason,
        new_trials=new_trials,
        timings=overhead,
    )


def summarize(study: optuna.Study, options: SearchOptions, **kwargs: Any) -> SearchSummary:
    from dvbench.search.tables import (
        dominance,
        hypervolume,
        pareto_frame,
        resolve_reference,
        trials_frame,
    )

    space = options.space
    metrics, directions = space.metrics, space.directions
    frame = trials_frame(study)
    front = pareto_frame(frame, metrics, directions)
    reference = resolve_reference(frame, metrics, directions, hypervolume_reference(space))
    hv = None
    if not front.empty and all(math.isfinite(r) for r in reference):
        hv = hypervolume(front[list(metrics)].astype(float).to_numpy(), directions, reference)
    counts = _counts(study.get_trials(deepcopy=False))
    infeasible = int((frame["feasible"] == False).sum()) if not frame.empty else 0  # noqa: E712
    return SearchSummary(
        study_name=options.name,
        storage=options.storage_url,
        completed=counts[TrialState.COMPLETE],
        failed=counts[TrialState.FAIL],
        infeasible=infeasible,
        pareto=front,
        dominance=dominance(frame, metrics, directions) if not frame.empty else {},
        hypervolume=hv,
        reference_point=reference,
        baselines=frame[frame["baseline"].astype(bool)] if not frame.empty else frame,
        **kwargs,
    )


def command_line(argv: Sequence[str] | None = None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    return "python cli.py " + " ".join(shlex.quote(a) for a in argv)
