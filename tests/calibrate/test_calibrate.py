"""The fidelity benchmark: hand-checked rank statistics, a resumable record, the CLI."""

from __future__ import annotations

import json
import math

import pytest

from dvbench.calibrate import (
    CalibrationPlan,
    accuracy_standard_error,
    calibrate,
    rank_agreement,
    top_overlap,
)
from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.space import load_space
from dvbench.train import DataSpec, TrainSettings


def test_sampled_candidates_are_distinct_and_valid():
    space = load_space("small")
    pairs = space.random_candidates(6, 1, img_size=32)
    keys = {json.dumps(k, sort_keys=True) for k, _ in pairs}
    assert len(keys) == 6
    assert all(cfg.img_size == 32 and cfg.num_classes == 10 for _, cfg in pairs)
    again = space.random_candidates(6, 1, img_size=32)
    assert [k for k, _ in again] == [k for k, _ in pairs]


def test_rank_statistics_on_hand_checked_orders():
    target = [1, 2, 3, 4, 5]
    same = rank_agreement([10, 20, 30, 40, 50], target)
    assert (same.kendall_tau, same.spearman_rho, same.top_quarter) == pytest.approx((1, 1, 1))
    assert same.kendall_low == pytest.approx(1) and same.kendall_high == pytest.approx(1)
    reverse = rank_agreement([5, 4, 3, 2, 1], target)
    assert (reverse.kendall_tau, reverse.spearman_rho, reverse.top_quarter) == pytest.approx(
        (-1, -1, 0)
    )
    # one adjacent swap of 5: 9 concordant and 1 discordant pair -> (9 - 1) / 10
    swap = rank_agreement([1, 2, 3, 5, 4], target)
    assert swap.kendall_tau == pytest.approx(0.8)
    # rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 120
    assert swap.spearman_rho == pytest.approx(0.9)
    assert swap.kendall_low <= swap.kendall_tau <= swap.kendall_high
    # top quarter of 8 = the best 2: the signal finds one of them
    assert top_overlap([8, 1, 7, 2, 3, 4, 5, 6], [8, 7, 1, 2, 3, 4, 5, 6]) == 0.5
    missing = rank_agreement([1, math.nan, 3, 4], [1, 2, 3, 4])
    assert missing.n == 3 and missing.kendall_tau == pytest.approx(1)


def test_standard_error_of_an_accuracy():
    assert accuracy_standard_error(50.0, 1000) == pytest.approx(1.58, abs=0.01)
    assert accuracy_standard_error(50.0, 8000) == pytest.approx(0.559, abs=0.001)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidates": 2}, "candidates"),
        ({"ladder": (3, 1)}, "ladder"),
        ({"repeats": 30}, "repeats"),
        ({"proxies": ("nope",)}, "proxies"),
    ],
)
def test_plan_errors_name_the_field(kwargs, message):
    with pytest.raises(UsageError, match=message):
        CalibrationPlan(**kwargs)


@pytest.mark.slow
def test_a_killed_calibration_recomputes_nothing_it_finished(tmp_path):
    space = load_space("small")
    plan = CalibrationPlan(
        candidates=3, ladder=(0.2, 0.4), schedules=(0.2,), proxies=("params_m", "synflow"),
        repeats=1, seeds=2,
    )  # fmt: skip
    data = DataSpec("digits", resolution=16, train_samples=8, test_samples=4)
    train = TrainSettings(batch_size=16, num_threads=1)
    units: list[str] = []

    def stop_after_four(unit: str) -> None:
        units.append(unit)
        if len(units) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        calibrate(space, plan, data=data, train=train, folder=tmp_path, on_unit=stop_after_four)
    # candidate 1: proxies, its first seed's 2 rungs, its second seed's first rung
    assert units == ["proxies", "rung", "rung", "rung"]
    rest: list[str] = []
    result = calibrate(space, plan, data=data, train=train, folder=tmp_path, on_unit=rest.append)
    # candidate 1: the rest of its second seed, its schedule; candidates 2 and 3: proxies,
    # 2 rungs (one seed), 1 schedule
    assert rest == ["rung", "schedule"] + ["proxies", "rung", "rung", "schedule"] * 2
    assert result.summary["measured"] == 3 and result.summary["repeats"] == 1
    signals = set(result.signals["signal"])
    assert {"params_m", "synflow", "rung 0.2 ep", "0.2-epoch schedule"} <= signals
    again: list[str] = []
    calibrate(space, plan, data=data, train=train, folder=tmp_path, on_unit=again.append)
    assert again == []
    other = CalibrationPlan(candidates=4, ladder=(0.2, 0.4), schedules=(), repeats=0)
    with pytest.raises(UsageError, match="other settings"):
        calibrate(space, other, data=data, train=train, folder=tmp_path)


@pytest.mark.slow
def test_shards_split_the_candidates_and_a_last_run_only_summarizes(tmp_path):
    space = load_space("small")
    plan = CalibrationPlan(
        candidates=3, ladder=(0.2, 0.4), schedules=(), proxies=("params_m",), repeats=0
    )
    data = DataSpec("digits", resolution=16, train_samples=8, test_samples=4)
    train = TrainSettings(batch_size=16, num_threads=1)
    seen: dict[int, list[int]] = {}
    for index in (1, 0):
        done: list[str] = []
        out = calibrate(
            space, plan, data=data, train=train, folder=tmp_path, on_unit=done.append,
            shard=(index, 2),
        )  # fmt: skip
        assert out is None
        seen[index] = done
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    by_shard = {
        index: sorted({r["candidate"] for r in records[1:] if r["candidate"] % 2 == index})
        for index in (0, 1)
    }
    assert by_shard == {0: [0, 2], 1: [1]}
    assert len(seen[1]) == 3 and len(seen[0]) == 6  # proxies + 2 rungs per candidate
    last: list[str] = []
    result = calibrate(space, plan, data=data, train=train, folder=tmp_path, on_unit=last.append)
    assert last == [] and result.summary["measured"] == 3
    with pytest.raises(UsageError, match="shard"):
        calibrate(space, plan, data=data, train=train, folder=tmp_path, shard=(2, 2))


def test_calibrate_cli_errors(capsys):
    assert main(["calibrate", "--candidates", "2", "--data", "digits"]) == 2
    assert "candidates" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["calibrate", "--ladder", "one"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["calibrate", "--shard", "2/2"])
    assert info.value.code == 2
    assert "0 <= I < N" in capsys.readouterr().err


@pytest.mark.slow
def test_the_report_states_the_calibrated_accuracy_axis(tmp_path):
    """A calibration of the same space and data: the report quotes its schedule's tau."""
    from dvbench.calibrate import save_calibration
    from dvbench.report.data import accuracy_axis_text

    settings = {
        "space": "small",
        "objectives": [{"metric": "top1"}, {"metric": "gflops"}],
        "train": {"data": "digits", "epochs": 0.2},
    }
    assert "not calibrated" in accuracy_axis_text(settings, tmp_path / "calibrate")
    plan = CalibrationPlan(
        candidates=3, ladder=(0.2, 0.4), schedules=(0.2,), proxies=("params_m",), repeats=2
    )
    data = DataSpec("digits", resolution=16, train_samples=8, test_samples=4)
    folder = tmp_path / "calibrate" / "small_digits"
    result = calibrate(
        load_space("small"), plan, data=data, train=TrainSettings(batch_size=16), folder=folder
    )
    save_calibration(result, folder)
    tau = result.signals.set_index("signal").loc["0.2-epoch schedule", "kendall_tau"]
    text = accuracy_axis_text(settings, tmp_path / "calibrate")
    assert text.startswith("0.2-epoch schedule on digits: Kendall tau")
    assert f"{tau:.2f}" in text and "against 0.4 epochs on 3 candidates" in text
    settings["train"]["epochs"] = 0.4  # the calibration's target: its seed agreement
    summary = json.loads((folder / "summary.json").read_text())
    text = accuracy_axis_text(settings, tmp_path / "calibrate")
    assert f"two seeds of one network agree at ICC {summary['icc']:.2f}" in text
    verdict = "resolved" if summary["icc"] >= 0.7 else "NOT resolved (ICC below 0.7"
    assert f"the axis is {verdict}" in text
    settings["train"]["epochs"] = 3  # no calibration of a 3-epoch schedule
    assert "not calibrated" in accuracy_axis_text(settings, tmp_path / "calibrate")


def test_every_rung_keeps_each_test_image_outcome_and_only_measures_the_chosen(tmp_path):
    from dvbench.calibrate import read_records
    from dvbench.stats import ImageOutcomes

    space = load_space("small")
    plan = CalibrationPlan(
        candidates=3, ladder=(0.2, 0.4), schedules=(), proxies=("params_m",), repeats=3, seeds=1
    )
    data = DataSpec("digits", resolution=16, train_samples=8, test_samples=6)
    train = TrainSettings(batch_size=16, num_threads=1)
    out = calibrate(space, plan, data=data, train=train, folder=tmp_path, only=frozenset({1}))
    assert out is None
    rungs = [r for r in read_records(tmp_path)[1:] if r["unit"] == "rung"]
    assert {r["candidate"] for r in rungs} == {1} and len(rungs) == 2
    for record in rungs:
        outcomes = ImageOutcomes.unpack(record["outcomes"])
        assert len(outcomes) == record["test_images"] == 60
        # the whole set in its own order: half A the even images, half B the odd ones
        assert outcomes.half("a").top1 == pytest.approx(record["top1_a"])
        assert outcomes.half("b").top1 == pytest.approx(record["top1_b"])
        assert outcomes.top1 == pytest.approx(record["top1"])
        assert outcomes.mean_loss == pytest.approx(record["test_loss"], rel=1e-3)  # float16
    with pytest.raises(UsageError, match="only"):
        calibrate(space, plan, data=data, train=train, folder=tmp_path, only=frozenset({3}))


@pytest.mark.slow
def test_a_rung_whose_record_was_lost_after_its_checkpoint_measures_the_same(tmp_path):
    """The yardstick's resumed run: killed after a rung's checkpoint was written but before its
    record, the rung is measured again from that checkpoint (no steps trained twice) and gives
    the record of an uninterrupted calibration."""
    space = load_space("small")
    plan = CalibrationPlan(
        candidates=3, ladder=(0.2, 0.4, 0.6), schedules=(), proxies=("params_m",), repeats=0
    )
    data = DataSpec("digits", resolution=16, train_samples=8, test_samples=4)
    train = TrainSettings(batch_size=16, num_threads=1)
    whole = tmp_path / "whole"
    calibrate(space, plan, data=data, train=train, folder=whole, only=frozenset({0}))
    cut = tmp_path / "cut"
    calibrate(space, plan, data=data, train=train, folder=cut, only=frozenset({0}))
    lines = (cut / "records.jsonl").read_text().splitlines()
    # drop the last rung's record; rebuild the checkpoint it had written at that rung
    kept = [line for line in lines if json.loads(line).get("epochs") != 0.6]
    (cut / "records.jsonl").write_text("\n".join(kept) + "\n")
    from dvbench.evaluate import Evaluator, training_seed
    from dvbench.train import Budget

    cfg = space.random_candidates(3, 0, img_size=16)[0][1]
    dataset = data.load(seed=0)
    from dvbench.calibrate._run import split_test

    settings = TrainSettings(batch_size=16, num_threads=1, epochs=0.6)
    evaluator = Evaluator(profile=space.profile, data=split_test(dataset)[0], train=settings)
    checkpoint = cut / "checkpoints" / "candidate_0_seed0.pt"
    for epochs in (0.2, 0.4, 0.6):  # the run up to the lost rung, checkpoint written
        evaluator.train(cfg, seed=training_seed(cfg, 0), budget=Budget(epochs=epochs),
                        checkpoint=checkpoint)  # fmt: skip
    calibrate(space, plan, data=data, train=train, folder=cut, only=frozenset({0}))

    def last_rung(folder):
        lines = (folder / "records.jsonl").read_text().splitlines()
        return next(json.loads(x) for x in lines if json.loads(x).get("epochs") == 0.6)

    again, reference = last_rung(cut), last_rung(whole)
    for field in ("top1", "top1_a", "top1_b", "test_loss", "steps", "outcomes"):
        assert again[field] == reference[field], field
    assert again["tse"] is None and reference["tse"] is not None  # the TSE could not be summed
