"""The space room (issue 38): the one candidate sampler and the one class-count rule, which
every room that needs candidates or classes reads; no other module defines either."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import optuna
import pytest
import yaml

from dvbench.space import load_space
from dvbench.train import DataSpec

PACKAGE = Path(__file__).resolve().parents[2] / "dvbench"


def _space(tmp_path, **changes):
    base = yaml.safe_load(load_space("small").path.read_text())
    base.pop("seeds")
    base.update(changes)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(base))
    return load_space(path)


def test_random_candidates_are_distinct_buildable_and_reproducible():
    space = load_space("small")
    pairs = space.random_candidates(8, 4)
    assert len({json.dumps(k, sort_keys=True) for k, _ in pairs}) == 8
    assert all(c.img_size == space.profile.resolution for _, c in pairs)
    assert all(c.num_classes == space.num_classes == 10 for _, c in pairs)  # digits
    assert [k for k, _ in space.random_candidates(8, 4)] == [k for k, _ in pairs]
    assert [k for k, _ in space.random_candidates(8, 5)] != [k for k, _ in pairs]
    assert {c.img_size for _, c in space.random_candidates(3, 4, img_size=32)} == {32}


def test_random_candidates_leave_optunas_log_level_and_give_fewer_when_fewer_exist(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        knobs = {"width": {"choices": [16, 32]}, "depth3": {"low": 1, "high": 1}}
        fixed = {
            **load_space("small").fixed, "depth1": 1, "depth2": 1, "depth4": 1, "mlp_ratio": 4,
            "dual_stages": 2, "semantic_grid": 2, "semantic_mlp_ratio_dual": 4,
            "semantic_mlp_ratio_merge": 2,
        }  # fmt: skip
        space = _space(tmp_path, knobs=knobs, fixed=fixed)
        pairs = space.random_candidates(10, 0)
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert len(pairs) == 2  # only two networks exist: the caller decides if that is an error


@pytest.mark.parametrize(
    ("changes", "classes"),
    [
        ({}, 10),  # digits
        ({"train": {"data": "cifar100", "resolution": 32, "epochs": 1}}, 100),
        ({"fixed": {**load_space("small").fixed, "num_classes": 7}}, 7),  # fixed wins
        ({"objectives": [{"metric": "gflops", "direction": "minimize"}], "train": None}, 1000),
    ],
)
def test_the_class_count_rule(tmp_path, changes, classes):
    changes = {k: v for k, v in changes.items() if v is not None}
    if "train" in changes or "objectives" in changes:
        raw = yaml.safe_load(load_space("small").path.read_text())
        raw.update(changes)
        if "objectives" in changes:
            raw.pop("train")
            raw.pop("seeds", None)
            raw["constraints"] = {}
            raw["reference_point"] = {}
            raw.pop("prefilter", None)
        path = tmp_path / "space.yaml"
        path.write_text(yaml.safe_dump(raw))
        space = load_space(path)
    else:
        space = _space(tmp_path, **changes)
    assert space.num_classes == classes


def test_an_image_folder_counts_its_class_folders_with_images(tmp_path):
    from PIL import Image

    for split, names in (("train", ["cat", "dog", "empty"]), ("val", ["cat", "dog"])):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            if name != "empty":
                Image.new("RGB", (8, 8)).save(tmp_path / split / name / "a.png")
    (tmp_path / "train" / ".hidden").mkdir()
    assert DataSpec(source=str(tmp_path)).num_classes == 2
    assert DataSpec(source=str(tmp_path / "missing")).num_classes == 0


def _defined_functions(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def test_no_room_but_space_draws_candidates_or_counts_classes():
    """No module outside dvbench/space/ defines a candidate sampler or reads a space's
    ``fixed.num_classes`` (the class-count rule)."""
    for path in PACKAGE.rglob("*.py"):
        if "space" in path.relative_to(PACKAGE).parts[:1]:
            continue
        text = path.read_text()
        samplers = {n for n in _defined_functions(path) if "candidates" in n and "sample" in n}
        assert not samplers, f"{path}: defines {samplers}"
        assert 'fixed.get("num_classes"' not in text, path
        assert '"num_classes" in space.fixed' not in text, path


def test_the_prefilter_reads_its_signals_from_the_metric_table():
    """The pre-filter's signals come from dvbench.metrics (no import of the proxies room)
    and are exactly what the proxies room scores."""
    from dvbench.proxies import PROXIES
    from dvbench.space import prefilter

    assert set(prefilter.SIGNALS) == set(PROXIES)
    assert "dvbench.proxies" not in Path(prefilter.__file__).read_text()


@pytest.mark.parametrize(
    ("value", "inside"),
    [(16, True), (32, True), (24, False), ("16", False), (True, False)],
)
def test_a_knob_contains_its_values_only(value, inside):
    width = next(k for k in load_space("small").knobs if k.name == "width")  # choices 16/32/48
    assert width.contains(value) is inside


@pytest.mark.parametrize(("value", "inside"), [(1, True), (4, True), (0, False), (2.5, False)])
def test_an_integer_knob_contains_its_steps_only(value, inside):
    depth = next(k for k in load_space("small").knobs if k.name == "depth3")  # 1..4
    assert depth.contains(value) is inside
