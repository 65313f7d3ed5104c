"""``dvbench proxies``: help with an example, a table for two tiny models, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import dvbench.cli
from dvbench.cli import main
from dvbench.models import DualViTConfig
from dvbench.runtime import num_threads


@pytest.fixture(autouse=True)
def proxies_registered(monkeypatch: pytest.MonkeyPatch):
    """The command, whether or not ``dvbench.cli`` lists it yet."""
    if "proxies" not in dvbench.cli._COMMANDS:
        monkeypatch.setattr(dvbench.cli, "_COMMANDS", (*dvbench.cli._COMMANDS, "proxies"))
    with num_threads(1):
        yield


@pytest.fixture
def tiny_configs(tmp_path: Path) -> list[str]:
    base = DualViTConfig(
        embed_dims=(16, 32, 64, 80),
        num_heads=(1, 2, 4, 5),
        depths=(1, 1, 1, 1),
        mlp_ratios=(4, 4, 4, 4),
        stem_hidden_dim=8,
        semantic_pool="grid",
        semantic_grid=2,
        num_classes=10,
        img_size=32,
    )
    wider = base.replace(embed_dims=(32, 64, 128, 160))
    return [str(base.save(tmp_path / "tiny_a.yaml")), str(wider.save(tmp_path / "tiny_b.yaml"))]


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main(["proxies", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "dvbench proxies " in out and "Mellor et al." in out


def test_two_models_make_a_table_and_a_file(
    tiny_configs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out_file = tmp_path / "scores.csv"
    argv = ["proxies", *tiny_configs, "--data", "digits", "--res", "32"]
    argv += ["--proxies", "synflow,naswot,params_m", "--batch-size", "16", "--out", str(out_file)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "tiny_a" in captured.out and "tiny_b" in captured.out and "NASWOT" in captured.out
    assert "wrote" in captured.err
    table = pd.read_csv(out_file)
    assert list(table["model"]) == ["tiny_a", "tiny_b"]
    assert table["naswot"].notna().all() and (table["batch_size"] == 16).all()
    assert table.loc[1, "params_m"] > table.loc[0, "params_m"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxies", "synflow,nope"], "proxies: unknown 'nope'"),
        (["--proxies", "zico", "--num-batches", "1"], "num_batches: zico needs at least 2"),
        (["--out", "scores.txt"], "must end in .csv, .json or .parquet"),
    ],
)
def test_usage_errors_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["proxies", "pvt_v2_b0", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("dvbench proxies: error:")
