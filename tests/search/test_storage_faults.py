"""Storages under faults: torn journal tails, workers racing to create a database's tables,
and passwords kept out of messages.

Journal tests use real files through :func:`open_storage` and plain Optuna. The cold-start test
needs a real PostgreSQL server: it reads its URL from DVBENCH_TEST_PG_URL (``.ci/with-postgres``
starts a throw-away server and sets it) and skips without it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import TrialState

from dvbench.errors import UsageError
from dvbench.search import storage as storage_module
from dvbench.search.storage import TORN_SUFFIX, display_url, open_storage

PG_URL = os.environ.get("DVBENCH_TEST_PG_URL")
STUDY = "faults"
LOGGER = "dvbench.search.storage"


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0) ** 2


def _complete(study: optuna.Study) -> dict[int, tuple[dict, list[float]]]:
    """Number -> (params, values) of every COMPLETE trial."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {t.number: (t.params, t.values) for t in trials}


def _journal_with_trials(tmp_path: Path, n_trials: int = 3) -> tuple[Path, optuna.Study]:
    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    study.optimize(_objective, n_trials=n_trials)
    return path, study


def _last_line_start(data: bytes) -> int:
    return data.rstrip(b"\n").rfind(b"\n") + 1


# Where to cut the journal's last record (a trial's COMPLETE state), as an offset into the file.
CUTS: dict[str, Callable[[bytes], int]] = {
    "mid-key": lambda data: data.index(b'"op_code"', _last_line_start(data)) + 4,
    "mid-value": lambda data: data.index(b'"worker_id":"', _last_line_start(data)) + 20,
    "last 40 bytes": lambda data: len(data) - 40,
    "just before the newline": lambda data: len(data) - 1,
}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield
    optuna.logging.set_verbosity(verbosity)


@pytest.mark.parametrize("cut", list(CUTS))
def test_torn_journal_tail_keeps_complete_records_and_takes_new_trials(tmp_path, caplog, cut):
    path, study = _journal_with_trials(tmp_path, n_trials=4)
    before = _complete(study)
    data = path.read_bytes()
    assert data.endswith(b"\n") and len(before) == 4
    last_line = _last_line_start(data)
    offset = CUTS[cut](data)
    assert last_line < offset < len(data)
    path.write_bytes(data[:offset])

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        study = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert str(path) in warnings[0] and "every complete record is kept" in warnings[0]

    aside = sorted(tmp_path.glob(f"journal.log{TORN_SUFFIX}*"))
    if cut == "just before the newline":  # the record is whole: it stays, newline restored
        assert aside == [] and path.read_bytes() == data
        assert _complete(study) == before
    else:  # the torn bytes are moved aside, not deleted; the torn trial is left RUNNING
        assert [p.read_bytes() for p in aside] == [data[last_line:offset]]
        assert path.read_bytes() == data[:last_line]
        assert aside[0].name in warnings[0]
        assert _complete(study) == {n: v for n, v in before.items() if n != 3}
        assert study.trials[3].state == TrialState.RUNNING

    # new trials append cleanly until the study has its requested count of complete trials
    requested = 7
    study.optimize(_objective, n_trials=requested - len(_complete(study)))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        reopened = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    assert not [r for r in caplog.records if r.name == LOGGER]
    after = _complete(reopened)
    assert len(after) == requested
    assert all(after[number] == before[number] for number in _complete(study) if number < 4)
    # and plain Optuna reads the repaired journal too
    plain = JournalStorage(JournalFileBackend(str(path)))
    assert len(_complete(optuna.load_study(study_name=STUDY, storage=plain))) == requested


def test_clean_journal_opens_without_warning_or_rewrite(tmp_path, caplog):
    path, study = _journal_with_trials(tmp_path, n_trials=2)
    data = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
        open_storage(f"journal:{tmp_path / 'new.log'}")  # a new, empty journal
    assert not [r for r in caplog.records if r.name == LOGGER]
    assert path.read_bytes() == data and not list(tmp_path.glob(f"*{TORN_SUFFIX}*"))


def test_journal_whose_only_record_is_torn_opens_empty(tmp_path, caplog):
    path = tmp_path / "journal.log"
    optuna.create_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    path.write_bytes(path.read_bytes()[:25])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        storage = open_storage(f"journal:{path}")
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1
    assert storage.get_all_studies() == [] and path.read_bytes() == b""
    optuna.create_study(study_name=STUDY, storage=storage).optimize(_objective, n_trials=1)


def test_tear_already_written_over_is_moved_aside(tmp_path):
    """Before this repair, the next worker glued its record to the tear, and every read after
    failed with a JSONDecodeError: that last line goes aside too."""
    path, study = _journal_with_trials(tmp_path, n_trials=3)
    before = _complete(study)
    data = path.read_bytes()
    next_record = b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_start":"2026-01-01"}\n'
    path.write_bytes(data[:-40] + next_record)
    glued = data[_last_line_start(data) : -40] + next_record

    study = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    assert [p.read_bytes() for p in tmp_path.glob(f"journal.log{TORN_SUFFIX}*")] == [glued]
    assert _complete(study) == {n: v for n, v in before.items() if n != 2}
    study.optimize(_objective, n_trials=2)
    reopened = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    assert len(_complete(reopened)) == 4


def test_tear_made_while_open_is_moved_aside_before_the_next_append(tmp_path, caplog):
    """Another worker's write cut short (a full disk) while this one runs: its next record is
    not glued to the tear."""
    path, study = _journal_with_trials(tmp_path, n_trials=2)
    with open(path, "ab") as file:
        file.write(b'{"op_code":4,"worker_id":"other","study_id":0,"datetime_st')
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        study.optimize(_objective, n_trials=2)
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1
    assert len(list(tmp_path.glob(f"journal.log{TORN_SUFFIX}*"))) == 1
    reopened = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{path}"))
    assert len(_complete(reopened)) == 4 and len(reopened.trials) == 4


def test_repair_waits_for_the_journal_lock(tmp_path, monkeypatch):
    """A record still being written (its writer holds the lock) is not taken for a tear."""
    from dvbench.search import _journal

    path, study = _journal_with_trials(tmp_path, n_trials=2)
    writer_lock = JournalFileSymlinkLock(str(path))
    writer_lock.acquire()
    record = b'{"op_code":2,"worker_id":"w","study_id":0,"user_attr":{"k":"v"}}\n'
    with open(path, "ab") as file:
        file.write(record[:30])  # half a record: the other writer is mid-write
    waiting = threading.Event()
    acquire = _journal._TailRepairingLock.acquire

    def announced(self):
        waiting.set()  # the opener saw the half record and now waits for the lock
        return acquire(self)

    monkeypatch.setattr(_journal._TailRepairingLock, "acquire", announced)
    opened: list[optuna.storages.BaseStorage] = []
    opener = threading.Thread(target=lambda: opened.append(open_storage(f"journal:{path}")))
    opener.start()
    assert waiting.wait(timeout=120), "the opener never asked for the lock"
    assert opener.is_alive() and path.read_bytes().endswith(record[:30])
    with open(path, "ab") as file:
        file.write(record[30:])
    writer_lock.release()
    opener.join(timeout=30)
    assert opened and not list(tmp_path.glob(f"*{TORN_SUFFIX}*"))
    study = optuna.load_study(study_name=STUDY, storage=opened[0])
    assert study.user_attrs == {"k": "v"} and len(_complete(study)) == 2


# -- passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:s3cret@h/db", "postgresql+psycopg://u:***@h/db"),
        ("mysql://u:s%40cret@h:3306/db", "mysql://u:***@h:3306/db"),
        ("postgresql://u:s3cret@h:notaport/db", "postgresql://u:***@h:notaport/db"),
        ("postgresql://u@h/db?sslmode=require&password=s3cret", None),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///results/s/study.db", "sqlite:///results/s/study.db"),
        ("journal:/runs/a@b:c/journal.log", "journal:/runs/a@b:c/journal.log"),
        ("journal:///abs/journal.log", "journal:///abs/journal.log"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_display_url_masks_only_passwords(url, shown):
    assert "s3cret" not in display_url(url) and "s%40cret" not in display_url(url)
    if shown is not None:
        assert display_url(url) == shown
    else:
        assert display_url(url) == "postgresql://u@h/db?sslmode=require&password=***"


def test_display_url_never_raises():
    assert isinstance(display_url(None), str)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:s3cret@127.0.0.1:1/db",  # nothing listens on port 1
        "postgresql://u:s3cret@127.0.0.1:1/db",
        "postgresql+psycopg://u:s3cret@127.0.0.1:notaport/db",
        "mysql+nosuchdriver://u:s3cret@127.0.0.1:1/db",
    ],
)
def test_unreachable_database_is_one_line_without_password(url):
    with pytest.raises(UsageError) as info:
        open_storage(url)
    message = str(info.value)
    assert "s3cret" not in message and "\n" not in message
    assert message.startswith(f"storage {display_url(url)}: ")


# -- cold start on a new database ----------------------------------------------------------------

WORKERS = 6
ROUNDS = 5
TRIALS_PER_WORKER = 2


def _race_worker(rounds: list[tuple[str, bool]], barrier, results) -> None:
    """One worker: per round, start with the others, join the study, run its trials.

    A round without ``schema_lock`` tests the retry alone (as on MySQL, or beside Optuna
    processes that take no lock).
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    schema_lock = storage_module._schema_lock
    for url, locked in rounds:
        storage_module._schema_lock = schema_lock if locked else _no_lock
        barrier.wait(timeout=300)
        try:
            storage = open_storage(url)
            try:
                study = optuna.create_study(study_name=STUDY, storage=storage)
            except optuna.exceptions.DuplicatedStudyError:
                study = optuna.load_study(study_name=STUDY, storage=storage)
            study.optimize(_objective, n_trials=TRIALS_PER_WORKER)
            results.put((url, os.getpid(), "ok"))
        except BaseException as exc:  # report it, and still meet the others in the next round
            results.put((url, os.getpid(), f"{type(exc).__name__}: {exc}".splitlines()[0]))


def _no_lock(url: str) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


@contextlib.contextmanager
def _new_databases(count: int):
    """``count`` new, empty PostgreSQL databases on the test server (dropped afterwards)."""
    import psycopg

    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    names = [f"test_race_{n}_{uuid.uuid4().hex[:8]}" for n in range(count)]
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in names:
            connection.execute(f"CREATE DATABASE {name}")
    try:
        yield [f"{PG_URL.rsplit('/', 1)[0]}/{name}" for name in names]
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in names:
                connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="DVBENCH_TEST_PG_URL is unset: run under .ci/with-postgres")
def test_workers_started_together_on_a_new_database_all_join():
    """6 workers start at once on a new database, 5 rounds with PostgreSQL's advisory lock and
    5 with the retry alone; before either, most of them died on Optuna's table creation."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    with _new_databases(2 * ROUNDS) as urls:
        rounds = [(url, n < ROUNDS) for n, url in enumerate(urls)]
        workers = [
            context.Process(target=_race_worker, args=(rounds, barrier, results))
            for _ in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        try:
            outcomes = [results.get(timeout=600) for _ in range(WORKERS * len(rounds))]
        except queue.Empty:
            pytest.fail("a worker stopped reporting (see its traceback above)")
        finally:
            for worker in workers:
                worker.join(timeout=60)
                if worker.is_alive():
                    worker.kill()
        failures = [outcome for outcome in outcomes if outcome[2] != "ok"]
        assert failures == [], f"{len(failures)} of {len(outcomes)} workers failed: {failures}"
        assert [worker.exitcode for worker in workers] == [0] * WORKERS
        for url in urls:
            storage = open_storage(url)
            study = optuna.load_study(study_name=STUDY, storage=storage)
            states = [trial.state for trial in study.trials]
            storage.engine.dispose()
            assert states == [TrialState.COMPLETE] * (WORKERS * TRIALS_PER_WORKER), url
