"""YAML that cannot blow up: the one loader for files a user may have been handed.

``yaml.safe_load`` constructs no Python objects, but an alias "bomb" (a 1 KB file whose
anchors expand to gigabytes) still runs for minutes and ends in ``MemoryError``. Space files
and configs need no anchors, so :func:`load` refuses aliases outright, refuses text that is
not UTF-8, and refuses files over :data:`MAX_BYTES`; each as a ``ValueError`` with one line
that says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dvbench.files import read_bounded

__all__ = ["MAX_BYTES", "load", "load_file"]

MAX_BYTES = 1 << 20  # a space file or config is a few KB


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``) at the first one."""

    def compose_node(self, parent, index):  # noqa: ANN001 (PyYAML's signature)
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def load(text: str | bytes) -> Any:
    """Parse YAML ``text`` (bytes must be UTF-8); ``ValueError`` for aliases, size or
    encoding, ``yaml.YAMLError`` for malformed YAML."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ValueError(f"{len(text)} bytes: larger than the {MAX_BYTES} a YAML file may be")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    if len(text) > MAX_BYTES:
        raise ValueError(f"{len(text)} characters: larger than a YAML file may be ({MAX_BYTES})")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.composer.ComposerError as exc:
        if "aliases" in str(exc.problem):
            mark = exc.problem_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ValueError(f"{exc.problem}{where}") from None
        raise


def load_file(path: str | Path) -> Any:
    """:func:`load` of a file's bytes: a regular file of at most :data:`MAX_BYTES`, read
    without reading more (a link to ``/dev/zero`` or a pipe is refused at once)."""
    return load(read_bounded(path, MAX_BYTES, "YAML file"))
