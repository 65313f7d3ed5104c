"""What a search run is asked to do (:class:`SearchOptions`) and what it reports back
(:class:`SearchSummary`), plus the sampler a space names."""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from dvbench.errors import UsageError
from dvbench.names import check_folder_name
from dvbench.runtime import default_results_dir
from dvbench.search._versions import space_record
from dvbench.search.storage import display_url, storage_scheme, study_folder_storage
from dvbench.space.definition import SearchSpace


@dataclass(frozen=True)
class SearchOptions:
    """One worker's search: the space, where the study lives, and how to run it.

    ``n_trials`` (default: the space's) is the study's total of COMPLETE trials. RDB and
    journal storages get a heartbeat every ``heartbeat_interval`` s; a RUNNING trial silent
    for ``grace_period`` s (its worker died) is failed and retried once by a live worker.
    ``worker_index`` (set by ``--workers``) is added to the sampler's base seed (every process
    gets its own stream of it: :attr:`sampler_seed`); ``threads`` caps this
    worker's torch threads; ``poll_interval`` is how often a waiting worker looks again.
    ``allow_space_change`` continues a study whose space changed what a trial means, as the
    study's next space version (else that is refused). The study's name must be a plain
    folder name (:func:`check_study_name`): its tables go to ``results_dir/NAME``.
    """

    space: SearchSpace
    study_name: str | None = None
    results_dir: Path = field(default_factory=default_results_dir)
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
    heartbeat_interval: int = 10
    grace_period: int = 30
    worker_index: int | None = None
    threads: int | None = None
    poll_interval: float = 1.0
    allow_space_change: bool = False

    def __post_init__(self) -> None:
        # a name given is checked as given: "" or " " is refused, not replaced by the space's
        check_study_name(self.study_name if self.study_name is not None else self.name)

    @functools.cached_property
    def space_record(self) -> dict[str, Any]:
        """What a trial's meaning depends on (``_versions.space_record``), built once per run
        and read by everything that compares or records the space."""
        return space_record(self.space)

    @property
    def name(self) -> str:
        """The study's name: ``study_name``, else the space's."""
        return self.study_name if self.study_name is not None else self.space.name

    @property
    def study_dir(self) -> Path:
        """Where the study's tables (and, by default, its journal) live."""
        return Path(self.results_dir) / self.name

    @property
    def storage_url(self) -> str:
        """``storage``, else the study folder's own file."""
        if self.storage:
            return self.storage
        return study_folder_storage(self.study_dir)

    @property
    def sampler_seed(self) -> int:
        """The sampler's base seed: ``seed``, plus ``worker_index`` for a ``--workers``
        worker. Each process draws its own stream from it (:class:`StreamSampler`): the one
        that asks for trial 0 of a study uses the base seed itself, any other mixes in the
        number of the first trial it asks for, so workers on one study (started together or
        by hand, on any storage) and a resumed search never repeat each other's proposals."""
        return self.seed + (self.worker_index or 0)

    @property
    def journal_heartbeat(self) -> int | None:
        """The heartbeat interval a worker writes itself: journal storages only (Optuna beats
        for RDB storages)."""
        return self.heartbeat_interval if storage_scheme(self.storage_url) == "journal" else None

    @property
    def total_trials(self) -> int:
        """COMPLETE trials the study should hold."""
        return self.n_trials or self.space.n_trials


@dataclass
class SearchSummary:
    """What a worker's run left in the study: counts, the front, baselines, files written."""

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
    hypervolume_interval: tuple[float, float] | None = None  # 95 % over the accuracy noise
    baselines: Any = None  # pandas.DataFrame of the baseline rows
    interrupted: bool = False
    stopped_reason: str | None = None
    new_trials: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    workers: int = 1
    worker_logs: list[Path] = field(default_factory=list)
    checkpoint_peak_bytes: int | None = None  # multi-fidelity: most checkpoint bytes seen
    failed_out: bool = False  # stopped because trial after trial failed

    @property
    def exit_status(self) -> int:
        """The command's exit status: 130 after Ctrl-C, 1 when the study stopped because its
        trials kept failing (the reason is ``stopped_reason``), else 0."""
        if self.interrupted:
            return 130
        return 1 if self.failed_out else 0


def make_sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name`` with the space's sampler settings (population size, ...),
    in a :class:`StreamSampler`: its random stream is this process's own in the study."""
    make_sampler_of(name, space, seed)  # an unknown name or a missing package: refused now
    return StreamSampler(lambda stream: make_sampler_of(name, space, stream), seed)


def make_sampler_of(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    """The bare Optuna sampler ``name`` seeded with ``seed``."""
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


def stream_seed(seed: int, first_trial: int) -> int:
    """The seed of a process whose first trial in the study is number ``first_trial``:
    ``seed`` for trial 0 (a fresh study run by one process is reproducible), else ``seed``
    mixed with that number. Trial numbers are unique in a study, so no two processes -- two
    workers joining together, or a search resumed later -- share a stream."""
    if first_trial == 0:
        return seed
    mixed = np.random.SeedSequence([seed & 0xFFFFFFFF, first_trial]).generate_state(1)
    return int(mixed[0])


class StreamSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler whose seed is settled when its process asks for its first trial.

    Two processes with one ``--seed`` on one study would otherwise propose the same
    candidates in pairs, and a resumed search would start by repeating trial 0's knobs.
    At the first :meth:`before_trial` the sampler is rebuilt with :func:`stream_seed` of the
    base seed and that trial's number; every call is then the rebuilt sampler's.
    """

    def __init__(self, build: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._build = build
        self._seed = seed
        self._inner = build(seed)
        self.stream: int | None = None  # the seed in use, once the first trial is asked

    @property
    def inner(self) -> optuna.samplers.BaseSampler:
        """The Optuna sampler that does the sampling."""
        return self._inner

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.stream is None:
            self.stream = stream_seed(self._seed, trial.number)
            if self.stream != self._seed:
                self._inner = self._build(self.stream)
        self._inner.before_trial(study, trial)

    # Optuna's signatures, passed through
    def infer_relative_search_space(self, study, trial):  # noqa: ANN001, ANN201
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # noqa: ANN001, ANN201
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, name, distribution):  # noqa: ANN001, ANN201
        return self._inner.sample_independent(study, trial, name, distribution)

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()

    def __repr__(self) -> str:
        return f"StreamSampler({self._inner!r}, seed={self._seed}, stream={self.stream})"


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run, for the study's record; a password in a storage
    URL (``--storage URL`` or ``--storage=URL``) is shown as ``***``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return "python cli.py " + " ".join(shlex.quote(display_url(a)) for a in argv)


def check_study_name(name: str) -> str:
    """``name`` if it is a plain folder name (:func:`dvbench.names.check_folder_name`, the
    rule every name that becomes a path follows), else :class:`UsageError` saying why.
    (``report`` and ``export`` also take a study's folder as a path.)"""
    return check_folder_name(
        name, what="study name", where="a study's tables go to --results-dir/NAME"
    )
