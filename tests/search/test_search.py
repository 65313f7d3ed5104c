"""Search spaces, studies and tables: validation, resumption, failures, the Pareto export."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from search_helpers import COST_SPACE, REPO, kill_mid_trial, peek_study
from search_helpers import write_space as _write_space

from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.models import DualViTConfig, create_model, official_config
from dvbench.search import SearchOptions, load_study, run_search
from dvbench.space import list_spaces, load_space
from dvbench.stats.pareto import STRICT, hypervolume


def _options(tmp_path: Path, space_path: Path, **kwargs) -> SearchOptions:
    return SearchOptions(
        space=load_space(space_path), results_dir=tmp_path / "results", quiet=True, **kwargs
    )


def test_shipped_spaces_load_and_official_seeds_are_exact():
    assert {"small", "medium", "paper"} <= set(list_spaces())
    for name in ("small", "medium", "paper"):
        space = load_space(name)
        assert space.n_trials > 0 and space.sampler["population_size"] <= space.n_trials
    paper = load_space("paper")
    for name in ("dualvit_s", "dualvit_b", "dualvit_l"):
        cfg = paper.config(paper.seeds[name], num_classes=1000, img_size=224)
        assert cfg.replace(name=name) == official_config(name)
    small = load_space("small")
    assert small.metrics == ["top1", "gflops"] and small.directions == ["maximize", "minimize"]
    assert small.data.resolution == 32 and small.profile.resolution == 224
    assert small.resolution == 32 and load_space("paper").resolution == 224


@pytest.mark.parametrize(
    "change,message",
    [
        ({"knobs": {"width": {"low": 5}}}, "knobs.width: needs low and high"),
        ({"knobs": {"width": {"choices": []}}}, "knobs.width.choices: must be a non-empty list"),
        ({"objectives": [{"metric": "accuracy"}]}, "objectives\\[0\\].metric: unknown 'accuracy'"),
        ({"constraints": {"max_flops": 3}}, "constraints.max_flops: unknown"),
        ({"sampler": {"name": "cmaes"}}, "sampler.name: must be one of"),
        ({"n_trials": 0}, "n_trials: an integer from 1 to 100000"),
        ({"colour": "red"}, "colour: unknown key"),
        (
            {"seeds": {"s": {"width": 99, "depth3": 1, "semantic_grid": 1}}},
            "seeds.s.width: 99 is outside",
        ),
        (
            {"fixed": {**COST_SPACE["fixed"], "colour": 3}},
            "colour: not a knob",
        ),
        (
            {"objectives": [{"metric": "top1"}, {"metric": "gflops"}]},
            "train.resolution: the proxy resolution is required",
        ),
        ({"profile": {"res": 64, "fps": 3}}, "profile.fps: unknown setting"),
    ],
)
def test_invalid_spaces_name_file_and_field(tmp_path, change, message):
    path = _write_space(tmp_path, {**COST_SPACE, **change})
    with pytest.raises(UsageError, match=message) as info:
        load_space(path)
    assert str(path) in str(info.value)


def test_cli_invalid_space_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("knobs: [1, 2\n")
    assert main(["search", "--space", str(path), "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not valid YAML" in err[0]
    assert main(["search", "--space", "nosuchspace"]) == 2
    assert "unknown search space 'nosuchspace'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--n-trials", "0"])
    assert exit_info.value.code == 2


def test_cost_only_study_tables_resume_and_failures(tmp_path):
    impossible = {"width": 8, "depth3": 1, "semantic_grid": 32}  # a failure, whatever is sampled
    seeds = {**COST_SPACE["seeds"], "impossible": impossible}
    space_path = _write_space(tmp_path, {**COST_SPACE, "seeds": seeds})
    options = _options(tmp_path, space_path, seed_official=True, n_trials=5, seed=3)
    summary = run_search(options)
    assert summary.completed == 5
    study_dir = tmp_path / "results" / "costs"
    trials = pd.read_csv(study_dir / "trials.csv")
    pareto = pd.read_csv(study_dir / "pareto.csv")
    # Parquet twins hold the same rows
    assert len(pd.read_parquet(study_dir / "trials.parquet")) == len(trials)
    assert (
        pd.read_parquet(study_dir / "pareto.parquet")["number"].tolist()
        == pareto["number"].tolist()
    )

    complete = trials[(trials.state == "COMPLETE") & (trials.feasible != False)]  # noqa: E712
    assert len(complete) == 5
    assert trials.loc[trials.number == 0, "name"].item() == "seed_a"
    # the failed trials are the impossible semantic grids, recorded with their reason
    failed = trials[trials.state == "FAIL"]
    assert "impossible" in set(failed["name"])
    assert (failed["knob.semantic_grid"] == 32).all()
    assert failed["fail_reason"].str.contains("semantic_grid").all()
    # pareto.csv is exactly the non-dominated completed trials, sorted by GFLOPs
    complete = complete[complete["duplicate_of"].isna()]  # a copy is its original's row
    points = complete[["gflops", "params_m"]].to_numpy()
    expected = set(complete[STRICT.front(points, ["minimize", "maximize"])]["number"])
    assert set(pareto["number"]) == expected
    assert pareto["gflops"].is_monotonic_increasing
    for _, p in pareto.iterrows():
        for _, c in complete.iterrows():
            assert not STRICT.dominates(
                [c.gflops, c.params_m], [p.gflops, p.params_m], ["minimize", "maximize"]
            )
    # every complete trial carries a config that rebuilds the same model
    row = complete.iloc[-1]
    cfg = DualViTConfig.from_dict(json.loads(row["config"]))
    model = create_model(cfg)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(row["params_m"])

    # re-running continues the same study; the seed trial is not enqueued again
    summary = run_search(_options(tmp_path, space_path, seed_official=True, n_trials=7, seed=3))
    again = pd.read_csv(study_dir / "trials.csv")
    assert summary.completed == 7 and (again.state == "COMPLETE").sum() == 7
    assert (again["name"] == "seed_a").sum() == 1 and (again["name"] == "impossible").sum() == 1
    assert set(trials.number) <= set(again.number)


def test_study_reference_rebuilds_a_trial(tmp_path, monkeypatch):
    space_path = _write_space(tmp_path, {**COST_SPACE, "n_trials": 2})
    run_search(_options(tmp_path, space_path, n_trials=2))
    trials = pd.read_csv(tmp_path / "results" / "costs" / "trials.csv")
    number = int(trials[trials.state == "COMPLETE"].number.iloc[0])
    model = create_model(f"study:costs:{number}@{tmp_path / 'results'}")
    expected = trials.loc[trials.number == number, "params_m"].item()
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(expected)
    with pytest.raises(UsageError, match="no trial 999"):
        create_model(f"study:costs:999@{tmp_path / 'results'}")


def test_over_budget_candidates_are_not_trained_and_reported_to_the_sampler(tmp_path):
    space = {
        **COST_SPACE,
        "objectives": [{"metric": "top1"}, {"metric": "gflops"}],
        "constraints": {"max_gflops": 0.004},
        "knobs": {
            "width": {"choices": [8, 32]},
            "depth3": {"low": 1, "high": 1},
            "semantic_grid": {"choices": [1]},
        },
        "seeds": {
            "small": {"width": 8, "depth3": 1, "semantic_grid": 1},
            "big": {"width": 32, "depth3": 1, "semantic_grid": 1},
        },
        "train": {
            "data": "digits",
            "res": 16,
            "epochs": 0.2,
            "batch_size": 64,
            "train_samples": 20,
        },
        "n_trials": 2,
    }
    path = _write_space(tmp_path, space)
    run_search(_options(tmp_path, path, seed_official=True, n_trials=2))
    trials = pd.read_csv(tmp_path / "results" / "costs" / "trials.csv").set_index("name")
    assert not trials.loc["big", "feasible"] and trials.loc["small", "feasible"]
    assert pd.isna(trials.loc["big", "train_s"]) and trials.loc["small", "train_s"] > 0
    assert trials.loc["small", "top1"] > 0
    study = load_study("costs", tmp_path / "results")
    by_name = {t.user_attrs["seed_name"]: t for t in study.trials}
    assert by_name["big"].constraints["max_gflops"] > 0
    assert by_name["small"].constraints["max_gflops"] <= 0
    pareto = pd.read_csv(tmp_path / "results" / "costs" / "pareto.csv")
    assert "big" not in set(pareto["name"])


def test_diverging_training_is_a_failed_trial(tmp_path):
    space = {
        **COST_SPACE,
        "objectives": [{"metric": "top1"}, {"metric": "gflops"}],
        "knobs": {
            "width": {"choices": [8]},
            "depth3": {"low": 1, "high": 1},
            "semantic_grid": {"choices": [1]},
        },
        "seeds": {},
        "train": {
            "data": "digits",
            "res": 16,
            "epochs": 0.5,
            "batch_size": 32,
            "lr": 1.0e6,
            "grad_clip": None,
            "label_smoothing": 0.0,
            "train_samples": 20,
        },
        "n_trials": 1,
    }
    path = _write_space(tmp_path, space)
    summary = run_search(_options(tmp_path, path, n_trials=1, timeout=3.0))
    trials = pd.read_csv(tmp_path / "results" / "costs" / "trials.csv")
    assert summary.completed == 0 and (trials.state == "FAIL").all()
    assert len(trials) >= 1 and trials.fail_reason.str.contains("training failed").all()
    # the study stops on whichever limit comes first; the 25-in-a-row rule is pinned in
    # test_search_rules.py
    assert summary.stopped_reason == "timeout of 3 s reached" or (
        summary.stopped_reason.startswith("25 trials failed in a row; the last: training failed")
    )


def test_hypervolume_against_hand_arithmetic():
    # minimise x, maximise y, reference (10, 0): two boxes 6x4 and 3x(8-4)
    points = np.array([[4.0, 4.0], [7.0, 8.0]])
    assert hypervolume(points, ["minimize", "maximize"], [10.0, 0.0]) == pytest.approx(
        6 * 4 + 3 * 4
    )
    assert hypervolume(np.array([[11.0, 5.0]]), ["minimize", "maximize"], [10.0, 0.0]) == 0.0
    # normalised: each axis divided by its scale (x by 10, y by 8): the same boxes, scaled
    scaled = hypervolume(points, ["minimize", "maximize"], [10.0, 0.0], scale=[10.0, 8.0])
    assert scaled == pytest.approx((6 * 4 + 3 * 4) / 80)


@pytest.mark.slow
def test_sigkill_mid_trial_loses_no_completed_trial(tmp_path):
    """Kill the worker while a trial runs (proven first); re-running completes the study,
    nothing completed is lost, and the killed trial is failed and retried exactly once."""
    space = {
        **COST_SPACE,
        "seeds": {},
        "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}},
        "profile": {"res": 64, "latency": True},
    }  # latency makes each trial ~1 s or more
    path = _write_space(tmp_path, space)
    results = tmp_path / "results"
    cmd = [
        sys.executable,
        str(REPO / "cli.py"),
        "search",
        "--space",
        str(path),
        "--results-dir",
        str(results),
        "--quiet",
        "--n-trials",
        "6",
        "--heartbeat",
        "1,3",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sampled_trial_after_two_complete(study: optuna.Study):
        if len(study.get_trials(states=(TrialState.COMPLETE,))) < 2:
            return None
        running = study.get_trials(states=(TrialState.RUNNING,))
        return next((t for t in running if len(t.params) == len(space["knobs"])), None)

    victim, seen = kill_mid_trial(
        lambda: peek_study("costs", results),
        sampled_trial_after_two_complete,
        journal=results / "costs" / "journal.log",
        alive=lambda: proc.poll() is None,
    )
    assert proc.wait() == -signal.SIGKILL
    kept = {t.number for t in seen.get_trials(states=(TrialState.COMPLETE,))}
    assert len(kept) >= 2 and victim.state == TrialState.RUNNING  # killed mid-trial
    finished = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    after = pd.read_csv(results / "costs" / "trials.csv")
    assert (after.state == "COMPLETE").sum() == 6
    assert kept <= set(after[after.state == "COMPLETE"].number)
    assert "RUNNING" not in set(after.state)
    assert after.loc[after.number == victim.number, "state"].item() == "FAIL"
    retry = after[after["retried_from"] == victim.number]
    assert len(retry) == 1 and retry.state.item() == "COMPLETE"
    for knob in space["knobs"]:  # the same candidate
        assert retry[f"knob.{knob}"].item() == victim.params[knob]


def test_orphaned_running_trial_is_failed_and_retried(tmp_path):
    """A worker killed between creating a trial and starting it leaves no heartbeat."""
    from dvbench.search import trials_frame
    from dvbench.search._study import fail_orphaned_trials

    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}", directions=["minimize", "minimize"]
    )
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    live = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    live.set_user_attr("worker", {"id": "host:1", "trial": live.number})  # left alone
    inherited = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    # a retry's copy of its predecessor's record: not started
    inherited.set_user_attr("worker", {"id": "host:1", "trial": orphan.number})
    assert fail_orphaned_trials(study, grace_period=3600) == []
    assert fail_orphaned_trials(study, grace_period=0) == [orphan.number, inherited.number]
    trials = study.get_trials()
    assert trials[orphan.number].state.name == "FAIL"
    # its reason is the tables': a FAIL that no worker ever started
    reasons = trials_frame(study).set_index("number")["fail_reason"]
    assert reasons[orphan.number].startswith("worker died before the trial started; retried as")
    assert trials[live.number].state.name == "RUNNING"
    retry = trials[-2]
    assert retry.state.name == "WAITING" and retry.system_attrs["failed_trial"] == orphan.number
    assert retry.params == trials[orphan.number].params


def test_the_eta_counts_the_trial_in_training():
    from dvbench.search.display import _plain_progress

    line = _plain_progress(0, 4, None, 60.0, "trial 0: 50% trained", running=0.5)
    assert line == "0/4 complete, 1m00s elapsed, ETA 7m00s; trial 0: 50% trained"
    assert "ETA" not in _plain_progress(0, 4, None, 5.0, "trial 0: 0% trained")
    assert _plain_progress(2, 4, 1, 60.0, "last: x").startswith("2/4 complete, front 1, 1m00s")


def test_a_log_file_hears_of_the_first_trial_before_it_ends(tmp_path, capsys, monkeypatch):
    """The first trial of a training search sends lines with an ETA while it trains."""
    from search_helpers import write_space

    import dvbench.search.display

    monkeypatch.setattr(dvbench.search.display, "PLAIN_EVERY_S", 0.0)
    train = {"data": "digits", "resolution": 32, "train_samples": 8, "epochs": 2}
    knobs = {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}}
    space = {**COST_SPACE, "knobs": knobs, "objectives": ["top1", "gflops"], "n_trials": 2,
             "seeds": {}, "train": train}  # fmt: skip
    args = ["search", "--space", str(write_space(tmp_path, space)), "--results-dir",
            str(tmp_path), "--sampler", "random"]  # fmt: skip
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "trial 0: " in line]
    assert lines and all(line.startswith("0/2 complete, ") for line in lines), lines
    assert any("ETA" in line and "% trained, epoch" in line for line in lines), lines


def test_a_search_in_a_log_file_prints_a_line_a_trial_with_an_eta(tmp_path, capsys):
    """Not on a terminal the live bar is not drawn: a plain progress line after each trial,
    with an ETA once a trial is complete."""
    from search_helpers import write_space

    space = write_space(tmp_path, {**COST_SPACE, "n_trials": 3})
    args = ["search", "--space", str(space), "--results-dir", str(tmp_path), "--sampler", "random"]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if " complete, front " in line]
    counts = [int(line.split("/")[0]) for line in lines]  # one line per finished trial
    assert counts == sorted(counts) and counts[-1] == 3 and {1, 2} <= set(counts)
    for count, line in zip(counts, lines, strict=True):
        assert ("ETA" in line) == (0 < count < 3), line  # no ETA before the first or at the end
        assert "last: " in line
