"""Every label, unit and format a room shows comes from the one table, ``dvbench/metrics.py``.

The rooms that show metrics (the profile table, plots, the report, ``compare``, the proxies'
table, the latency predictions) write no metric label, unit or format of their own: no dict
from metric names to labels or file names, no ``(column, header, format)`` rows, no header
such as ``"GFLOPs"`` or ``"params (M)"``. And a proxy is called what the metric table calls it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dvbench.metrics import METRICS, PROXY_METRICS
from dvbench.proxies._registry import BASELINES, PROXIES

PACKAGE = Path(__file__).resolve().parents[1] / "dvbench"
#: The modules that show metrics to people (metrics.py itself is the table).
SHOWING = (
    "profile/display.py",
    "report/compare.py",
    "report/markdown.py",
    "report/plots.py",
    "report/data.py",
    "proxies/_display.py",
    "proxies/_registry.py",
    "latency/display.py",
)

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_@.]*")
_UNITS = sorted({m.unit for m in METRICS.values() if m.unit}, key=len, reverse=True)
#: A unit in parentheses after a space (``params (M)``), or a header line that is a unit
#: (``latency\nms``, ``img/s``); units of one character only in parentheses.
_UNIT_HEADER = re.compile(
    r"(?:^|\s)\((?:" + "|".join(map(re.escape, _UNITS)) + r")\)"
    r"|(?:^|\s)(?:" + "|".join(re.escape(u) for u in _UNITS if len(u) > 1) + r")$"
)


def _label_texts() -> set[str]:
    """What a hand-written header would say: each metric's ``label (unit)``, and each label
    that is a name rather than an ordinary word (``GFLOPs``, ``top-1 accuracy``, ``SynFlow``)."""
    texts = {f"{m.label} ({m.unit})" for m in METRICS.values() if m.unit}
    texts |= {m.label for m in METRICS.values() if re.search(r"[A-Z0-9]", m.label)}
    return texts


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def findings(source: str) -> list[str]:
    """The hand-written metric labels, units and formats in ``source`` (a module's text)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    labels = _label_texts()
    out = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Dict):
            keys = [_text(k) for k in node.keys if k is not None]
            if any(k in METRICS for k in keys) and any(_text(v) is not None for v in node.values):
                out.append(f"{where}: a dict from metric names to text: {ast.unparse(node)[:80]}")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            texts = [t for t in map(_text, node.elts) if t is not None]
            shown = [t for t in texts if not _IDENTIFIER.fullmatch(t)]  # a header, a format
            if shown and any(t in METRICS for t in texts):
                out.append(f"{where}: a metric beside {shown[0]!r}: {ast.unparse(node)[:80]}")
        text = _text(node)
        if text is None or id(node) in skip:
            continue
        named = sorted(label for label in labels if label in text)
        if named:
            out.append(f"{where}: {text!r} writes the label {named[0]!r}")
        elif _UNIT_HEADER.search(text.strip()):
            out.append(f"{where}: {text!r} writes a unit as a header")
    return out


@pytest.mark.parametrize("module", SHOWING)
def test_rooms_write_no_metric_label_unit_or_format_of_their_own(module):
    path = PACKAGE / module
    assert findings(path.read_text()) == [], f"{module}: read these from dvbench.metrics"


@pytest.mark.parametrize(
    "source",
    [
        '_SHORT = {"latency_ms_median": "latency", "params_m": "params"}',
        '_DISPLAY = (("params_m", "params\\n(M)", "{:.2f}"),)',
        '_DISPLAY = [("gflops", "{:.2f}")]',
        'HEADERS = ("module", "params (M)")',
        'table.add_column("Params (M)")',
        'table.add_column("GFLOPs")',
        'subtitle = f"GFLOPs at {res} px"',
        'table.add_column("latency\\nms")',
        'table.add_column("img/s")',
        'Proxy("synflow", "SynFlow", _synflow)',
        'title = "top-1 accuracy vs parameters"',
    ],
)
def test_the_check_finds_a_hand_written_label(source):
    assert findings(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""A docstring may say GFLOPs and params (M)."""',
        'COLUMNS = ("model", "params_m", "gflops", "top1")',
        'LEGEND = {"swin": "Swin", "pvt": "PVTv2"}',
        'line = f"{n} candidates, {lo}-{hi} {unit} per batch"',
        'header = ("module", "type", "% FLOPs")',
    ],
)
def test_the_check_passes_what_is_not_a_label(source):
    assert findings(source) == []


def test_every_proxy_is_called_what_the_metric_table_calls_it():
    for name, proxy in PROXIES.items():
        assert name in METRICS, f"proxy {name} is not in dvbench.metrics"
        assert proxy.label == METRICS[name].label, name
    assert [n for n in PROXIES if n not in BASELINES] == list(PROXY_METRICS)
    assert all(METRICS[n].kind == "cost" for n in BASELINES)


def test_plot_files_and_headers_follow_the_table():
    from dvbench.report.plots import plot_file_name

    assert plot_file_name("gflops", "top1") == "top1_vs_gflops.png"
    assert plot_file_name("gflops", "params_m") == "params_vs_gflops.png"
    assert plot_file_name("latency_ms_median", "top1") == "top1_vs_latency.png"
    for name, metric in METRICS.items():
        stem = plot_file_name(name, name).split("_vs_")[0]
        assert stem == metric.stem, name
        wide = metric.header()
        assert wide == (f"{metric.label} ({metric.unit})" if metric.unit else metric.label)
        assert "\n" not in wide and metric.header(narrow=True).count("\n") <= 1
