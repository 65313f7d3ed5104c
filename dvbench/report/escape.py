"""Names escaped for the page they land on: a markdown table cell or a markdown sentence.

A study's names (candidates, baselines, seeds, knob values, commands) come from files a user
may have been handed. In ``report.md`` they are text, never markup: HTML is escaped (a
``<script>`` in a name shows as ``&lt;script&gt;``, it does not run in a viewer that renders
HTML; quotes stay, outside an attribute they are text), every line break becomes a space (a
newline would end the table row or the list item), a backslash is written as an entity (it
cannot escape the escaping) and, in a table cell, a pipe is escaped (it would start a new
cell).
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

__all__ = ["markdown_cell", "markdown_text"]

#: Everything a markdown renderer may take for the end of a line.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def markdown_text(value: Any) -> str:
    """``value`` as plain text inside a markdown sentence: HTML-escaped, on one line, with
    control characters dropped and backslashes as ``&#92;``."""
    text = _LINE_BREAKS.sub(" ", str(value))
    text = "".join(c for c in text if unicodedata.category(c) != "Cc" or c == "\t")
    return html.escape(text, quote=False).replace("\\", "&#92;").replace("\t", " ")


def markdown_cell(value: Any) -> str:
    """``value`` as the text of one markdown table cell: :func:`markdown_text`, with pipes
    escaped."""
    return markdown_text(value).replace("|", "\\|")
