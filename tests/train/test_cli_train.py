"""``dvbench train``: help, one-line usage errors (exit 2), and runs that write results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvbench.cli import main

# a Dual-ViT of about 0.2 M parameters, given as config-field overrides
MICRO_ARGS = [
    "dualvit_s",
    "--set",
    "embed_dims=16,32,48,64",
    "--set",
    "num_heads=1,2,3,4",
    "--set",
    "depths=1,1,1,1",
    "--set",
    "mlp_ratios=2,2,2,2",
    "--set",
    "stem_hidden_dim=8",
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 4)):
        for index, name in enumerate(("a", "b")):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 60, (16, 16, 3)) + 150 * index
                Image.fromarray(pixels.astype(np.uint8)).save(
                    tmp_path / "data" / split / name / f"{i}.png"
                )
    return tmp_path / "data"


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "dvbench train dualvit_s" in out and "--width-mult" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_model"], "unknown model 'no_such_model'"),
        (["dualvit_s", "--data", "{tmp}/missing"], "nor an existing folder"),
        (["dualvit_s", "--data", "{tmp}"], "no class subfolders"),
        (["dualvit_s", "--data", "nonsense"], "not a built-in data set"),
        (["dualvit_s", "--data", "cifar10", "--data-dir", "{tmp}"], "pass --download"),
        (["dualvit_s", "--out", "{tmp}/result.txt"], ".json or .csv"),
        (["dualvit_s", "--set", "depths"], "expected KEY=VALUE"),
        (["dualvit_s", "--set", "embed_dims=33,64,128,160"], "not divisible"),
        (["pvt_v2_b0", "--width-mult", "0.5"], "Dual-ViT models only"),
        (["dualvit_s", "--epochs", "0"], "must be a positive number"),
        (["dualvit_s", "--val-fraction", "1"], "between 0 and 1"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
):
    args = [a.format(tmp=tmp_path) for a in args]
    try:
        status = main(["train", *args, "--quiet", "--steps", "1"])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_train_writes_json(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out" / "micro.json"
    status = main(
        [
            "train",
            *MICRO_ARGS,
            "--data",
            str(folder),
            "--res",
            "32",
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    result = json.loads(out.read_text())
    assert result["status"] == "ok" and result["steps"] == 3
    assert (result["num_train"], result["num_test"], result["num_classes"]) == (24, 8, 2)
    assert result["model_config"]["embed_dims"] == [16, 32, 48, 64]
    printed = capsys.readouterr().out
    assert "top-1" in printed and "images/s" in printed and "wrote" in printed
    # the accuracy comes with its test-set standard error: sqrt(p (1 - p) / 8 images)
    from dvbench.metrics import accuracy_standard_error, format_with_error

    se = accuracy_standard_error(result["top1"], 8)
    assert f"{format_with_error(result['top1'], se)} %  (SE over 8 test images" in printed


def test_train_appends_csv_rows(tmp_path: Path):
    out = tmp_path / "runs.csv"
    args = [
        "train",
        *MICRO_ARGS,
        "--data",
        "digits",
        "--train-samples",
        "8",
        "--test-samples",
        "4",
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert main([*args, "--seed", "1"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [row["seed"] for row in rows] == ["0", "1"]
    assert rows[0]["data"] == "digits" and rows[0]["num_train"] == "80"


def test_failed_run_exits_1_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "failed.json"
    status = main(
        [
            "train",
            *MICRO_ARGS,
            "--train-samples",
            "8",
            "--test-samples",
            "2",
            "--steps",
            "20",
            "--batch-size",
            "16",
            "--lr",
            "1e30",
            "--clip-grad",
            "0",
            "--warmup",
            "0",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert status == 1
    assert json.loads(out.read_text())["reason"].startswith("non-finite loss")
    assert "failed: non-finite loss" in capsys.readouterr().out


@pytest.mark.slow
def test_same_seed_same_accuracy_in_separate_processes(tmp_path: Path):
    """Two processes, the same seed, data, config and thread count: the same run, to the bit
    (accuracy and losses); another seed trains another network."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    results = []
    for run, seed in enumerate(("0", "0", "1")):
        out = tmp_path / f"run{run}.json"
        argv = [sys.executable, str(repo / "cli.py"), "train", *MICRO_ARGS, "--data", "digits"]
        argv += ["--res", "32", "--steps", "6", "--batch-size", "32", "--train-samples", "20"]
        argv += ["--threads", "2", "--seed", seed, "--quiet", "--out", str(out)]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(out.read_text()))
    keys = ("top1", "top5", "final_loss", "test_loss")
    first, again, other = ([r[k] for k in keys] for r in results)
    assert first == again
    assert first[2] != other[2]  # the seed matters: another training loss
