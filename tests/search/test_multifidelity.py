"""Multi-fidelity search: the promotion rule by hand, a whole study, and workers killed mid-rung.

The study tests use a tiny space trained on the embedded digits data (16 px, 10 images a
class) so a rung takes a second or two.
"""

from __future__ import annotations

import math
import os
import sys
import uuid
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from search_helpers import (
    REPO,
    kill_mid_trial,
    open_gate,
    peek_study,
    start_gated,
    worker_pid,
    write_space,
)

from dvbench.evaluate import Evaluator, training_seed
from dvbench.search import SearchOptions, run_search
from dvbench.search._ladder import Ladder
from dvbench.search.record import run_of
from dvbench.search.storage import open_storage
from dvbench.space import load_space
from dvbench.space.rungs import Fidelity, beyond_promotion, horizon, promotions
from dvbench.stats.pareto import STRICT, crowding_distances

PG_URL = os.environ.get("DVBENCH_TEST_PG_URL")
MAX_MIN = ["maximize", "minimize"]


def rung_of(trial) -> tuple[int, int]:
    mark = run_of(trial)
    return mark.candidate, mark.rung


MF_SPACE = {
    "name": "mf",
    "knobs": {
        "width": {"choices": [8, 16]},
        "depth3": {"low": 1, "high": 3},
        "mlp_ratio": {"choices": [2, 4]},
    },
    "fixed": {
        "head_dim": 8, "width_multipliers": [1, 2, 3, 4], "depth1": 1, "depth2": 1,
        "depth4": 1, "stem_hidden_dim": 8, "semantic_grid": 2,
    },
    "objectives": [
        {"metric": "top1", "direction": "maximize"},
        {"metric": "gflops", "direction": "minimize"},
    ],
    "sampler": {"name": "random"},
    "n_trials": 6,
    "train": {
        "data": "digits", "resolution": 16, "train_samples": 10, "test_samples": 10,
        "batch_size": 16, "epochs": 1,
    },
    "profile": {"resolution": 32, "latency": False},
    "fidelity": {"rungs": [1, 2, 4], "eta": 2},
}  # fmt: skip


# ------------------------------------------------------------------------------- the rule
def test_non_dominated_ranks_by_hand():
    # (top1 max, gflops min): a=(50,1) and b=(60,2) trade off; c=(40,2) is dominated by
    # both; d=(30,3) by all three; e=(60,2) ties b (neither dominates the other)
    values = [(50, 1), (60, 2), (40, 2), (30, 3), (60, 2)]
    assert STRICT.ranks(values, MAX_MIN) == [0, 0, 1, 2, 0]


def test_crowding_distance_by_hand():
    # one front of four points on a line: top1 10,20,30,60 ; gflops 1,2,3,6
    values = [(10, 1), (20, 2), (30, 3), (60, 6)]
    d = crowding_distances(values, MAX_MIN)
    assert d[0] == d[3] == math.inf
    # point 1: neighbours 10 and 30 on top1 (range 50), 1 and 3 on gflops (range 5)
    assert d[1] == pytest.approx(20 / 50 + 2 / 5)
    assert d[2] == pytest.approx(40 / 50 + 4 / 5)


def test_pareto_order_rank_then_crowding_then_number():
    values = [(10, 1), (20, 2), (30, 3), (60, 6), (5, 6)]
    ids = [7, 3, 9, 1, 2]
    # front 0: ids 7, 3, 9, 1 (extremes 7 and 1 first, by id), then 9 (more crowding
    # distance than 3), then 3; id 2 (5 top1 at 6 gflops) is dominated
    assert STRICT.order(values, MAX_MIN, ids) == [1, 7, 9, 3, 2]
    # exact ties everywhere: the smaller id first
    assert STRICT.order([(1, 1)] * 3, MAX_MIN, [5, 4, 6]) == [4, 5, 6]


def test_promotions_fill_top_one_over_eta_once_from_the_top_rung_down():
    fid = Fidelity(rungs=(1, 3, 9), eta=2)
    # six candidates at rung 0; 3 (rung 1) and 4 (rung 1) got promoted before
    completed = {
        0: {0: [10, 1]}, 1: {0: [50, 1]}, 2: {0: [40, 2]}, 3: {0: [60, 2], 1: [70, 2]},
        4: {0: [55, 3], 1: [52, 3]}, 5: {0: [20, 5]},
    }  # fmt: skip
    started = {(c, 0) for c in completed} | {(3, 1), (4, 1)}
    due = promotions(completed, started, MAX_MIN, fid)
    # rung 1 holds 2 candidates: 1 slot, candidate 3 (70 at 2 GFLOPs dominates 52 at 3).
    # rung 0 holds 6: 3 slots. Rank 0: {1, 3} (50 at 1 and 60 at 2 trade off). Rank 1:
    # {0, 2, 4} (0 = 10 at 1 is dominated by 1 only; 2 by 1 and 3; 4 by 3); rank 2: {5}.
    # In rank 1, 0 and 4 are the extremes (infinite crowding) and 0 has the smaller number,
    # so the slots go to 1, 3 (already promoted) and 0.
    assert due == [(3, 2), (1, 1), (0, 1)]
    # once enqueued, nothing is due again
    assert promotions(completed, started | set(due), MAX_MIN, fid) == []


def test_a_candidate_is_beyond_promotion_once_enough_others_dominate_it():
    fid = Fidelity(rungs=(1, 3), eta=2)
    completed = {0: {0: [10, 5]}, 1: {0: [50, 1]}, 2: {0: [40, 2]}, 3: {0: [60, 1], 1: [61, 1]}}
    started = {(c, 0) for c in completed} | {(3, 1)}
    # 4 candidates in all: floor(4/2) = 2 dominators put one out of reach for good
    out = beyond_promotion(completed, started, MAX_MIN, fid, candidates=4)
    assert out == {0, 2, 3}  # 0: dominated by 1, 2, 3; 2: by 1 and 3; 3: at the top rung
    # with 6 candidates to come, 3 dominators are needed: of the two, only 0 is out
    assert beyond_promotion(completed, started, MAX_MIN, fid, candidates=6) == {0, 3}
    # with 8, four: none
    assert beyond_promotion(completed, started, MAX_MIN, fid, candidates=8) == {3}


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"rungs": [3]}, "at least two"),
        ({"rungs": [3, 1]}, "must increase"),
        ({"rungs": [1, 3], "eta": 1}, "eta"),
        ({"rungs": [1, 3], "unit": "hours"}, "unit"),
        ({"rungs": [1.5, 3], "unit": "steps"}, "whole steps"),
        ({"rungs": [1, 3], "etta": 2}, "etta"),
    ],
)
def test_fidelity_block_errors_name_the_field(raw, message):
    with pytest.raises(ValueError, match=message):
        Fidelity.parse(raw)


def test_the_schedule_horizon_is_the_top_rung():
    space = load_space(write_space_dict(MF_SPACE))
    settings = horizon(space.train, space.fidelity)
    assert settings.epochs == 4.0 and settings.max_steps is None
    steps = Fidelity(rungs=(10, 40), unit="steps")
    assert horizon(space.train, steps).max_steps == 40 and steps.budget(0).steps == 10
    assert steps.label(1) == "40steps" and space.fidelity.label(0) == "1ep"


def write_space_dict(space: dict) -> Path:
    import tempfile

    return write_space(Path(tempfile.mkdtemp()), space, "mf.yaml")


# ------------------------------------------------------------------------------ a study
@pytest.mark.slow
def test_a_multifidelity_study_promotes_by_rule_and_continues_checkpoints(tmp_path):
    space = load_space(write_space(tmp_path, MF_SPACE, "mf.yaml"))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    summary = run_search(options)
    study_dir = tmp_path / "results" / "mf"
    trials = optuna.load_study(study_name="mf", storage=open_storage(options.storage_url)).trials
    runs = {rung_of(t): t for t in trials}
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(runs) == len(trials)  # no (candidate, rung) run twice
    candidates = sorted(c for c, k in runs if k == 0)
    assert len(candidates) == 6 and summary.completed == 6
    # a proposal of a network already measured copies it (duplicate_of): not promotable
    distinct = [c for c in candidates if runs[(c, 0)].user_attrs.get("duplicate_of") is None]
    # the rule, replayed on the final records: n at rung 0 -> n // 2 promoted; -> 1
    at = {k: [c for c, r in runs if r == k] for k in range(3)}
    assert set(at[1]) <= set(distinct)
    assert len(at[1]) >= len(distinct) // 2 and len(at[2]) >= 1  # early promotions stay
    # every promotion continued its candidate's checkpoint (steps trained before it)
    for (c, k), t in runs.items():
        if k > 0:
            assert t.user_attrs["timings"]["resumed_from_step"] > 0, (c, k)
    assert not list((study_dir / "checkpoints").glob("*.pt"))  # all removed at the end
    assert summary.checkpoint_peak_bytes > 0
    table = pd.read_csv(study_dir / "trials.csv")
    assert len(table) == 6 and set(table["candidate"]) == set(candidates)
    for row in table.to_dict("records"):
        reached = [k for c, k in runs if c == row["candidate"]]
        assert row["rung"] == max(reached) and row["final"] == (max(reached) == 2)
        top = runs[(row["candidate"], max(reached))]
        assert row["top1"] == top.values[0] == row[f"top1@{row['budget']}"]
    front = pd.read_csv(study_dir / "pareto.csv")
    assert len(front) >= 1 and front["final"].all()
    provisional = pd.read_csv(study_dir / "provisional.csv")
    assert not provisional["final"].any()
    assert set(provisional["number"]).isdisjoint(front["number"])
    assert len(pd.read_csv(study_dir / "runs.csv")) == len(trials)

    # the report: the plot marks each candidate's rung, the page states the rule and counts
    from dvbench.report.data import load_report_data
    from dvbench.report.markdown import render_report
    from dvbench.report.plots import get_pareto_front_info

    data = load_report_data(optuna.load_study(study_name="mf", storage=open_storage(
        options.storage_url)))  # fmt: skip
    info = get_pareto_front_info(data, "gflops", "top1")
    final = set(table.loc[table["final"], "number"])
    stopped = [p for p in info.points if p.kind == "stopped"]
    # each candidate drawn once: a copy (duplicate_of) is its original's point
    assert len(stopped) == len(distinct) - len(final) and len(info.points) == len(distinct)
    expected = {int(r["number"]): r["budget"] for r in table.to_dict("records")}
    for p in stopped:
        number = int(p.name.split("_")[1])
        assert number not in final and p.label == f"{number}:{expected[number]}"
    page = render_report(data)
    own = table[table["duplicate_of"].isna()]
    reached = ", ".join(f"{(own['rung'] >= k).sum()} reached {b}" for k, b in enumerate(
        ("1ep", "2ep", "4ep")))  # fmt: skip
    assert reached in page and "provisional.csv" in page


@pytest.mark.slow
def test_a_promoted_candidate_equals_one_go_training_to_its_rung(tmp_path):
    """The top rung reached through two checkpoints gives the accuracy one go gives."""
    space = load_space(write_space(tmp_path, {**MF_SPACE, "n_trials": 4}, "mf.yaml"))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    run_search(options)
    trials = optuna.load_study(study_name="mf", storage=open_storage(options.storage_url)).trials
    top = [t for t in trials if rung_of(t)[1] == 2]
    assert len(top) == 1  # 4 candidates -> 2 promoted -> 1 at the top
    candidate = rung_of(top[0])[0]
    evaluator = Evaluator.for_space(space, seed=0)
    evaluator = evaluator.with_train(horizon(space.train, space.fidelity))
    cfg = space.config(
        trials[candidate].params, num_classes=evaluator.num_classes,
        img_size=evaluator.resolution,
    )  # fmt: skip
    seed = training_seed(cfg.replace(img_size=evaluator.data.resolution), options.seed)
    assert top[0].user_attrs["train_seed"] == seed  # the network's own seed, at every rung
    one_go = evaluator.train(cfg, seed=seed, budget=space.fidelity.budget(2))
    assert one_go.top1 == top[0].values[0]
    assert one_go.resumed_from_step == 0


# ---------------------------------------------------------------------- workers and kills
@pytest.mark.slow
def test_a_worker_killed_mid_rung_loses_nothing_and_no_promotion_runs_twice(storage_url, tmp_path):
    """Two workers; one is SIGKILLed while it runs a promotion (proven before the outcome
    is read). The other fails that run once it is stale, runs it again from the candidate's
    checkpoint, and the study ends with its six candidates, every run taken once."""
    space = write_space(tmp_path, {**MF_SPACE, "sampler": {"name": "random"}}, "mf.yaml")
    results = tmp_path / "results"
    name = "mf" if storage_url is None else f"mf_{uuid.uuid4().hex[:10]}"
    cmd = [sys.executable, str(REPO / "cli.py"), "search", "--space", str(space)]
    cmd += ["--results-dir", str(results), "--study-name", name, "--quiet"]
    cmd += ["--workers", "2", "--heartbeat", "1,3"]
    cmd += ["--storage", storage_url] if storage_url else []
    gate = tmp_path / "gate"
    proc = start_gated(cmd, gate)
    open_gate(gate, 1)  # the started worker runs alone until the kill
    try:

        def promotion_in_child(study: optuna.Study):
            running = study.get_trials(states=(TrialState.RUNNING,))
            mid = [t for t in running if rung_of(t)[1] > 0]
            return next((t for t in mid if worker_pid(t) not in (None, proc.pid)), None)

        journal = None if storage_url else results / name / "journal.log"
        victim, seen = kill_mid_trial(
            lambda: peek_study(name, results, storage_url),
            promotion_in_child,
            journal=journal,
            alive=lambda: proc.poll() is None,
        )
        kept = {t.number for t in seen.get_trials(states=(TrialState.COMPLETE,))}
        assert victim.state == TrialState.RUNNING and rung_of(victim)[1] > 0  # mid-rung
        open_gate(gate, 0)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "worker 1 exited with status -9" in err
    storage = open_storage(storage_url) if storage_url else options_url(results, name)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert kept <= {t.number for t in complete}  # nothing completed was lost
    taken = [rung_of(t) for t in complete]
    assert len(taken) == len(set(taken))  # no (candidate, rung) completed twice
    assert sum(k == 0 for _, k in taken) == 6  # the requested count of candidates
    assert trials[victim.number].state == TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert rung_of(retry[0]) == rung_of(victim) and worker_pid(retry[0]) == proc.pid
    # every promotion due at the end was taken: replay the rule on the final records
    ladder = Ladder(SearchOptions(space=load_space(space), results_dir=results,
                                  study_name=name), lambda message: None)  # fmt: skip
    completed, started, _, _ = ladder.read(trials)
    fid = ladder.fidelity
    assert promotions(completed, started, MAX_MIN, fid, rule=ladder.criteria.rule) == []
    assert not list((results / name / "checkpoints").glob("*.pt"))
    if storage_url:
        optuna.delete_study(study_name=name, storage=open_storage(storage_url))


def options_url(results: Path, name: str):
    from dvbench.search.storage import study_folder_storage

    return open_storage(study_folder_storage(results / name))
