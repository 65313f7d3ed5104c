"""How the rooms fit together: one metric table, the study's directions in the plots, the
``study:`` reference in every command, one results folder for every command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dvbench.cli import main
from dvbench.evaluate import Evaluator
from dvbench.metrics import CONSTRAINTS, METRICS
from dvbench.report import get_pareto_front_info, load_report_data
from dvbench.search import SearchOptions, load_study, run_search
from dvbench.space import load_space

sys.path.insert(0, str(Path(__file__).parent / "search"))
from search_helpers import COST_SPACE, write_space  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dvbench"


class MadeUpCosts(Evaluator):
    """Costs that grow together with the knobs, so that maximising parameters while
    minimising GFLOPs makes every distinct candidate Pareto-optimal (and minimising both
    would keep one). Nothing is built: the stub goes in through ``run_search(evaluator=)``."""

    def costs(self, spec, *, overrides=None, timings=None):
        size = sum(spec.embed_dims) * sum(spec.depths) * (spec.semantic_grid or 1)
        return {"gflops": size / 1e3, "params_m": size / 1e4 + 0.5 * spec.semantic_grid}, None


def test_plot_of_a_maximised_objective_marks_exactly_the_pareto_table(tmp_path):
    space = load_space(write_space(tmp_path, {**COST_SPACE, "n_trials": 8}))
    assert space.directions == ["minimize", "maximize"]  # params_m is maximised
    options = SearchOptions(space=space, results_dir=tmp_path / "r", quiet=True, sampler="random")
    run_search(options, evaluator=MadeUpCosts.for_space(space))
    pareto = pd.read_csv(tmp_path / "r" / "costs" / "pareto.csv")
    data = load_report_data(load_study("costs", tmp_path / "r"))
    info = get_pareto_front_info(data, "gflops", "params_m")
    on_front = sorted(int(p.label) for p in info.points if p.on_front)
    assert len(pareto) >= 2  # a real front: the bug marked a single trial
    assert on_front == sorted(pareto["number"].astype(int))


@pytest.mark.slow
def test_profile_names_a_trial_of_a_finished_search(tmp_path):
    """``study:`` works in a command that never imports the search package."""
    space_file = write_space(tmp_path, {**COST_SPACE, "n_trials": 2})
    env = {"DVBENCH_RESULTS_DIR": str(tmp_path / "r"), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, str(REPO / "cli.py")]
    search = [*run, "search", "--space", str(space_file), "--quiet", "--sampler", "random"]
    done = subprocess.run(search, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(tmp_path / "r" / "costs" / "trials.csv")
    trial = trials[trials.state == "COMPLETE"].iloc[0]
    profile = [*run, "profile", f"study:costs:{int(trial.number)}", "--res", "64", "--no-latency"]
    done = subprocess.run(profile, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{trial.gflops:.2f}" in done.stdout or f"{trial.gflops:.3g}" in done.stdout


@pytest.mark.slow
def test_every_command_honours_the_results_dir_variable(tmp_path, monkeypatch):
    results = tmp_path / "elsewhere"
    monkeypatch.setenv("DVBENCH_RESULTS_DIR", str(results))
    monkeypatch.chdir(tmp_path)
    space_file = write_space(tmp_path, {**COST_SPACE, "n_trials": 2})
    assert main(["search", "--space", str(space_file), "--quiet", "--sampler", "random"]) == 0
    assert (results / "costs" / "trials.csv").is_file()
    assert main(["report", "costs"]) == 0
    assert (results / "costs" / "report" / "report.md").is_file()
    calibrate = ["calibrate", "--space", "small", "--data", "digits", "--candidates", "3"]
    calibrate += ["--ladder", "0.05,0.1", "--schedules", "", "--repeats", "0"]
    calibrate += ["--proxies", "params_m", "--train-samples", "3", "--res", "16"]
    assert main([*calibrate, "--quiet"]) == 0
    assert (results / "calibrate" / "small_digits" / "signals.csv").is_file()
    assert not (tmp_path / "results").exists()


def test_one_table_of_metrics_feeds_spaces_and_constraints():
    for key, metric in CONSTRAINTS.items():
        assert METRICS[metric].constraint == key
    space = load_space("small")
    assert all(o.metric in METRICS for o in space.objectives)
    # no other module defines a metric -> direction table of its own
    for path in PACKAGE.rglob("*.py"):
        if path.name == "metrics.py":
            continue
        text = path.read_text()
        assert '"top1": "maximize"' not in text and "'top1': 'maximize'" not in text, path


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("report", ("dvbench.train", "dvbench.evaluate", "dvbench.search._")),
        ("models", ("dvbench.profile", "dvbench.train", "dvbench.search", "dvbench.report")),
        ("profile", ("dvbench.train", "dvbench.search", "dvbench.report", "dvbench.evaluate")),
        ("train", ("dvbench.profile", "dvbench.search", "dvbench.report", "dvbench.evaluate")),
        ("evaluate", ("dvbench.search", "dvbench.report", "dvbench.calibrate")),
        # latency takes candidate configs: it needs no space
        ("latency", (
            "dvbench.train", "dvbench.evaluate", "dvbench.search", "dvbench.report",
            "dvbench.space",
        )),  # fmt: skip
        # the space sits below every room that reads one
        ("space", (
            "dvbench.search", "dvbench.calibrate", "dvbench.evaluate", "dvbench.report",
            "dvbench.cli", "dvbench.proxies",
        )),  # fmt: skip
        ("search", ("dvbench.calibrate", "dvbench.report", "dvbench.cli")),
        ("calibrate", ("dvbench.report", "dvbench.cli", "dvbench.search._")),
        ("cli", ("dvbench.search._",)),
        # the shared statistics sit below every room that compares candidates
        ("stats", tuple(f"dvbench.{room}" for room in (
            "models", "profile", "train", "evaluate", "latency", "search", "calibrate",
            "report", "cli", "proxies", "space",
        ))),  # fmt: skip
    ],
)
def test_imports_point_one_way(room, forbidden):
    for path in (PACKAGE / room).rglob("*.py"):
        bad = [m for m in _imports(path) if m.startswith(forbidden)]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_search_modules_stay_small():
    """A module of the search room does one job in at most 400 lines; ``record.py``, the one
    owner of every name and shape a study stores (issue 38), grows with them and is held to
    450 instead of being split to fit."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE / "search").glob("*.py")}
    assert sizes.pop("record.py") <= 450, "record.py"
    assert max(sizes.values()) <= 400, sizes


def _module_graph() -> dict[str, set[str]]:
    """dvbench's modules and the dvbench modules each imports anywhere in its file (inside
    functions too); ``from pkg import sub`` is an edge to the submodule when one exists."""

    def name(path: Path) -> str:
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in modules:
                        edges.add(full)
                    elif node.module in modules:
                        edges.add(node.module)
        graph[module] = edges - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_module_is_in_an_import_cycle():
    """Function-level imports included: an import inside a function that closes a loop is
    still a loop."""
    graph = _module_graph()
    assert _cycles(graph) == []
    graph["dvbench.metrics"].add("dvbench.search.tables")  # the detector finds one when planted
    assert any("dvbench.metrics" in cycle for cycle in _cycles(graph))
