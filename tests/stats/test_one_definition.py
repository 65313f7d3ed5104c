"""One definition each of the statistics every room shares: the default confidence, strict
dominance, Spearman's rho, the percentile interval of draws and the pooled seed variance live
in ``dvbench/stats`` (each in one function or constant), and no other file of ``dvbench/`` or
``benchmarks/`` writes a second copy. The checks read the source (AST), so they hold for code
no test runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "dvbench").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")])

#: The one home of each: (file, the function or constant that holds it).
CONFIDENCE_HOME = ("dvbench/stats/pareto.py", "DEFAULT_CONFIDENCE")
DOMINANCE_HOME = ("dvbench/stats/pareto.py", "_strictly_dominates")
RANK_HOMES = {
    "spearmanr": ("dvbench/stats/reliability.py", "spearman"),
    "kendalltau": ("dvbench/stats/reliability.py", "_tau"),
}
INTERVAL_HOME = ("dvbench/stats/pareto.py", "percentile_interval")
POOLED_HOME = "dvbench/stats/noise.py"  # the pooled variance and the flips pooled like it

#: Names under which a number is a confidence (a parameter, a keyword, a constant, a key).
CONFIDENCE_NAMES = ("confidence", "level", "confidence_level")


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


def _nodes(path: Path) -> Iterator[tuple[ast.AST, str]]:
    """Every node of ``path`` with the name of the function (or constant) it sits in ('' at
    module level)."""

    def walk(node: ast.AST, owner: str) -> Iterator[tuple[ast.AST, str]]:
        for child in ast.iter_child_nodes(node):
            name = owner
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = child.name
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and not owner:
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                name = next((t.id for t in targets if isinstance(t, ast.Name)), owner)
            yield child, name
            yield from walk(child, name)

    yield from walk(ast.parse(path.read_text(), str(path)), "")


def _outside(home: tuple[str, str], path: Path, owner: str) -> bool:
    return (str(path.relative_to(REPO)), owner) != home


def _is_number(node: ast.AST | None, value: float) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is float and node.value == value


def _named(target: ast.AST) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return ""


def _called(node: ast.AST) -> str:
    """The name a call calls (``np.percentile(...)``: ``percentile``), else ''."""
    return _named(node.func) if isinstance(node, ast.Call) else ""


def _confidences(path: Path) -> Iterator[ast.AST]:
    """The literal 0.95 where it is a confidence: a parameter's default, a keyword argument, a
    constant or field, or a mapping's value under one of :data:`CONFIDENCE_NAMES`."""
    for node, owner in _nodes(path):
        if isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            pairs = [*zip(positional[len(positional) - len(node.defaults) :], node.defaults),
                     *zip(node.kwonlyargs, node.kw_defaults)]  # fmt: skip
            hits = [d for a, d in pairs if a.arg in CONFIDENCE_NAMES and _is_number(d, 0.95)]
        elif isinstance(node, ast.keyword):
            hits = [node.value] if node.arg in CONFIDENCE_NAMES else []
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(w in _named(t).lower() for t in targets for w in CONFIDENCE_NAMES)
            hits = [node.value] if named and _outside(CONFIDENCE_HOME, path, owner) else []
        elif isinstance(node, ast.Dict):
            hits = [v for k, v in zip(node.keys, node.values)
                    if isinstance(k, ast.Constant) and k.value in CONFIDENCE_NAMES]  # fmt: skip
        else:
            hits = []
        yield from (h for h in hits if _is_number(h, 0.95))


def test_the_default_confidence_is_written_once():
    found = [_where(p, n) for p in SOURCES for n in _confidences(p)]
    assert not found, f"0.95 as a confidence outside {CONFIDENCE_HOME}: {found}"


def _is_comparison(node: ast.AST, ops: tuple[type, ...]) -> bool:
    return isinstance(node, ast.Compare) and all(isinstance(o, ops) for o in node.ops)


def _reduction(node: ast.AST, name: str, ops: tuple[type, ...]) -> bool:
    """``(a >= b).all(...)``, ``np.all(a >= b)`` or ``all(a >= b for ...)`` (``name``: all,
    any) over a comparison by ``ops``."""
    if _called(node) != name:
        return False
    inner = [node.func.value] if isinstance(node.func, ast.Attribute) else []
    inner += node.args[:1]
    for part in inner:
        if isinstance(part, ast.GeneratorExp):
            part = part.elt
        if _is_comparison(part, ops):
            return True
    return False


def _strict_dominance(path: Path) -> Iterator[ast.AST]:
    """Strict dominance ("no worse in all, better in one") written out: an ``all`` of >= (or
    <=) joined by ``&`` or ``and`` with an ``any`` of > (or <)."""
    for node, owner in _nodes(path):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
            parts = (node.left, node.right)
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            parts = tuple(node.values)
        else:
            continue
        no_worse = any(_reduction(p, "all", (ast.GtE, ast.LtE)) for p in parts)
        better = any(_reduction(p, "any", (ast.Gt, ast.Lt)) for p in parts)
        if no_worse and better and _outside(DOMINANCE_HOME, path, owner):
            yield node


def test_strict_dominance_is_written_once():
    found = [_where(p, n) for p in SOURCES for n in _strict_dominance(p)]
    assert not found, f"strict dominance written outside {DOMINANCE_HOME}: {found}"


@pytest.mark.parametrize("name", sorted(RANK_HOMES))
def test_each_rank_correlation_is_computed_in_one_place(name):
    home = RANK_HOMES[name]
    found = [
        _where(p, n)
        for p in SOURCES
        for n, owner in _nodes(p)
        if (
            (isinstance(n, ast.Name) and n.id == name)
            or (isinstance(n, ast.Attribute) and n.attr == name)
            or (isinstance(n, ast.alias) and n.name == name)
        )
        and (isinstance(n, ast.alias) or _outside(home, p, owner))
    ]
    assert not found, f"{name} outside {home}: {found}"


def _is_interval(node: ast.AST) -> bool:
    """A percentile or quantile call asked for two points at once (an interval's ends)."""
    if _called(node) not in ("percentile", "quantile", "nanpercentile", "nanquantile"):
        return False
    points = [k.value for k in node.keywords if k.arg == "q"] + node.args[1:2]
    return any(isinstance(q, (ast.List, ast.Tuple)) and len(q.elts) == 2 for q in points)


def test_percentile_intervals_are_computed_in_one_place():
    found = [
        _where(p, n)
        for p in SOURCES
        for n, owner in _nodes(p)
        if _is_interval(n) and _outside(INTERVAL_HOME, p, owner)
    ]
    assert not found, f"a percentile interval outside {INTERVAL_HOME}: {found}"


def _is_sample_variance(node: ast.AST) -> bool:
    """``x.var(ddof=1)`` or ``np.var(x, ddof=1)``."""
    return _called(node) == "var" and any(k.arg == "ddof" for k in node.keywords)


def _is_variance(node: ast.AST) -> bool:
    """A sample variance, or a square (``sd ** 2``)."""
    square = (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
        and isinstance(node.right, ast.Constant) and node.right.value == 2
    )  # fmt: skip
    return square or _is_sample_variance(node)


def _pooling(node: ast.AST) -> bool:
    """A pooled variance written out: a variance weighted by its degrees of freedom,
    ``(n - 1) * sd ** 2`` or ``(n - 1) * np.var(x, ddof=1)``, or sample variances averaged,
    ``np.mean([np.var(x, ddof=1) ...])`` or ``x.var(axis=1, ddof=1).mean()``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for df, variance in ((node.left, node.right), (node.right, node.left)):
            minus_one = (
                isinstance(df, ast.BinOp) and isinstance(df.op, ast.Sub)
                and isinstance(df.right, ast.Constant) and df.right.value == 1
            )  # fmt: skip
            if minus_one and _is_variance(variance):
                return True
    if _called(node) in ("mean", "average", "nanmean", "sum"):
        averaged = [node.func.value] if isinstance(node.func, ast.Attribute) else []
        averaged += node.args[:1]
        return any(_is_sample_variance(part) for a in averaged for part in ast.walk(a))
    return False


def test_pooled_variance_is_computed_in_one_place():
    found = [
        _where(p, n)
        for p in SOURCES
        if str(p.relative_to(REPO)) != POOLED_HOME
        for n, _ in _nodes(p)
        if _pooling(n)
    ]
    assert not found, f"a pooled variance outside {POOLED_HOME}: {found}"


def test_the_homes_exist():
    """The allow-listed homes are where the definitions are (a rename must update this test)."""
    homes = [CONFIDENCE_HOME, DOMINANCE_HOME, INTERVAL_HOME, *RANK_HOMES.values()]
    for file, name in homes:
        owners = {owner for _, owner in _nodes(REPO / file)}
        assert name in owners, f"{file} defines no {name}"
    from dvbench.stats import noise

    assert callable(noise.pooled_variance)
