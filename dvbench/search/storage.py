"""Where studies live: storage URLs, opening them, finding a study by name.

Readers (reports, exports, ``study:NAME:TRIAL`` model references) use this module; they never
need the runner.

Storages (``--storage URL``):

- ``journal:PATH`` -- Optuna's journal file (``JournalFileBackend``). Safe for several worker
  processes on one machine (or on a shared file system). The default for new studies:
  ``results/<study>/journal.log``.
- ``postgresql+psycopg://user@host/db`` (or ``postgresql://``, ``mysql://``) -- a database
  server, for workers on many machines.
- ``sqlite:///PATH`` -- one worker at a time. Studies made by earlier dvbench versions live in
  ``results/<study>/study.db`` and stay there.

A RUNNING trial whose worker died is failed and retried once by a live worker. RDB storages
use Optuna's heartbeat; journal files get the same heartbeat from :class:`JournalHeartbeatStorage`
(Optuna has none for them).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from dvbench.errors import UsageError
from dvbench.models import DualViTConfig

STUDY_ATTR = "dvbench"  # study user attribute holding the study's settings
DEFAULT_RESULTS_DIR = Path(os.environ.get("DVBENCH_RESULTS_DIR", "results"))
JOURNAL_FILE = "journal.log"  # default storage of a new study, in its folder
SQLITE_FILE = "study.db"  # storage of studies made before journal files became the default
HEARTBEAT_ATTR = "dvbench:heartbeat"  # journal trials: [trial_id, unix time of last beat]
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


def storage_scheme(url: str) -> str:
    """``journal``, ``sqlite``, ``postgresql``, ``mysql`` (driver suffixes dropped), or ''."""
    head, sep, _ = url.partition(":")
    return head.split("+", 1)[0].lower() if sep else ""


def journal_path(url: str) -> Path:
    """The file of a ``journal:PATH`` (or ``journal:///ABS/PATH``) URL."""
    rest = url.partition(":")[2]
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise UsageError(f"storage {url}: expected journal:PATH, e.g. journal:runs/s.log")
    return Path(rest).expanduser()


def study_folder_storage(folder: Path) -> str:
    """The storage URL of the study in ``folder``: its existing file, else a new journal file.

    A study keeps the storage it was made in, whatever the worker count it is resumed with.
    """
    journal, db = folder / JOURNAL_FILE, folder / SQLITE_FILE
    if db.exists() and not journal.exists():
        return f"sqlite:///{db.resolve()}"
    return f"journal:{journal.resolve()}"


def find_study_folder(name_or_path: str | Path, results_dir: Path | None = None) -> Path:
    """The folder of a study given by name (under ``results_dir``) or by its folder."""
    path = Path(name_or_path)
    if path.is_dir() and any((path / f).exists() for f in (JOURNAL_FILE, SQLITE_FILE)):
        return path
    folder = Path(results_dir or DEFAULT_RESULTS_DIR) / str(name_or_path)
    if not any((folder / f).exists() for f in (JOURNAL_FILE, SQLITE_FILE)):
        raise UsageError(
            f"no study at {folder} (expected {JOURNAL_FILE} or {SQLITE_FILE}); "
            "run `dvbench search` first"
        )
    return folder


def study_storage(name_or_path: str | Path, results_dir: Path | None = None) -> tuple[str, str]:
    """(storage URL, study name) for a study name under ``results_dir`` or a study folder."""
    folder = find_study_folder(name_or_path, results_dir)
    return study_folder_storage(folder), folder.name


class JournalHeartbeatStorage(JournalStorage, BaseHeartbeat):
    """A journal storage with Optuna's heartbeat protocol, which Optuna gives only RDB storages.

    While a trial runs, Optuna's heartbeat thread calls :meth:`record_heartbeat`, which writes
    ``[trial_id, time]`` to the trial's system attribute ``dvbench:heartbeat``. A RUNNING trial
    whose last beat -- or, before its first beat, whose start -- is older than ``grace_period``
    seconds is stale: ``optuna.storages.fail_stale_trials`` (run by every live worker before
    each trial and while it waits) fails it and calls the stale-trial callback, which retries
    it. The beat carries the trial id because a retried trial inherits its predecessor's
    attributes. Times are this machine's clock: workers sharing a journal file over a network
    file system need synchronised clocks (as with any lease).
    """

    def __init__(
        self,
        backend: JournalFileBackend,
        *,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, [trial_id, time.time()])
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker already failed it as stale; the objective's next write says so

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert self.heartbeat_interval is not None
        grace = self.grace_period or 2 * self.heartbeat_interval
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat and beat[0] == trial._trial_id:
                last = float(beat[1])
            elif trial.datetime_start is not None:
                last = trial.datetime_start.timestamp()  # naive local time, as Optuna stores it
            else:
                continue
            if now - last > grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback


def retry_callback() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """The one retry rule: a trial whose worker died runs once more."""
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)


def _postgres_driver(url: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 when only it is installed."""
    if not url.startswith("postgresql://"):
        return url
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def open_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> BaseStorage:
    """An Optuna storage for ``url``; with ``heartbeat_interval``, dead workers' trials are
    failed after ``grace_period`` seconds of silence and retried once.

    Bad URLs, missing drivers and unreachable servers raise :class:`UsageError` (one line).
    """
    scheme = storage_scheme(url)
    heartbeat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            "heartbeat_stale_trial_callback": retry_callback(),
        }
    try:
        if scheme == "journal":
            path = journal_path(url)
            if not path.parent.is_dir():
                raise UsageError(f"storage {url}: folder {path.parent} does not exist")
            return JournalHeartbeatStorage(JournalFileBackend(str(path)), **heartbeat)
        if scheme in RDB_SCHEMES:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(_postgres_driver(url), **heartbeat)
    except UsageError:
        raise
    except Exception as exc:  # sqlalchemy and the drivers raise their own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage {url}: {first}") from None
    raise UsageError(
        f"storage {url}: unsupported URL (journal:PATH, sqlite:///PATH, "
        "postgresql+psycopg://USER@HOST/DB or mysql://...)"
    )


def load_study(
    name_or_path: str | Path, results_dir: Path | None = None, *, storage: str | None = None
):
    if storage:
        url, name = storage, str(name_or_path)
    else:
        url, name = study_storage(name_or_path, results_dir)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise UsageError(f"storage {url} has no study named {name!r}") from None


def trial_config(study: optuna.Study, number: int) -> DualViTConfig:
    """The config a trial recorded (for ``study:NAME:TRIAL`` references and exports)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials:
        raise UsageError(f"study {study.study_name!r} has no trial {number}")
    config = trials[0].user_attrs.get("config")
    if config is None:
        reason = trials[0].user_attrs.get("fail_reason", "no config recorded")
        raise UsageError(f"trial {number} of {study.study_name!r} has no config ({reason})")
    return DualViTConfig.from_dict(config).replace(name=f"{study.study_name}_trial{number}")


def resolve_study_reference(reference: str) -> DualViTConfig:
    """``study:NAME:TRIAL[@RESULTS_DIR]`` -> the config that trial recorded."""
    body, _, results_dir = reference.partition("@")
    parts = body.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise UsageError(f"{reference!r}: expected study:NAME:TRIAL, e.g. study:small:3")
    study = load_study(parts[1], Path(results_dir) if results_dir else None)
    return trial_config(study, int(parts[2]))
