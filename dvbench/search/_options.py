"""What a search run is asked to do (:class:`SearchOptions`) and what it reports back
(:class:`SearchSummary`), plus the sampler a space names."""

from __future__ import annotations

import os
import shlex
import socket
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from dvbench.errors import UsageError
from dvbench.runtime import default_results_dir
from dvbench.search.space import SearchSpace
from dvbench.search.storage import study_folder_storage


@dataclass(frozen=True)
class SearchOptions:
    """One worker's search: the space, where the study lives, and how to run it.

    ``n_trials`` (default: the space's) is the study's total of COMPLETE trials. RDB and
    journal storages get a heartbeat every ``heartbeat_interval`` s; a RUNNING trial silent
    for ``grace_period`` s (its worker died) is failed and retried once by a live worker.
    ``worker_index`` (set by ``--workers``) picks the sampler seed; ``threads`` caps this
    worker's torch threads; ``poll_interval`` is how often a waiting worker looks again.
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

    @property
    def name(self) -> str:
        """The study's name: ``study_name``, else the space's."""
        return self.study_name or self.space.name

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
    baselines: Any = None  # pandas.DataFrame of the baseline rows
    interrupted: bool = False
    stopped_reason: str | None = None
    new_trials: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    workers: int = 1
    worker_logs: list[Path] = field(default_factory=list)


def make_sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name`` with the space's sampler settings (population size, ...)."""
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


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run, for the study's record."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return "python cli.py " + " ".join(shlex.quote(a) for a in argv)
