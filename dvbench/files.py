"""Reading a user's files boundedly, and writing result files safely: atomically, and never
through a link out of their folder.

A file a user hands the tool (a space, a config, a device profile) is read by
:func:`read_bounded`: a regular file (not a device such as ``/dev/zero``, a pipe or a folder),
at most a given size, checked before and while reading.

A table, a plot or a page is written to a temporary file beside its destination and renamed
over it, so a reader (or a Ctrl-C, or a crash) never sees a half-written file and the old one
stays whole until the new one is complete. A destination that is a symbolic link is replaced
by the new file, never followed: a link planted in a shared results folder cannot make
dvbench overwrite a file elsewhere. New files get the user's usual mode (0666 less the umask).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dvbench.errors import UsageError

__all__ = [
    "atomic_path",
    "ensure_folder",
    "read_bounded",
    "write_atomic",
    "write_text_atomic",
    "write_with",
]


def read_bounded(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path``: a regular file (a link counts as what it points at) of at most
    ``max_bytes``. ``FileNotFoundError`` when it is missing, ``ValueError`` (one line naming
    what was wrong, ``what`` naming the kind of file) for anything else. A device, a pipe or a
    folder is refused without reading it, and no more than ``max_bytes + 1`` bytes are read."""
    try:
        info = os.stat(path)  # follows a link: what counts is what it points at
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"not a regular file (a device, a folder or a pipe is not a {what})")
    if info.st_size > max_bytes:
        raise ValueError(f"{info.st_size} bytes: larger than the {max_bytes} a {what} may be")
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the stat
                raise ValueError("not a regular file")
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise ValueError(f"larger than the {max_bytes} bytes a {what} may be")
    return raw


def _temporary_file(path: Path) -> Path:
    """A new, empty file beside ``path`` with the mode any new file gets (0666 less the umask).

    ``tempfile.mkstemp`` would make it 0600, and the rename would carry that mode to the file.
    """
    while True:
        # the suffix last, so writers that go by it (matplotlib, pandas) see the real one
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
            os.close(fd)
            return tmp
        except FileExistsError:
            continue


def ensure_folder(path: str | Path, what: str = "folder") -> Path:
    """``path`` as a writable folder (made if missing); :class:`UsageError` with one line when
    a file is in the way or it cannot be written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{what} {path}: a file is in the way, not a folder") from None
    except PermissionError:
        raise UsageError(f"{what} {path}: cannot be created here (permission denied)") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: read-only; give a folder you can write to")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` (replacing a
    link there, not following it) when the block ends without an error, removed otherwise."""
    path = Path(path)
    ensure_folder(path.parent)
    tmp = _temporary_file(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(frame: Any, path: str | Path) -> Path:
    """Write a pandas frame as CSV or Parquet (by suffix), atomically (see the module)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see the module)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_with(write: Callable[[Path], Any], path: str | Path) -> Path:
    """Let ``write(tmp)`` write the file (a plot's ``savefig``), then rename it into place."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write(tmp)
    return path
