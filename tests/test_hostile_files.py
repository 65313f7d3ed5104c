"""Every name that becomes a path goes through the one folder-name rule
(:func:`dvbench.names.check_folder_name`), in every command that writes (issue 39)."""

from __future__ import annotations

import pytest
from search_helpers import COST_SPACE, write_space

import dvbench.calibrate
from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.names import check_folder_name, folder_name_problem

HOSTILE = ["../../../x", "../up", "a/b", "/tmp/abs", "..", "line\nbreak", "para\u2029graph"]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("name", HOSTILE)
def test_the_rule_refuses_names_that_leave_their_folder(name):
    assert folder_name_problem(name)
    with pytest.raises(UsageError, match="is not a plain folder name"):
        check_folder_name(name, what="x name", where="x goes to DIR/NAME")


@pytest.mark.parametrize("name", ["small", "costs_digits", "run-1.2", "étude"])
def test_the_rule_keeps_plain_names(name):
    assert folder_name_problem(name) is None


@pytest.fixture
def no_calibration(monkeypatch):
    """``calibrate`` replaced by a recorder: a name that got through would be written there."""
    calls = []

    def fake(space, plan, *, folder, **kwargs):
        calls.append(folder)
        return None

    monkeypatch.setattr(dvbench.calibrate, "calibrate", fake)
    return calls


def _calibrate_argv(space, results) -> list[str]:
    return ["calibrate", "--space", str(space), "--data", "digits", "--candidates", "3",
            "--ladder", "1", "--schedules", "1", "--repeats", "1", "--seeds", "2",
            "--results-dir", str(results), "--quiet"]  # fmt: skip


def _walk(tmp_path, command: str, name: str) -> list[str]:
    """The argv of ``command`` with the hostile ``name`` where it would become a folder."""
    results = tmp_path / "deep" / "results"
    plain = write_space(tmp_path, {**COST_SPACE, "n_trials": 1}, "plain.yaml")
    named = write_space(tmp_path, {**COST_SPACE, "name": name, "n_trials": 1}, "named.yaml")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    return {
        "search --study-name": ["search", "--space", str(plain), "--results-dir", str(results),
                                "--study-name", name],
        "search space name": ["search", "--space", str(named), "--results-dir", str(results)],
        "calibrate --name": [*_calibrate_argv(plain, results), "--name", name],
        "calibrate space name": _calibrate_argv(named, results),
        "report --storage": ["report", name, "--storage", url, "--results-dir", str(results)],
        "export --storage": ["export", name, "--trial", "0", "--storage", url,
                             "--results-dir", str(results)],
    }[command]  # fmt: skip


COMMANDS = [
    "search --study-name",
    "search space name",
    "calibrate --name",
    "calibrate space name",
    "report --storage",
    "export --storage",
]


@pytest.mark.parametrize("name", ["../../../x", "line\nbreak"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_that_writes_refuses_a_name_that_is_not_a_folder_name(
    tmp_path, capsys, no_calibration, command, name
):
    before = {p for p in tmp_path.parent.iterdir()}
    assert main(_walk(tmp_path, command, name)) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is not a plain folder name" in line and repr(name) in line
    assert no_calibration == []  # refused before anything ran
    assert not (tmp_path / "deep").exists()
    assert {p for p in tmp_path.parent.iterdir()} == before  # nothing beside tmp_path either
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_calibrate_with_plain_names_goes_to_its_folder(tmp_path, no_calibration):
    plain = write_space(tmp_path, {**COST_SPACE, "n_trials": 1}, "plain.yaml")
    assert main(_calibrate_argv(plain, tmp_path / "r")) == 0
    assert no_calibration == [tmp_path / "r" / "calibrate" / "costs_digits"]


# ------------------------------------------------------------------------- smaller probes
@pytest.mark.parametrize("command", ["report", "export"])
def test_study_commands_say_where_the_results_folder_comes_from(capsys, command):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: $DVBENCH_RESULTS_DIR, else results" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "dualvit_s", "--epochs", "1e9"],
        ["train", "dualvit_s", "--epochs", "inf"],
        ["compare", "dualvit_s", "--epochs", "1e12"],
        ["calibrate", "--ladder", "1,inf"],
        ["calibrate", "--schedules", "100000"],
    ],
)
def test_epochs_have_an_upper_bound(capsys, argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert "at most 10000 epochs" in _one_line(capsys.readouterr().err)
