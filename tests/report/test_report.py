"""``dvbench report``: plot infos, the PNGs, ``report.md`` against ``pareto.csv``, the CLI.

The study is made in-process with Optuna, carrying the user attributes the search writes
(config, metrics, timings, feasible; settings and baselines on the study), so no training is
needed. Counting FLOPs takes seconds per model, so only the seed trial's costs are counted;
the others get made-up costs that grow with the knobs (the report only reads them).
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import matplotlib.image
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from dvbench.cli import main
from dvbench.profile import count_cost
from dvbench.report import (
    get_hypervolume_info,
    get_importance_info,
    get_pareto_front_info,
    load_report_data,
    write_report,
)
from dvbench.report.plots import DPI, FIGSIZE, report_axes
from dvbench.search import open_study
from dvbench.search.tables import Criteria, export_tables
from dvbench.space.knobs import knobs_to_config

RES = 64
KNOBS = {
    "width": CategoricalDistribution([16, 32]),
    "depth1": IntDistribution(1, 2),
    "depth2": IntDistribution(1, 2),
    "depth3": IntDistribution(1, 3),
    "depth4": IntDistribution(1, 2),
    "mlp_ratio": CategoricalDistribution([2, 4]),
    "dual_stages": IntDistribution(1, 2),
    "semantic_grid": CategoricalDistribution([1, 2]),
}
FIXED = {
    "head_dim": 16,
    "width_multipliers": [1, 2, 4, 5],
    "stem_hidden_dim": 16,
    "class_mlp_ratio": 2,
    "semantic_pool": "grid",
}
SEED_KNOBS = {
    "width": 16,
    "depth1": 1,
    "depth2": 1,
    "depth3": 2,
    "depth4": 1,
    "mlp_ratio": 4,
    "dual_stages": 2,
    "semantic_grid": 2,
}
IMAGE_SHAPE = (round(FIGSIZE[1] * DPI), round(FIGSIZE[0] * DPI))


def _settings(name: str, objectives: list[tuple[str, str]], *, latency: bool) -> dict:
    return {
        "space": name,
        "space_file": None,
        "space_yaml": f"name: {name}\n",
        "objectives": [{"metric": m, "direction": d} for m, d in objectives],
        "constraints": {"max_gflops": 0.2},
        "sampler": "nsga2",
        "population_size": 8,
        "seed": 0,
        "n_trials": 10,
        "train": {"data": "digits", "res": 32, "epochs": 3},
        "profile": {"res": RES, "latency": latency, "batch_size": 1},
        "reference_point": {"top1": 0.0},
        "device": "cpu",
        "command": f"python cli.py search --space {name} --n-trials 10",
        "versions": {"optuna": optuna.__version__},
        "machine": "test",
    }


def _counted_cost(cfg) -> tuple[float, float]:
    cost = count_cost(cfg, RES)
    return cost.params / 1e6, cost.gflops


def _made_up_cost(knobs: dict) -> tuple[float, float]:
    blocks = sum(knobs[f"depth{i}"] * (1, 2, 4, 5)[i - 1] for i in range(1, 5))
    size = blocks * knobs["width"] ** 2 * (1 + knobs["mlp_ratio"]) * (1 + knobs["semantic_grid"])
    return size * 2e-5, size * 1.5e-7


def make_study(
    folder: Path,
    *,
    n_trials: int = 10,
    seed: int = 0,
    name: str = "fake",
    latency: bool = True,
    cost_only: bool = False,
) -> optuna.Study:
    """A finished accuracy-vs-GFLOPs study as the search leaves it, tables included.

    Trial 0 is the seed ``dualvit_s_scaled``; the second-to-last is over budget and the last
    failed; ``pvt_v2_b0`` is a baseline some candidates dominate, ``swin_t`` one that failed.
    ``cost_only``: the objectives are GFLOPs and parameters, and nothing was trained.
    """
    folder.mkdir(parents=True, exist_ok=True)
    objectives = [("top1", "maximize"), ("gflops", "minimize")]
    if cost_only:
        objectives = [("gflops", "minimize"), ("params_m", "minimize")]
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}",
        study_name=name,
        directions=[d for _, d in objectives],
    )
    settings = _settings(name, objectives, latency=latency)
    if cost_only:
        settings.update(train={}, reference_point={})
    study.set_user_attr("dvbench", settings)
    rng = random.Random(seed)
    rows = []
    for number in range(n_trials):
        if number == 0:
            knobs = dict(SEED_KNOBS)
        else:
            knobs = {
                k: rng.choice(d.choices)
                if isinstance(d, CategoricalDistribution)
                else rng.randint(d.low, d.high)
                for k, d in KNOBS.items()
            }
        cfg = knobs_to_config(
            {**FIXED, **knobs}, num_classes=10, img_size=RES, name=f"{name}_candidate"
        )
        params_m, gflops = _counted_cost(cfg) if number == 0 else _made_up_cost(knobs)
        top1 = 55 + 40 * (1 - math.exp(-gflops / 0.05)) + rng.uniform(-3, 3)
        metrics = {"params_m": params_m, "gflops": gflops}
        if not cost_only:
            metrics.update(top1=top1, top5=99.0)
        if latency:
            metrics["latency_ms_median"] = 2.0 + 40 * gflops + rng.uniform(0, 0.5)
        attrs = {
            "config": cfg.to_dict(),
            "metrics": metrics,
            "feasible": True,
            "timings": {"count_s": 0.1, "train_s": 1.0},
        }
        state, values = TrialState.COMPLETE, [metrics[m] for m, _ in objectives]
        if number == 0:
            attrs["seed_name"] = "dualvit_s_scaled"
        if number == n_trials - 2:
            attrs.update(feasible=False, skipped="over budget (max_gflops); not trained")
            if not cost_only:
                metrics.update(top1=0.0, top5=0.0)
                values = [0.0, gflops]
        if number == n_trials - 1:
            state, values = TrialState.FAIL, None
            attrs = {
                "config": cfg.to_dict(),
                "fail_reason": "training failed: loss is nan",
                "timings": {},
            }
        study.add_trial(
            create_trial(
                state=state, values=values, params=knobs, distributions=KNOBS, user_attrs=attrs
            )
        )
        if state == TrialState.COMPLETE and attrs["feasible"]:
            rows.append(metrics)
    worst = max(r["gflops"] for r in rows)
    baseline = {"params_m": 3.4, "gflops": worst * 1.5}
    if not cost_only:
        baseline["top1"] = sorted(r["top1"] for r in rows)[len(rows) // 2]
    if latency:
        baseline["latency_ms_median"] = 30.0
    study.set_user_attr(
        "baseline:pvt_v2_b0",
        {
            "name": "pvt_v2_b0",
            "overrides": {},
            "state": "COMPLETE",
            "metrics": baseline,
            "timings": {"duration_s": 2.0},
        },
    )
    study.set_user_attr(
        "baseline:swin_t",
        {
            "name": "swin_t(embed_dim=48)",
            "overrides": {"embed_dim": 48},
            "state": "FAIL",
            "fail_reason": "training failed: out of memory",
            "metrics": {},
            "timings": {},
        },
    )
    export_tables(study, folder, Criteria.of_settings(study.user_attrs["dvbench"]))
    return study


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results") / "fake"
    make_study(folder)
    return folder


@pytest.fixture(scope="module")
def report(study_dir):
    study, _ = open_study(study_dir)
    return write_report(study, study_dir / "report")


def _markdown_table(text: str, first_header: str) -> list[dict[str, str]]:
    """Rows of the first markdown table whose header starts with ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    split = [c.strip() for c in lines[start].strip("|").split(" | ")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip()[1:-1].split(" | ")]
        rows.append(dict(zip(split, cells, strict=True)))
    return rows


# ------------------------------------------------------------------------------- infos
def test_front_info_draws_feasible_trials_front_and_baselines(study_dir):
    study, _ = open_study(study_dir)
    data = load_report_data(study)
    info = get_pareto_front_info(data, "gflops", "top1")
    pareto = pd.read_csv(study_dir / "pareto.csv", float_precision="round_trip")
    names = {p.name for p in info.points}
    # over-budget (8) and failed (9) trials are not drawn; the failed baseline neither
    assert "trial_8" not in names and "trial_9" not in names
    assert "swin_t(embed_dim=48)" not in names
    assert len([p for p in info.points if p.kind not in ("pvt",)]) == 8
    # the study's objectives are these two axes, so the drawn front is pareto.csv
    assert sorted(p.name for p in info.points if p.on_front) == sorted(pareto["name"])
    assert info.front == sorted(zip(pareto["gflops"], pareto["top1"], strict=True))
    assert info.step == "post"
    seed = next(p for p in info.points if p.name == "dualvit_s_scaled")
    # a seed trial: its name and its Optuna trial number, as every table calls it
    assert seed.kind == "seed" and seed.label == "dualvit_s_scaled (0)"
    base = next(p for p in info.points if p.name == "pvt_v2_b0")
    assert base.kind == "pvt" and base.label == "pvt_v2_b0" and not base.on_front
    for p in info.points:  # front trials are labelled by number, others not at all
        if p.kind == "front":
            assert p.label == p.name.removeprefix("trial_")
        if p.kind == "trial":
            assert p.label is None
    assert info.x_label == f"GFLOPs ({RES} px, per image)"
    assert info.y_label == "top-1 accuracy (%)"
    assert "2 failed" not in info.subtitle and "1 failed" in info.subtitle
    assert "1 over budget" in info.subtitle


def test_report_axes_add_latency_only_when_measured(study_dir, tmp_path):
    data = load_report_data(open_study(study_dir)[0])
    assert report_axes(data) == [("gflops", "top1"), ("latency_ms_median", "top1")]
    info = get_pareto_front_info(data, "latency_ms_median", "top1")
    assert info.x_label == f"latency (ms, {RES} px, batch 1)"
    no_latency = make_study(tmp_path / "nolat", n_trials=4, latency=False, name="nolat")
    assert report_axes(load_report_data(no_latency)) == [("gflops", "top1")]


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([1.0, 31.0], False),  # 1.49 decades (10 ** 1.5 = 31.6)
        ([1.0, 32.0], True),  # 1.51 decades
        ([0.05, 0.5, 20.0], True),  # 2.6 decades
        ([2.0, 4.0, 8.0], False),
        ([0.0, 10.0, 1000.0], False),  # a zero cannot go on a log axis
        ([5.0], False),
    ],
)
def test_log_scale_only_for_values_spanning_more_than_one_and_a_half_decades(values, log):
    from dvbench.report.plots import _is_log

    assert _is_log(values) is log


def test_the_front_plot_applies_the_log_rule_to_costs_never_to_accuracy(study_dir, monkeypatch):
    import dvbench.report.plots as plots

    data = load_report_data(open_study(study_dir)[0])
    monkeypatch.setattr(plots, "LOG_SCALE_DECADES", 0.0)  # any spread is "decades" now
    info = get_pareto_front_info(data, "gflops", "top1")
    assert info.x_log and not info.y_log  # accuracy is never logarithmic
    monkeypatch.setattr(plots, "LOG_SCALE_DECADES", 100.0)
    assert not get_pareto_front_info(data, "gflops", "top1").x_log


def test_hypervolume_info_matches_the_search_tables(study_dir):
    data = load_report_data(open_study(study_dir)[0])
    info = get_hypervolume_info(data)
    assert info.numbers == list(range(8))  # the feasible completed trials
    assert info.values == sorted(info.values)  # never decreases
    assert info.values[-1] == pytest.approx(data.hypervolume.value)
    assert "top1 0.00" in info.subtitle  # the space fixed the accuracy reference
    assert data.dominance["pvt_v2_b0"]  # some candidate beats the baseline


def test_importance_is_skipped_for_few_trials(study_dir):
    study = open_study(study_dir)[0]
    info = get_importance_info(study, load_report_data(study))
    assert info.params == [] and "at least 10" in info.skipped


def test_importance_per_objective(tmp_path):
    study = make_study(tmp_path / "big", n_trials=14, seed=1, name="big")
    info = get_importance_info(study, load_report_data(study))
    assert info.skipped is None
    assert set(info.importances) == {"top1", "gflops"}
    assert set(info.params) <= set(KNOBS)
    for values in info.importances.values():
        assert len(values) == len(info.params) and sum(values) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ report
def test_report_writes_every_file_at_the_expected_size(report, study_dir):
    folder = study_dir / "report"
    expected = {"report.md", "top1_vs_gflops.png", "top1_vs_latency.png", "hypervolume.png"}
    assert expected <= {p.name for p in folder.iterdir()}
    for name in expected - {"report.md"}:
        image = matplotlib.image.imread(folder / name)
        assert image.shape[:2] == IMAGE_SHAPE, name
    assert report.markdown == folder / "report.md"


def test_markdown_front_rows_are_pareto_csv(report, study_dir):
    text = report.markdown.read_text()
    rows = _markdown_table(text, "kind")
    front = [r for r in rows if r["kind"] == "front"]
    pareto = pd.read_csv(study_dir / "pareto.csv", float_precision="round_trip")
    assert [int(r["trial"]) for r in front] == pareto["number"].tolist()
    assert [r["name"] for r in front] == pareto["name"].tolist()
    assert [float(r["GFLOPs ↓"]) for r in front] == pytest.approx(
        pareto["gflops"].tolist(), rel=5e-3
    )
    assert [float(r["top-1 accuracy (%) ↑"]) for r in front] == pytest.approx(
        pareto["top1"].tolist(), abs=5e-3
    )
    baselines = {r["name"]: r for r in rows if r["kind"] == "baseline"}
    assert set(baselines) == {"pvt_v2_b0", "swin_t(embed_dim=48) (FAIL)"}


def test_markdown_has_plots_settings_dominance_and_command(report):
    text = report.markdown.read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (report.markdown.parent / image).is_file(), image
    assert "![top-1 accuracy vs GFLOPs](top1_vs_gflops.png)" in text
    assert "**pvt_v2_b0** is dominated by" in text
    assert "**swin_t(embed_dim=48)**: not compared, it failed (training failed" in text
    assert "Reference point: top1 = 0.00 (set by the space)" in text
    assert "```bash\npython cli.py search --space fake --n-trials 10\n```" in text
    settings = {r["setting"]: r["value"] for r in _markdown_table(text, "setting")}
    assert settings["objectives"] == "top1 (maximize), gflops (minimize)"
    assert settings["proxy training"].startswith("digits at 32 px")


def test_cost_only_study_plots_its_two_objectives(tmp_path):
    study = make_study(tmp_path / "costs", n_trials=6, name="costs", latency=False, cost_only=True)
    data = load_report_data(study)
    assert report_axes(data) == [("gflops", "params_m")]
    info = get_pareto_front_info(data, "gflops", "params_m")
    assert info.y_label == "parameters (M)" and info.step == "post"
    files = write_report(study, tmp_path / "costs" / "report", importance=False)
    assert [p.name for p in files.plots.values()] == ["params_vs_gflops.png", "hypervolume.png"]
    text = files.markdown.read_text()
    assert "top-1" not in text and "none (cost-only objectives)" in text


# --------------------------------------------------------------------------------- CLI
def test_cli_report_writes_the_folder(study_dir, capsys):
    assert main(["report", str(study_dir), "--no-importance"]) == 0
    out = capsys.readouterr().out
    assert "report.md" in out
    assert (study_dir / "report" / "report.md").is_file()


def test_cli_report_by_name_and_out(study_dir, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    code = main(
        [
            "report",
            "fake",
            "--results-dir",
            str(study_dir.parent),
            "--out",
            str(out),
            "--no-importance",
        ]
    )
    assert code == 0
    assert (out / "report.md").is_file() and (out / "top1_vs_gflops.png").is_file()


def test_cli_report_unknown_study_is_one_line(tmp_path, capsys):
    assert main(["report", "nothing", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no study" in err


def test_cli_report_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_the_reproduce_command_reproduces_the_study(tmp_path, monkeypatch):
    """A study run with a space changed in code: the report embeds the space as it ran, and
    its Reproduce command, run again, gives the same trials."""
    import dataclasses
    import shlex

    from search_helpers import COST_SPACE, write_space

    from dvbench.search import SearchOptions, run_search
    from dvbench.space import load_space

    monkeypatch.setenv("DVBENCH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    space = load_space(write_space(tmp_path, {**COST_SPACE, "seeds": {}}))
    changed = dataclasses.replace(space, constraints={"max_gflops": 0.01}, n_trials=4)
    options = SearchOptions(space=changed, study_name="coded", seed=3, sampler="random",
                            results_dir=tmp_path / "results", quiet=True)  # fmt: skip
    run_search(options)
    assert main(["report", "coded"]) == 0
    page = (tmp_path / "results" / "coded" / "report" / "report.md").read_text()
    command = next(line for line in page.splitlines() if "--study-name coded_again" in line)
    recorded = load_space(tmp_path / "results" / "coded" / "report" / "space.yaml")
    assert recorded.constraints == {"max_gflops": 0.01}  # the space as run, not the file
    assert main(shlex.split(command)[2:] + ["--quiet"]) == 0
    first = pd.read_csv(tmp_path / "results" / "coded" / "trials.csv")
    again = pd.read_csv(tmp_path / "results" / "coded_again" / "trials.csv")
    columns = [c for c in first.columns if c.startswith("knob.")] + ["gflops", "feasible", "state"]
    pd.testing.assert_frame_equal(first[columns], again[columns])
