"""Nothing in a results folder or a space file can run code, hang a worker or lose a candidate:
each probe of the hardening issue, on the search, report, export and calibration side (the
checkpoint probes live with the training loop's tests)."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import uuid
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from search_helpers import COST_SPACE, write_space

from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.search import SearchOptions, join_study
from dvbench.search.tables import Criteria, export_tables
from dvbench.space import load_space

PG_URL = os.environ.get("DVBENCH_TEST_PG_URL")
SPACE = {**COST_SPACE, "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}}}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _search(space: Path, results: Path, *extra: str) -> int:
    return main(["search", "--space", str(space), "--results-dir", str(results), "--quiet", *extra])


# ------------------------------------------------------------------------------- space files
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"knobs": {**SPACE["knobs"], "depth3": {"low": 1, "high": 1e9}}}, "outside 1..64"),
        ({"knobs": {**SPACE["knobs"], "width": {"choices": [-8, 16]}}}, "outside 1..4096"),
        ({"constraints": {"max_gflops": float("inf")}}, "constraints.max_gflops"),
        ({"profile": {"res": 100_000}}, "profile.resolution: 100000 is above 4096"),
        ({"fixed": {**SPACE["fixed"], "depth1": float("nan")}}, "fixed.depth1: must be a finite"),
        ({"n_trials": 10**9}, "n_trials: an integer from 1 to 100000"),
        ({"reference_point": {"gflops": float("inf")}}, "reference_point.gflops"),
    ],
)
def test_space_numbers_are_bounded(tmp_path, capsys, change, message):
    path = write_space(tmp_path, {**SPACE, **change})
    assert _search(path, tmp_path / "results") == 2
    assert message in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"epochs": float("inf")}, "train.epochs: must be a finite number"),
        ({"epochs": float("nan")}, "train.epochs: must be a finite number"),
        ({"epochs": 1, "batch_size": 10**9}, "train.batch_size"),
    ],
)
def test_training_budgets_are_finite(tmp_path, capsys, train, message):
    space = {**SPACE, "objectives": ["top1", "gflops"],
             "train": {"data": "digits", "res": 16, **train}}  # fmt: skip
    assert _search(write_space(tmp_path, space), tmp_path / "results") == 2
    assert message in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("rungs", [[1, float("inf")], [float("nan"), 2]])
def test_rungs_are_finite(tmp_path, capsys, rungs):
    space = {**SPACE, "objectives": ["top1", "gflops"], "fidelity": {"rungs": rungs},
             "train": {"data": "digits", "res": 16, "epochs": 1}}  # fmt: skip
    assert _search(write_space(tmp_path, space), tmp_path / "results") == 2
    assert "fidelity.rungs: positive finite numbers" in _one_line(capsys.readouterr().err)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump({**SPACE})[:-1] + "\n" + "\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 2048  # 1 KB that would expand to 10^9 items
    assert _search(path, tmp_path / "results") == 2
    assert "aliases (*name) are not allowed" in _one_line(capsys.readouterr().err)


def test_a_binary_space_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_bytes(b"name: x\n\xff\xfe\x00\x01 knobs")
    assert _search(path, tmp_path / "results") == 2
    assert "not UTF-8 text" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo", "huge"])
def test_a_space_file_that_never_ends_is_refused_at_once(tmp_path, capsys, target):
    """A space that is a link to a device, a pipe nobody writes to, or a file over the cap
    is refused before reading it (or after reading at most the cap): one line, exit 2."""
    import time

    path = tmp_path / "space.yaml"
    if target == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer for ever
    elif target == "huge":
        path.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    else:
        path.symlink_to(target)
    started = time.monotonic()
    assert _search(path, tmp_path / "results") == 2
    assert time.monotonic() - started < 1.0
    line = _one_line(capsys.readouterr().err)
    assert ("not a regular file" in line) if target != "huge" else ("larger than" in line)


def test_a_study_whose_trials_all_fail_alike_exits_non_zero_with_the_reason(tmp_path, capsys):
    # every sampled network is impossible: a 32-grid on a 16x16 stage-1 map
    space = {**SPACE, "knobs": {**SPACE["knobs"], "semantic_grid": {"choices": [32]}},
             "seeds": {}, "n_trials": 3}  # fmt: skip
    assert _search(write_space(tmp_path, space), tmp_path / "results") == 1
    out = capsys.readouterr()
    assert "25 trials failed in a row; the last: invalid config: semantic_grid" in out.out + out.err


# ------------------------------------------------------------------------------- study names
@pytest.mark.parametrize("name", ["", " ", "x" * 300, " padded"])
def test_blank_and_overlong_study_names_are_refused(tmp_path, capsys, name):
    assert _search(write_space(tmp_path, SPACE), tmp_path / "results", "--study-name", name) == 2
    assert "is not a plain folder name" in _one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------- the results folder
def _finished_study(tmp_path: Path) -> Path:
    assert _search(write_space(tmp_path, SPACE), tmp_path / "results", "--n-trials", "2") == 0
    return tmp_path / "results" / "costs"


def test_report_and_export_never_write_through_a_link(tmp_path):
    folder = _finished_study(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (folder / "report").mkdir()
    for name in ("report/report.md", "report/params_vs_gflops.png", "trial_0.yaml"):
        (folder / name).symlink_to(outside)
    assert main(["report", "costs", "--results-dir", str(tmp_path / "results")]) == 0
    assert main(["export", "costs", "--trial", "0", "--results-dir",
                 str(tmp_path / "results")]) == 0  # fmt: skip
    assert outside.read_text() == "precious"
    for name in ("report/report.md", "report/params_vs_gflops.png", "trial_0.yaml"):
        assert not (folder / name).is_symlink() and (folder / name).stat().st_size > 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_folder_is_one_line(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert _search(write_space(tmp_path, SPACE), results) == 2
        assert "read-only" in _one_line(capsys.readouterr().err)
    finally:
        results.chmod(stat.S_IRWXU)


def test_a_read_only_folder_is_refused_even_for_root(tmp_path, monkeypatch):
    """The check asks the system (os.access), which root passes; pin the message by faking it."""
    from dvbench import files

    monkeypatch.setattr(files.os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match="read-only; give a folder you can write to"):
        files.ensure_folder(tmp_path / "any")


def test_a_results_path_that_is_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    assert _search(write_space(tmp_path, SPACE), blocker) == 2
    assert "a file is in the way" in _one_line(capsys.readouterr().err)


def test_an_interrupted_report_keeps_the_old_plot(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    folder = _finished_study(tmp_path)
    assert main(["report", "costs", "--results-dir", str(tmp_path / "results")]) == 0
    plot = folder / "report" / "params_vs_gflops.png"
    before = plot.read_bytes()

    def interrupted(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")  # part of the new image, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    assert main(["report", "costs", "--results-dir", str(tmp_path / "results")]) == 130
    assert plot.read_bytes() == before
    assert not [p for p in plot.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_an_empty_study_writes_tables_with_headers(tmp_path):
    options = SearchOptions(space=load_space(write_space(tmp_path, SPACE)),
                            results_dir=tmp_path / "results")  # fmt: skip
    study = join_study(options)
    export_tables(study, options.study_dir, Criteria.of_space(options.space))
    for name in ("trials.csv", "pareto.csv"):
        table = pd.read_csv(options.study_dir / name)
        assert table.empty and {"number", "state", "gflops"} <= set(table.columns)


def test_a_torn_first_line_of_a_calibration_record_is_measured_again(tmp_path):
    from dvbench.calibrate import CalibrationPlan, calibrate, read_records
    from dvbench.train import DataSpec, TrainSettings

    space = load_space("small")
    plan = CalibrationPlan(candidates=3, ladder=(0.2,), schedules=(), proxies=("params_m",),
                           repeats=0, holdout=False)  # fmt: skip
    data = DataSpec("digits", resolution=16, train_samples=4, test_samples=2)
    (tmp_path / "records.jsonl").write_text('{"unit": "plan", "cand')  # a crash mid-line
    result = calibrate(space, plan, data=data, train=TrainSettings(batch_size=8), folder=tmp_path)
    assert result.summary["measured"] == 3
    assert read_records(tmp_path)[0]["unit"] == "plan"


# ---------------------------------------------------------------- space changes, versions
def test_an_edited_choices_list_continues_as_a_new_version(tmp_path):
    path = write_space(tmp_path, SPACE)
    results = tmp_path / "results"
    assert _search(path, results, "--n-trials", "2") == 0
    edited = {**SPACE, "knobs": {**SPACE["knobs"], "width": {"choices": [8, 12, 16]}}}
    write_space(tmp_path, edited)
    assert _search(path, results, "--n-trials", "4", "--allow-space-change") == 0
    trials = pd.read_csv(results / "costs" / "trials.csv")
    assert sorted(trials["space_version"]) == [1, 1, 2, 2]
    assert trials["knob.width"].notna().all()  # one column, whatever the version
    # a third edit continues too
    write_space(tmp_path, {**edited, "knobs": {**edited["knobs"], "depth3": {"low": 1, "high": 2}}})
    assert _search(path, results, "--n-trials", "5", "--allow-space-change") == 0


def _join_changed(args: tuple) -> int:
    """A worker: wait at the barrier, then join ``study`` with its own changed space."""
    space_path, results, study, storage, barrier = args
    options = SearchOptions(
        space=load_space(space_path), results_dir=Path(results), study_name=study,
        storage=storage, allow_space_change=True, quiet=True,
    )  # fmt: skip
    barrier.wait()
    from dvbench.evaluate import Evaluator
    from dvbench.search._trial import TrialRunner

    return TrialRunner(options, Evaluator.for_space(options.space)).space_version(
        join_study(options)
    )


@pytest.mark.slow
def test_recording_a_space_version_is_race_free(tmp_path, storage_url):
    """Three workers, each with its own changed space, join one study at the same moment
    (a barrier), round after round: every changed space gets a version of its own."""
    workers, rounds = 3, 8
    spaces = [
        str(write_space(tmp_path, {**SPACE, "constraints": {"max_gflops": 1.0 + i}}, f"s{i}.yaml"))
        for i in range(workers)
    ]
    base = write_space(tmp_path, SPACE, "base.yaml")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(workers) as pool:
        for _ in range(rounds):
            name = f"race_{uuid.uuid4().hex[:10]}"
            join_study(SearchOptions(space=load_space(base), results_dir=tmp_path / "r",
                                     study_name=name, storage=storage_url))  # fmt: skip
            barrier = manager.Barrier(workers)
            jobs = [(s, str(tmp_path / "r"), name, storage_url, barrier) for s in spaces]
            versions = pool.map(_join_changed, jobs)
            assert sorted(versions) == [2, 3, 4], versions
            if storage_url:
                optuna.delete_study(study_name=name, storage=storage_url)


def test_calibration_records_are_plain_json(tmp_path):
    """A planted record cannot run code: records are JSON lines, read with json.loads."""
    from dvbench.calibrate import read_records

    (tmp_path / "records.jsonl").write_text(
        json.dumps({"unit": "plan"}) + "\n" + "!!python/object/apply:os.system ['touch x']\n"
    )
    assert read_records(tmp_path) == [{"unit": "plan"}]
    assert not (tmp_path / "x").exists()
