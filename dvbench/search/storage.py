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
use Optuna's heartbeat; journal workers write their own (``_journal``; Optuna has none for
journals). :func:`study_lock` excludes every other worker of a study while it decides
something study-wide (promotions, repeats, failing stale trials).

A journal whose last record was cut (a crash, a full disk, a network file system dropping a
write) opens with a warning: the torn bytes go to ``journal.log.torn-<time>`` and every complete
record stays. Workers started together on an empty database all get Optuna's tables (created
once, under a PostgreSQL advisory lock; a conflict elsewhere is retried). Print a storage URL
with :func:`display_url`, which hides its password.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import random
import re
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from dvbench.errors import UsageError
from dvbench.models import DualViTConfig
from dvbench.runtime import default_results_dir
from dvbench.search._journal import TORN_SUFFIX, _journal_backend
from dvbench.search.record import STUDY_ATTR, config_of, fail_reason

__all__ = [
    "JOURNAL_FILE",
    "RDB_SCHEMES",
    "SQLITE_FILE",
    "STUDY_ATTR",
    "TORN_SUFFIX",
    "display_url",
    "find_study_folder",
    "journal_path",
    "load_study",
    "open_storage",
    "open_study",
    "resolve_study_reference",
    "retry_callback",
    "storage_scheme",
    "study_folder_storage",
    "study_lock",
    "study_storage",
]

JOURNAL_FILE = "journal.log"  # default storage of a new study, in its folder
SQLITE_FILE = "study.db"  # storage of studies made before journal files became the default
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")

_logger = logging.getLogger(__name__)
# ://user:password@ -- greedy up to the host's "@", for URLs SQLAlchemy cannot parse
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)([^/?#]*)@")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd)=)([^&#]*)", re.IGNORECASE)


def storage_scheme(url: str) -> str:
    """``journal``, ``sqlite``, ``postgresql``, ``mysql`` (driver suffixes dropped), or ''."""
    head, sep, _ = url.partition(":")
    return head.split("+", 1)[0].lower() if sep else ""


def display_url(url: str) -> str:
    """``url`` fit to print or log: a database password becomes ``***``; the rest is unchanged.

    Never raises: a URL SQLAlchemy cannot parse still has its ``user:password@`` masked.
    """
    try:
        if storage_scheme(url) == "journal":
            return url  # a path: nothing to hide, and nothing for SQLAlchemy to reformat
        shown = url
        with contextlib.suppress(Exception):  # odd input: the regexes below still mask it
            parsed = make_url(url)
            if parsed.password is not None:
                shown = parsed.render_as_string(hide_password=True)
        shown = _URL_PASSWORD.sub(r"\1***@", shown)
        return _QUERY_PASSWORD.sub(r"\1***", shown)
    except Exception:
        return "<storage URL>"


def _url_passwords(url: str) -> set[str]:
    """Every spelling of ``url``'s password that an error message might quote."""
    found = {match.group(2) for match in _URL_PASSWORD.finditer(url)}
    found |= {match.group(2) for match in _QUERY_PASSWORD.finditer(url)}
    with contextlib.suppress(Exception):
        found.add(make_url(url).password or "")
    return {password for password in found if password}


def _storage_error(url: str, exc: BaseException) -> UsageError:
    """The one-line error for a storage that cannot be opened; it never shows the password."""
    message = str(exc).strip()
    first = message.splitlines()[0] if message else type(exc).__name__
    first = first.replace(url, display_url(url))
    for password in _url_passwords(url):
        first = first.replace(password, "***")
    return UsageError(f"storage {display_url(url)}: {first}")


def journal_path(url: str) -> Path:
    """The file of a ``journal:PATH`` (or ``journal:///ABS/PATH``) URL."""
    rest = url.partition(":")[2]
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise UsageError(
            f"storage {display_url(url)}: expected journal:PATH, e.g. journal:runs/s.log"
        )
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
    folder = Path(results_dir or default_results_dir()) / str(name_or_path)
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


# pg_advisory_xact_lock key ("dvbench" in ASCII): creating Optuna's tables, one worker at a time
_SCHEMA_LOCK_KEY = 0x64766265_6E6368
_SCHEMA_ATTEMPTS = 6
_SCHEMA_RACE_HINTS = ("already exists", "duplicate", "deadlock")


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock for the database's schema (other databases: nothing).

    The lock is held on a connection of its own, in a transaction whose end releases it, so a
    worker killed meanwhile never leaves it behind.
    """
    if storage_scheme(url) != "postgresql":
        yield
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _SCHEMA_LOCK_KEY})
            yield
    finally:
        engine.dispose()


def _is_schema_race(exc: BaseException) -> bool:
    """Whether ``exc`` is another process creating Optuna's tables at the same moment."""
    if isinstance(exc, IntegrityError):  # a unique key: pg_type, version rows
        return True
    if not isinstance(exc, DBAPIError):  # unreachable servers are OperationalError
        return False
    return any(hint in str(exc.orig).lower() for hint in _SCHEMA_RACE_HINTS)


def _rdb_storage(url: str, heartbeat: dict[str, Any]) -> RDBStorage:
    """Optuna's RDB storage, whose tables (on a new database) many workers may create at once.

    PostgreSQL serialises the creation with an advisory lock; for the other databases (and
    Optuna processes outside dvbench, which take no lock) a creation conflict is retried after a
    short random back-off: the loser then finds the tables made.
    """
    attempt = 1
    with _schema_lock(url):
        while True:
            try:
                with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(url, **heartbeat)
            except SQLAlchemyError as exc:
                if attempt == _SCHEMA_ATTEMPTS or not _is_schema_race(exc):
                    raise
            time.sleep(random.uniform(0.05, 0.1) * 2**attempt)
            attempt += 1


def open_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> BaseStorage:
    """An Optuna storage for ``url``; with ``heartbeat_interval``, dead workers' trials are
    failed after ``grace_period`` seconds of silence and retried once.

    Bad URLs, missing drivers and unreachable servers raise :class:`UsageError` (one line, the
    password hidden). A journal whose last record is torn is repaired first: the torn bytes
    are moved aside to ``<journal>.torn-<time>``.
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
                raise UsageError(f"storage {display_url(url)}: folder {path.parent} does not exist")
            return JournalStorage(_journal_backend(path))
        if scheme in RDB_SCHEMES:
            return _rdb_storage(_postgres_driver(url), heartbeat)
    except UsageError:
        raise
    except Exception as exc:  # sqlalchemy and the drivers raise their own types
        raise _storage_error(url, exc) from None
    raise UsageError(
        f"storage {display_url(url)}: unsupported URL (journal:PATH, sqlite:///PATH, "
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
        raise UsageError(f"storage {display_url(url)} has no study named {name!r}") from None


def open_study(
    name_or_path: str | Path, *, results_dir: str | Path | None = None, storage: str | None = None
) -> tuple[optuna.Study, Path]:
    """A finished (or running) study by name (under ``results_dir``) or folder, and the folder
    its files go to: how reports, exports and ``study:NAME:TRIAL`` find a study.

    With ``storage`` (an Optuna URL) the study is read from there and its folder is
    ``results_dir/NAME``. Missing studies raise :class:`UsageError`.
    """
    results_dir = Path(results_dir) if results_dir is not None else default_results_dir()
    if storage:
        return load_study(name_or_path, storage=storage), results_dir / str(name_or_path)
    folder = find_study_folder(name_or_path, results_dir)
    return load_study(name_or_path, results_dir), folder


_LOCAL_LOCK = threading.Lock()  # in-memory studies live in one process


@contextlib.contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Exclude every other worker of the study (any process, any machine the storage reaches).

    A file lock (``flock``) beside a journal or SQLite file, released by the kernel if the
    holder dies; a PostgreSQL transaction-scoped advisory lock, released when its connection
    ends; a process lock for an in-memory study.
    """
    scheme = storage_scheme(url)
    if scheme in ("journal", "sqlite"):
        path = journal_path(url) if scheme == "journal" else Path(url.split(":///", 1)[1])
        with open(path.with_name(path.name + ".promote.lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if scheme in ("postgresql", "mysql"):
        key = zlib.crc32(f"dvbench-promote:{study_name}".encode())
        engine = create_engine(_postgres_driver(url), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                if scheme == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                else:
                    connection.execute(text("SELECT GET_LOCK(:k, -1)"), {"k": str(key)})
                yield
        finally:
            engine.dispose()
        return
    with _LOCAL_LOCK:
        yield


def resolve_study_reference(reference: str) -> DualViTConfig:
    """``study:NAME:TRIAL[@RESULTS_DIR]`` -> the config that trial recorded."""
    body, _, results_dir = reference.partition("@")
    parts = body.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise UsageError(f"{reference!r}: expected study:NAME:TRIAL, e.g. study:small:3")
    study = load_study(parts[1], Path(results_dir) if results_dir else None)
    return recorded_config(study, int(parts[2]))


def recorded_config(study: optuna.Study, number: int) -> DualViTConfig:
    """The network trial ``number`` recorded, named ``<study>_trial<N>``.

    The one rule for ``export`` and ``study:NAME:TRIAL``: any trial that recorded a config
    (every trial whose knobs made a valid network, whatever happened to it after); a trial
    without one is a :class:`UsageError` saying why.
    """
    trials = study.get_trials(deepcopy=False)
    found = [t for t in trials if t.number == number]
    if not found:
        raise UsageError(
            f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})"
        )
    trial = found[0]
    config = config_of(trial)
    if config is None:
        reason = fail_reason(trial) or f"it is {trial.state.name}"
        raise UsageError(f"trial {number} of {study.study_name!r} recorded no config ({reason})")
    try:
        cfg = DualViTConfig.from_dict(dict(config))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"trial {number} of {study.study_name!r}: bad config: {exc}") from None
    return cfg.replace(name=f"{study.study_name}_trial{number}")
