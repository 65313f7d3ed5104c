"""Journal files: a heartbeat for their trials, and torn tails repaired.

Optuna has a heartbeat for RDB storages only; journal workers write their own through the
public trial API, and :func:`stale_trials` finds the trials whose worker stopped (see
``_study.reap_stale_trials``). A journal whose last record was cut (a crash, a full disk, a
network file system dropping a write) is repaired under the journal's own lock: the torn
bytes go to ``journal.log.torn-<time>`` and every complete record stays.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

from dvbench.search.record import heartbeat_of

TORN_SUFFIX = ".torn-"  # journal.log.torn-<time>: the cut-off bytes of a journal's last record

_logger = logging.getLogger("dvbench.search.storage")


def stale_trials(
    trials: Sequence[FrozenTrial], grace_period: float, now: float | None = None
) -> list[FrozenTrial]:
    """The RUNNING trials of a journal whose worker stopped beating ``grace_period`` s ago.

    While a trial runs, its worker writes ``heartbeat`` = ``[number, unix time]`` through the
    public trial API (``_trial._JournalHeartbeat``). A trial whose last beat -- or, before its
    first beat, whose start -- is older than the grace period is stale. The beat carries the
    trial's number because a retried trial inherits its predecessor's attributes. Times are
    this machine's clock: workers sharing a journal over a network file system need
    synchronised clocks (as with any lease).
    """
    now = time.time() if now is None else now
    stale = []
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        beat = heartbeat_of(trial)
        if beat is not None:
            last = beat
        elif trial.datetime_start is not None:
            last = trial.datetime_start.timestamp()  # naive local time, as Optuna stores it
        else:
            continue
        if now - last > grace_period:
            stale.append(trial)
    return stale


def _line_start(file: BinaryIO, end: int) -> int:
    """The offset just after the last newline before ``end`` (0 when there is none)."""
    position = end
    while position > 0:
        step = min(position, 1 << 16)
        file.seek(position - step)
        newline = file.read(step).rfind(b"\n")
        if newline >= 0:
            return position - step + newline + 1
        position -= step
    return 0


def _is_record(line: bytes) -> bool:
    """Whether ``line`` is one whole journal record (a JSON object with an ``op_code``)."""
    try:
        record = json.loads(line)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return False
    return isinstance(record, dict) and "op_code" in record


def _read(file: BinaryIO, start: int, end: int) -> bytes:
    file.seek(start)
    return file.read(end - start)


def _torn_tail(file: BinaryIO) -> tuple[int, int, bool]:
    """(where the journal's complete records end, its size, whether only a newline is missing).

    A record is one JSON object on one line. Torn are the bytes after the last newline, and a
    last line that does not parse: what a writer without this repair appends to a tear (Optuna
    then fails on the next read). A last record that is whole but for its newline is complete.
    """
    size = file.seek(0, os.SEEK_END)
    end = _line_start(file, size)
    if end < size and _is_record(_read(file, end, size)):
        return size, size, True
    if end > 0:
        last_line = _line_start(file, end - 1)
        if not _is_record(_read(file, last_line, end)):
            end = last_line
    return end, size, False


def _move_aside(path: Path, torn: bytes) -> Path:
    """Write ``torn`` to a new ``<journal>.torn-<time>`` file beside the journal, durably."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for attempt in range(1000):
        aside = path.with_name(f"{path.name}{TORN_SUFFIX}{stamp}{f'-{attempt}' if attempt else ''}")
        try:
            with open(aside, "xb") as file:
                file.write(torn)
                file.flush()
                os.fsync(file.fileno())
            return aside
        except FileExistsError:
            continue
    raise FileExistsError(f"{aside}: too many torn journal tails saved this second")


def _repair_torn_tail(path: Path) -> None:
    """Move a torn last record of the journal aside so that new records append cleanly.

    Call only while holding the journal's lock: then no writer is mid-record, so bytes that do
    not end a complete record are a tear, never a record still being written.
    """
    with open(path, "r+b") as file:
        end, size, newline_missing = _torn_tail(file)
        if newline_missing:
            file.seek(size)
            file.write(b"\n")
            what = "its last record had lost only its newline, which is restored"
        elif end < size:
            aside = _move_aside(path, _read(file, end, size))
            file.truncate(end)
            what = f"moved the torn last record ({size - end} bytes) to {aside.name}"
        else:
            return
        file.flush()
        os.fsync(file.fileno())
    _logger.warning("journal %s: %s; every complete record is kept", path, what)


class _TailRepairingLock(JournalFileSymlinkLock):
    """Optuna's default lock of a journal file (same lock file, so it excludes every Optuna
    writer), which repairs a torn tail each time it is taken: a record appended after a tear
    would be glued to it, and the journal would fail to read from then on.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    def acquire(self) -> bool:
        super().acquire()
        try:
            _repair_torn_tail(self.path)
        except BaseException:
            self.release()
            raise
        return True


def _journal_backend(path: Path) -> JournalFileBackend:
    """Optuna's journal file backend for ``path``, its torn tail (if any) repaired first."""
    lock = _TailRepairingLock(path)
    backend = JournalFileBackend(str(path), lock_obj=lock)  # creates a missing file
    with open(path, "rb") as file:  # reading needs no lock; only a repair takes it
        end, size, newline_missing = _torn_tail(file)
    if end < size or newline_missing:
        try:
            lock.acquire()  # repairs
            lock.release()
        except OSError as exc:  # e.g. a read-only copy: Optuna's reader skips a torn tail
            _logger.warning("journal %s: its last record is torn and stays so (%s)", path, exc)
    return backend
