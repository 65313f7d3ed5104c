"""The one folder-name rule: a name that becomes a folder stays a folder under its parent.

A study's tables go to ``results_dir/NAME``, a calibration's to
``results_dir/calibrate/NAME``: a path separator, ``.`` or ``..``, or an absolute path would
put them elsewhere, a control character makes a name no one can type, and a name longer than
a folder name may be fails half-way. Every name dvbench turns into a path (a study, a space, a
calibration) goes through :func:`check_folder_name`.
"""

from __future__ import annotations

import unicodedata
from pathlib import PureWindowsPath

from dvbench.errors import UsageError

__all__ = ["MAX_NAME_BYTES", "check_folder_name", "folder_name_problem"]

#: A name's longest UTF-8 form: a folder name (255 bytes on common file systems) with room
#: for suffixes, and well within Optuna's database column.
MAX_NAME_BYTES = 128


def folder_name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain folder name, or None when it is one."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if not name.strip():
        return "it is blank"
    if name != name.strip():
        return "it starts or ends with a space"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes (UTF-8), more than every storage accepts"
    if name in (".", ".."):
        return "it names the current or the parent folder"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).is_absolute():
        return "it is an absolute path"
    if "/" in name or "\\" in name:  # either system's separator
        return "it holds a path separator"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") for c in name):
        return "it holds a control character or a line break"
    return None


def check_folder_name(name: str, *, what: str, where: str) -> str:
    """``name`` if it is a plain folder name, else :class:`UsageError` (one line) saying
    ``what`` it is, why not, and ``where`` it would go (e.g. ``--results-dir/NAME``)."""
    why = folder_name_problem(name)
    if why:
        raise UsageError(f"{what} {name!r} is not a plain folder name ({why}); {where}")
    return name
