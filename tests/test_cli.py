"""Every command answers --help with an example; the three entry points are one program; the
parser answers --help, --version and argument errors without importing the heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dvbench
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


def test_the_installed_script_python_m_and_cli_py_are_one_program():
    """``dvbench`` (the console script pip installed beside this Python), ``python -m dvbench``
    and ``python cli.py``: the same version line, the same help, the same exit 2."""
    script = Path(sys.executable).with_name("dvbench")
    assert script.is_file(), f"no console script at {script}: is dvbench installed (pip -e .)?"
    programs = {
        "script": [str(script)],
        "python -m": [sys.executable, "-m", "dvbench"],
        "cli.py": [sys.executable, str(REPO / "cli.py")],
    }
    answers = {}
    for name, program in programs.items():
        version, help_, bad = (
            subprocess.run(program + argv, cwd=REPO, capture_output=True, text=True, timeout=120)
            for argv in (["--version"], ["search", "--help"], ["search", "--n-trials", "0"])
        )
        assert version.returncode == 0 and help_.returncode == 0 and bad.returncode == 2, name
        assert version.stdout.strip() == f"dvbench {dvbench.__version__}", name
        answers[name] = (help_.stdout, bad.stderr.splitlines()[-1])
    assert answers["script"] == answers["python -m"] == answers["cli.py"]


def test_unknown_command_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"dvbench {dvbench.__version__}"


HEAVY = ("torch", "timm", "optuna")


def _imported_by_cli(*argv: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime cli.py ARGV`` in a fresh interpreter: its result and the
    top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "cli.py"), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return done, names


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["frobnicate"], 2),
        (["search", "--help"], 0),
        (["search", "--n-trials", "0"], 2),
        (["report"], 2),
    ],
    ids=["help", "version", "unknown-command", "search-help", "bad-value", "missing-argument"],
)
def test_parsing_imports_no_heavy_library(argv, status):
    done, imported = _imported_by_cli(*argv)
    assert done.returncode == status, done.stderr[-2000:]
    assert "dvbench" in imported  # the import log was read
    assert not imported & set(HEAVY), f"{' '.join(argv)} imported {sorted(imported & set(HEAVY))}"


def test_commands_whose_help_shows_library_values_still_list_them(capsys):
    # train and proxies add their arguments when used (their defaults live in the library)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--amp {auto,bf16,fp16,off}" in out and "--batch-size N" in out
    with pytest.raises(SystemExit):
        main(["proxies", "--help"])
    out = capsys.readouterr().out
    assert "synflow" in out and "--normalize" not in out and "--data SOURCE" in out


def test_default_results_dir_is_outside_the_checkout():
    from dvbench.runtime import default_results_dir

    assert REPO not in default_results_dir().resolve().parents


_NO_TORCH = """
import sys
class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "timm", "torchvision"):
            raise ImportError(f"--help imported {name}")
sys.meta_path.insert(0, Forbid())
sys.argv = ["dvbench", *sys.argv[1:]]
from dvbench.cli import main
main()
"""


@pytest.mark.parametrize(
    "command",
    ["search", "profile", "train", "proxies", "calibrate", "report", "compare", "export", None],
)
def test_every_help_answers_without_importing_torch(command):
    """`--help` of each subcommand with torch, timm and torchvision made unimportable."""
    import subprocess
    import sys

    args = [command, "--help"] if command else ["--help"]
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: dvbench" in done.stdout and "options:" in done.stdout


def test_the_help_test_would_catch_a_torch_import():
    import subprocess
    import sys

    code = _NO_TORCH.replace("from dvbench.cli import main", "import torch")
    done = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True)
    assert done.returncode != 0 and "--help imported torch" in done.stderr


def test_search_help_lists_the_shipped_spaces_with_their_descriptions(capsys):
    from dvbench.runtime import spaces_dir
    from dvbench.safe_yaml import load_file

    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    shipped = sorted(spaces_dir().glob("*.yaml"))
    assert {"small", "medium", "paper", "cifar"} <= {p.stem for p in shipped}
    for path in shipped:
        assert f"{path.stem:<8} {load_file(path)['description']}" in out


def test_every_option_of_every_subcommand_has_help_text():
    import argparse

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = []
    for name, sub in commands.choices.items():
        sub.format_help()  # adds the deferred arguments
        missing += [
            f"{name} {action.option_strings[0]}"
            for action in sub._actions
            if action.option_strings and not action.help
        ]
    assert missing == []


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (["train", "m", "--res", "64"], ["train", "m", "--img-size", "64"]),
        (["train", "m", "--label-smoothing", "0.2"], ["train", "m", "--smoothing", "0.2"]),
        (["train", "m", "--warmup", "0.3"], ["train", "m", "--warmup-fraction", "0.3"]),
        (["profile", "m", "--res", "96"], ["profile", "m", "--img-size", "96"]),
        (["profile", "m", "--warmup", "3"], ["profile", "m", "--warmup-runs", "3"]),
        (["profile", "m", "--out", "t.csv"], ["profile", "m", "--results-file", "t.csv"]),
    ],
)
def test_timm_and_unambiguous_aliases_mean_the_same(ours, theirs):
    """timm's flag names (and the unambiguous --warmup-runs / --warmup-fraction) are aliases."""
    parser = build_parser()
    assert vars(parser.parse_args(ours)) == vars(parser.parse_args(theirs))
