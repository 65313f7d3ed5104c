"""``dvbench profile``: output files, the one table, user errors, OOM rows, memory."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn as nn

from dvbench.cli import main
from dvbench.cli.profile_cmd import _models
from dvbench.profile import COLUMNS, ProfileSettings, profile_models, results_to_frame
from dvbench.profile.display import results_table

REPO = Path(__file__).resolve().parents[2]
REQUIRED = [
    "model", "resolution", "batch_size", "device", "params_m", "gflops", "latency_ms_median",
    "latency_ms_p10", "latency_ms_p90", "throughput_img_s", "peak_mem_mb",
]  # fmt: skip
FAST = ["--warmup", "0", "--min-runs", "2", "--min-time", "0"]
HAVE_DUALVIT = importlib.util.find_spec("dvbench.models.dualvit") is not None
needs_dualvit = pytest.mark.skipif(not HAVE_DUALVIT, reason="dvbench.models.dualvit not there yet")

TINY_CONFIG = """\
base: dualvit_s
embed_dims: [16, 32, 48, 64]
num_heads: [1, 2, 3, 4]
depths: [1, 1, 2, 1]
stem_hidden_dim: 8
img_size: 112
"""


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "dvbench profile dualvit_s" in out


def test_count_only_csv_has_one_row_per_model_and_batch(tmp_path, capsys):
    out = tmp_path / "cost.csv"
    code = main(["profile", "pvt_v2_b0", "swin_t", "--no-latency", "--batch-size", "1,4",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[: len(REQUIRED)]) == REQUIRED
    assert list(frame.columns) == list(COLUMNS)
    assert list(zip(frame.model, frame.batch_size, strict=True)) == [
        ("pvt_v2_b0", 1), ("pvt_v2_b0", 4), ("swin_t", 1), ("swin_t", 4)
    ]  # fmt: skip
    # published numbers (paper-numbers.md): PVTv2-B0 0.57 GFLOPs 3.7 M, Swin-T 4.51 / 28.3
    assert frame.gflops.tolist() == pytest.approx([0.57, 0.57, 4.51, 4.51], rel=0.01)
    assert frame.params_m.tolist() == pytest.approx([3.7, 3.7, 28.3, 28.3], abs=0.05)
    assert frame.latency_ms_median.isna().all() and frame.peak_mem_mb.isna().all()
    assert (frame.status == "ok").all() and (frame.device == "cpu").all()
    assert frame.unsupported_ops.str.contains("aten::add").all()
    printed = capsys.readouterr().out
    assert printed.count("pvt_v2_b0") == 2
    assert printed.count("fvcore MACs per image") == 1  # one table (its title)


def test_latency_rows_and_json_output(tmp_path):
    out = tmp_path / "timing.json"
    code = main(["profile", "test_vit", "--res", "160", "--batch-size", "1,2", "--threads", "1",
                 *FAST, "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = json.loads(out.read_text())
    assert [row["batch_size"] for row in rows] == [1, 2]
    for row in rows:
        assert row["runs"] >= 2 and row["threads"] == 1 and row["mode"] == "inference"
        assert row["latency_ms_p10"] <= row["latency_ms_median"] <= row["latency_ms_p90"]
        expected = row["batch_size"] / (row["latency_ms_median"] / 1e3)
        assert row["throughput_img_s"] == pytest.approx(expected)
        assert row["peak_mem_mb"] is None and row["compile_s"] is None


@needs_dualvit
def test_config_file_train_step(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    out = tmp_path / "train.csv"
    code = main(["profile", str(config), "--res", "112", "--train", "--batch-size", "2",
                 *FAST, "--out", str(out)])  # fmt: skip
    assert code == 0
    (row,) = pd.read_csv(out).to_dict("records")
    assert row["model"] == "tiny" and row["mode"] == "train" and row["runs"] >= 2


@pytest.mark.slow
def test_cpu_memory_in_a_child_process(tmp_path):
    out = tmp_path / "mem.csv"
    code = main(["profile", "test_vit", "--res", "160", "--batch-size", "1,16", "--no-latency",
                 "--memory", "--out", str(out)])  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out)
    assert (frame.mem_method == "cpu-peak-rss-increase").all()
    small, large = frame.peak_mem_mb
    # activations grow with the batch: 16 images need more than one
    assert 0 < small < large


def test_compile_time_is_its_own_column(monkeypatch):
    # The eager backend exercises the plumbing without a C++ toolchain build.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    settings = ProfileSettings(
        resolution=160, compile=True, threads=1, warmup=0, min_runs=2, min_time_s=0
    )
    (result,) = profile_models(["test_vit"], settings)
    assert result.compile_s is not None and result.compile_s > 0
    assert result.measurement.runs >= 2
    assert results_to_frame([result]).compile_s.notna().all()


class RunsOutOfMemory(nn.Module):
    """Raises torch's OOM error for batches larger than ``limit``, as a GPU would."""

    def __init__(self, limit: int = 4):
        super().__init__()
        self.fc = nn.Linear(3, 10)
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.fc(x.mean((2, 3)))


def test_out_of_memory_marks_the_row_and_goes_on():
    settings = ProfileSettings(
        resolution=8, batch_sizes=(1, 64, 2), warmup=0, min_runs=1, min_time_s=0
    )
    results = profile_models([RunsOutOfMemory()], settings)
    frame = results_to_frame(results)
    assert frame.batch_size.tolist() == [1, 64, 2]
    assert frame.status.tolist() == ["ok", "oom", "ok"]
    assert frame.latency_ms_median.isna().tolist() == [False, True, False]
    assert frame.gflops.notna().all()  # the count does not depend on the batch size
    headers = [column.header for column in results_table(results).columns]
    assert "status" in headers


def test_other_errors_in_a_run_still_raise():
    class Broken(RunsOutOfMemory):
        def forward(self, x):
            if x.shape[0] > 1:
                raise RuntimeError("a bug")
            return super().forward(x)

    with pytest.raises(RuntimeError, match="a bug"):
        settings = ProfileSettings(resolution=8, batch_sizes=(1, 2), min_runs=1, min_time_s=0)
        profile_models([Broken()], settings)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_without_cuda(capsys):
    assert main(["profile", "pvt_v2_b0", "--gpu"]) == 2
    line = _error_line(capsys)
    assert "CUDA is not available" in line and "--device cpu" in line and "drop --gpu" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pvt_v2_b9"], "did you mean"),
        (["pvt_v2_b0", "--res", "16"], "cannot take a 16 px input"),
        (["pvt_v2_b0", "--res", "0"], "resolution"),
        (["pvt_v2_b0", "--batch-size", "0"], "batch size"),
        (["pvt_v2_b0", "--batch-size", "1,x"], "batch size"),
        (["pvt_v2_b0", "--batch-size", "1,,8"], "batch size"),
        (["pvt_v2_b0", "--batch-size", "-4"], "batch size"),
        (["pvt_v2_b0", "--threads", "0"], "threads"),
        (["pvt_v2_b0", "--device", "tpu"], "device"),
        ([], "at least one model"),
        (["missing.yaml"], "config file not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["profile", *argv, "--no-latency"]) == 2
    line = _error_line(capsys)
    assert line.startswith("dvbench profile: error:") and message in line


@needs_dualvit
@pytest.mark.parametrize(
    ("text", "message"),
    [("embed_dims: [16, 32]\n", "num_heads"), ("embed_dims: [16, 32\n", "not valid YAML")],
)
def test_malformed_config_file(text, message, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert main(["profile", str(config), "--no-latency"]) == 2
    assert message in _error_line(capsys)


@needs_dualvit
def test_dualvit_too_small_input(capsys):
    assert main(["profile", "dualvit_s", "--res", "16", "--no-latency"]) == 2
    assert "semantic" in _error_line(capsys)


@needs_dualvit
def test_breakdown_table(capsys):
    assert main(["profile", "dualvit_s", "--no-latency", "--breakdown"]) == 0
    out = capsys.readouterr().out
    for name in ("patch_embed1", "block3", "post_network", "head", "cost by module"):
        assert name in out


def test_baselines_add_the_swin_and_pvt_families():
    args = argparse.Namespace(models=["dualvit_s", "swin_t"], baselines=True)
    assert _models(args) == ["dualvit_s", "swin_t", "swin_s", "swin_b"] + [
        f"pvt_v2_b{i}" for i in range(6)
    ]


@pytest.mark.slow
def test_real_process():
    done = subprocess.run(
        [sys.executable, "cli.py", "profile", "pvt_v2_b0", "--no-latency"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pvt_v2_b0" in done.stdout and "GFLOPs" in done.stdout


def test_a_wide_table_fits_80_columns_without_cutting_a_cell():
    """Every column a CPU run fills (latency, percentiles, runs, img/s, status) at 80 columns:
    wrapped where needed, never cut to "…", model names whole."""
    from rich.console import Console

    settings = ProfileSettings(
        resolution=8, batch_sizes=(1, 64, 2), warmup=0, min_runs=1, min_time_s=0
    )
    table = results_table(profile_models([RunsOutOfMemory()], settings))
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "RunsOutOfMemory" in text and "oom" in text


def test_piped_profile_says_what_it_is_timing(capsys):
    """Not on a terminal (the spinner shows nothing there): a plain line per timed batch."""
    assert main(["profile", "pvt_v2_b0", "--res", "32", "--batch-size", "1,2", *FAST]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "profiling pvt_v2_b0: batch 1" in err and "profiling pvt_v2_b0: batch 2" in err
