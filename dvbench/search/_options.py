"""What a search run is asked to do (:class:`SearchOptions`) and what it reports back
(:class:`SearchSummary`), plus the sampler a space names."""

from __future__ import annotations

import functools
import os
import shlex
import socket
import sys
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

import optuna

from dvbench.errors import UsageError
from dvbench.runtime import default_results_dir
from dvbench.search._versions import space_record
from dvbench.search.space import SearchSpace
from dvbench.search.storage import display_url, storage_scheme, study_folder_storage


@dataclass(frozen=True)
class SearchOptions:
    """One worker's search: the space, where the study lives, and how to run it.

    ``n_trials`` (default: the space's) is the study's total of COMPLETE trials. RDB and
    journal storages get a heartbeat every ``heartbeat_interval`` s; a RUNNING trial silent
    for ``grace_period`` s (its worker died) is failed and retried once by a live worker.
    ``worker_index`` (set by ``--workers``) picks the sampler seed; ``threads`` caps this
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
    """The command that reproduces this run, for the study's record; a password in a storage
    URL (``--storage URL`` or ``--storage=URL``) is shown as ``***``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return "python cli.py " + " ".join(shlex.quote(display_url(a)) for a in argv)


#: A study name's longest UTF-8 form: a folder name (255 bytes on common file systems) with
#: room for suffixes, and well within Optuna's database column.
MAX_NAME_BYTES = 128


def check_study_name(name: str) -> str:
    """``name`` if it is a plain folder name, else :class:`UsageError` saying why.

    A study's tables go to ``results_dir/NAME``: a path separator, ``.`` or ``..``, or an
    absolute path would put them elsewhere, and a control character makes a name no one can
    type. (``report`` and ``export`` also take a study's folder as a path.)
    """
    why = None
    if not name:
        why = "it is empty"
    elif not name.strip():
        why = "it is blank"
    elif name != name.strip():
        why = "it starts or ends with a space"
    elif len(name.encode()) > MAX_NAME_BYTES:
        why = f"it is longer than {MAX_NAME_BYTES} bytes (UTF-8), more than every storage accepts"
    elif name in (".", ".."):
        why = "it names the current or the parent folder"
    elif name.startswith(("/", "\\")) or PureWindowsPath(name).is_absolute():
        why = "it is an absolute path"
    elif "/" in name or "\\" in name:  # either system's separator
        why = "it holds a path separator"
    elif any(unicodedata.category(c) == "Cc" for c in name):
        why = "it holds a control character"
    if why:
        raise UsageError(
            f"study name {name!r} is not a plain folder name ({why}); "
            "a study's tables go to --results-dir/NAME"
        )
    return name
