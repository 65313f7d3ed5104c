"""``dvbench compare`` and ``dvbench export``: tables, plots, round trips, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import timm
import yaml
from optuna.trial import TrialState, create_trial

from dvbench.cli import main
from dvbench.evaluate import Evaluator, compare_models
from dvbench.models import load_config
from dvbench.profile import ProfileSettings, count_cost
from dvbench.report import (
    create_from_file,
    export_trial,
    get_comparison_info,
    write_comparison,
)
from dvbench.report.plots import DPI, FIGSIZE
from dvbench.search import SearchOptions, load_study, open_study, run_search
from dvbench.space import load_space
from dvbench.train import DataSpec, TrainSettings

RES = 64
IMAGE_SHAPE = (round(FIGSIZE[1] * DPI), round(FIGSIZE[0] * DPI))
TINY_CONFIG = """\
base: dualvit_s
embed_dims: [16, 32, 48, 64]
num_heads: [1, 2, 3, 4]
depths: [1, 1, 1, 1]
stem_hidden_dim: 8
semantic_pool: grid
semantic_grid: 2
num_classes: 10
"""
SPACE = f"""\
name: costs
knobs: {{width: {{choices: [16, 32]}}, depth3: {{low: 1, high: 3}}}}
fixed: {{head_dim: 16, width_multipliers: [1, 2, 4, 5], depth1: 1, depth2: 1, depth4: 1,
        mlp_ratio: 2, stem_hidden_dim: 16, semantic_pool: grid, semantic_grid: 2}}
objectives: [gflops, params_m]
sampler: {{name: random}}
n_trials: 2
profile: {{res: {RES}}}
"""


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """A real cost-only search (no training), plus one failed trial added afterwards."""
    root = tmp_path_factory.mktemp("results")
    space_file = root / "costs.yaml"
    space_file.write_text(SPACE)
    run_search(SearchOptions(space=load_space(space_file), results_dir=root, quiet=True))
    study, _ = open_study("costs", results_dir=root)
    study.add_trial(
        create_trial(
            state=TrialState.FAIL,
            user_attrs={"fail_reason": "invalid config: semantic_grid: too large"},
        )
    )
    return root


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(TINY_CONFIG)
    return path


# ------------------------------------------------------------------------------ export
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_export_loads_as_the_recorded_config(results_dir, tmp_path, suffix):
    study, _ = open_study("costs", results_dir=results_dir)
    path = export_trial(study, 0, tmp_path / f"best{suffix}")
    cfg = load_config(path)
    assert cfg.to_dict() | {"name": None} == study.trials[0].user_attrs["config"] | {"name": None}
    assert cfg.name == "costs_trial0"


def test_export_rebuilds_the_recorded_network(results_dir, tmp_path):
    study, _ = open_study("costs", results_dir=results_dir)
    path = export_trial(study, 0, tmp_path / "best.yaml")
    cost = count_cost(create_from_file(path), RES)
    metrics = study.trials[0].user_attrs["metrics"]
    assert cost.params / 1e6 == pytest.approx(metrics["params_m"], rel=1e-9)
    assert cost.gflops == pytest.approx(metrics["gflops"], rel=1e-9)
    # timm builds the same network from the file's fields
    model = timm.create_model("dualvit_s", **load_config(path).to_dict())
    assert sum(p.numel() for p in model.parameters()) == cost.params


def test_export_yaml_is_plain_fields_under_a_comment(results_dir, tmp_path):
    study, _ = open_study("costs", results_dir=results_dir)
    text = export_trial(study, 1, tmp_path / "t.yaml").read_text()
    assert text.startswith("# Dual-ViT config exported by dvbench: study 'costs', trial 1.")
    assert "embed_dims" in yaml.safe_load(text)
    data = json.loads(export_trial(study, 1, tmp_path / "t.json").read_text())
    assert data["source"]["trial"] == 1 and data["source"]["study"] == "costs"
    assert set(data["source"]["knobs"]) == {"width", "depth3"}


def test_cli_export_default_path(results_dir, capsys):
    assert main(["export", "costs", "--trial", "1", "--results-dir", str(results_dir)]) == 0
    path = results_dir / "costs" / "trial_1.yaml"
    assert capsys.readouterr().out.strip() == str(path)
    assert load_config(path).embed_dims


@pytest.mark.parametrize(("argv", "message"), [
    (["nothing", "--trial", "0"], "no study"),
    (["costs", "--trial", "99"], "has no trial 99"),
    (["costs", "--trial", "2"], "recorded no config (invalid config"),
    (["costs", "--trial", "0", "--out", "x.txt"], "must end in .yaml"),
])  # fmt: skip
def test_cli_export_errors_are_one_line(results_dir, capsys, argv, message):
    assert main(["export", *argv, "--results-dir", str(results_dir)]) == 2
    assert message in _error_line(capsys)


# ----------------------------------------------------------------------------- compare
@pytest.fixture(scope="module")
def comparison(tiny_config):
    evaluator = Evaluator(profile=ProfileSettings(resolution=RES, latency=False))
    return compare_models([str(tiny_config), "pvt_v2_b0"], evaluator)


def test_compare_frame_and_plot_info(comparison):
    frame = comparison.frame()
    assert frame["model"].tolist() == ["tiny", "pvt_v2_b0"]
    assert frame["params_m"].gt(0).all() and frame["gflops"].gt(0).all()
    assert frame["latency_ms_median"].isna().all()
    assert "top1" not in frame  # not trained
    info = get_comparison_info(frame)
    assert (info.x_metric, info.y_metric) == ("gflops", "params_m")  # no timing, no accuracy
    assert {p.label for p in info.points} == {"tiny", "pvt_v2_b0"}
    assert {p.kind for p in info.points} == {"other", "pvt"}


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_write_comparison_table_and_png(comparison, tmp_path, suffix):
    table, plot = write_comparison(comparison.frame(), tmp_path / f"cmp{suffix}")
    frame = pd.read_json(table) if suffix == ".json" else pd.read_parquet(table)
    assert frame["model"].tolist() == ["tiny", "pvt_v2_b0"]
    assert plot == tmp_path / "cmp.png"
    assert matplotlib.image.imread(plot).shape[:2] == IMAGE_SHAPE


def test_compare_with_proxy_accuracy(tiny_config):
    evaluator = Evaluator(
        profile=ProfileSettings(resolution=RES, latency=False),
        data=DataSpec("digits", resolution=32),
        train=TrainSettings(epochs=0.1),
    )
    result = compare_models([str(tiny_config)], evaluator)
    frame = result.frame()
    assert frame["train_status"].tolist() == ["ok"]
    assert 0 <= frame["top1"].iloc[0] <= 100
    assert get_comparison_info(frame).y_metric == "top1"


def test_cli_compare_default_out_with_a_study_reference(
    results_dir, tiny_config, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DVBENCH_RESULTS_DIR", str(tmp_path / "results"))
    reference = f"study:costs:0@{results_dir}"
    code = main(["compare", str(tiny_config), reference, "--no-latency", "--res", str(RES)])
    assert code == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "parameters (M)" in out
    frame = pd.read_csv(tmp_path / "results" / "compare" / "compare.csv")
    assert frame["model"].tolist() == ["tiny", reference]
    recorded = load_study("costs", results_dir).trials[0].user_attrs["metrics"]
    assert frame["gflops"].iloc[1] == pytest.approx(recorded["gflops"])
    assert (tmp_path / "results" / "compare" / "compare.png").is_file()


def test_profile_finds_a_study_reference_in_its_results_dir(results_dir, capsys):
    code = main(["profile", "study:costs:0", "--results-dir", str(results_dir),
                 "--no-latency", "--res", str(RES)])  # fmt: skip
    assert code == 0
    recorded = load_study("costs", results_dir).trials[0].user_attrs["metrics"]
    assert f"{recorded['gflops']:.2f}" in capsys.readouterr().out


def test_cli_compare_unknown_model_is_one_line(capsys, tmp_path):
    assert main(["compare", "dualvit_q", "--no-latency", "--out", str(tmp_path / "c.csv")]) == 2
    assert "unknown model 'dualvit_q'" in _error_line(capsys)


@pytest.mark.parametrize("command", ["compare", "export"])
def test_help_has_examples(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out
