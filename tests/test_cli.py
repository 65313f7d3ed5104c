"""Every command answers --help with an example; the three entry points are one program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dvbench.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("profile", "train", "proxies", "calibrate", "search", "report", "compare", "export")


def test_every_command_is_registered():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) == set(subparsers.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    epilog = out[out.index("example") :] if "example" in out else ""
    assert f" {command} " in epilog, f"{command} --help shows no example of itself"


def test_python_m_and_cli_py_agree():
    for argv in (
        [sys.executable, "-m", "dvbench", "--help"],
        [sys.executable, str(REPO / "cli.py"), "--help"],
    ):
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "search" in done.stdout


def test_unknown_command_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
