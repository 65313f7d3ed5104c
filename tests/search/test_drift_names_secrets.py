"""Studies that survive real life: a changed space is refused or recorded as a version, study
names stay folder names, storage passwords stay secret, Optuna's own tools read the metric
names, and the tables get the user's file mode.

The password test runs the CLI against a real PostgreSQL server (DVBENCH_TEST_PG_URL, set by
``.ci/with-postgres``) and skips without it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from search_helpers import COST_SPACE, REPO, write_space

from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.files import write_atomic
from dvbench.search import SearchOptions, command_line, join_study, space_versions
from dvbench.search._versions import space_changes, space_record
from dvbench.space import load_space

PG_URL = os.environ.get("DVBENCH_TEST_PG_URL")
# Every candidate builds (no 32-grid), so each run adds exactly the trials it is asked for.
SPACE = {**COST_SPACE, "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}}}


def _search(space: Path, results: Path, *extra: str) -> int:
    args = ["search", "--space", str(space), "--results-dir", str(results), "--quiet"]
    return main([*args, *extra])


def _changed(**changes) -> dict:
    return {**SPACE, **changes}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------------------- space drift
def test_changed_space_is_refused_with_the_changed_fields(tmp_path, capsys):
    results = tmp_path / "results"
    path = write_space(tmp_path, SPACE)
    assert _search(path, results, "--n-trials", "2") == 0
    wider = _changed(
        knobs={**SPACE["knobs"], "depth3": {"low": 1, "high": 4}},
        constraints={"max_gflops": 2.0},
    )
    write_space(tmp_path, wider)
    capsys.readouterr()
    assert _search(path, results, "--n-trials", "3") == 2
    line = _one_line(capsys.readouterr().err)
    assert "knobs.depth3" in line and "constraints.max_gflops (added)" in line
    assert "--allow-space-change" in line
    trials = pd.read_csv(results / "costs" / "trials.csv")
    assert len(trials) == 2  # nothing ran under the new space


def test_harmless_edits_are_not_drift(tmp_path):
    results = tmp_path / "results"
    path = write_space(tmp_path, SPACE)
    assert _search(path, results, "--n-trials", "2") == 0
    edited = {**SPACE, "description": "now with a description", "n_trials": 3}
    edited["sampler"] = {"name": "random"}
    edited["seeds"] = {}
    path.write_text("# a comment\n" + yaml.safe_dump(edited, sort_keys=False) + "# more\n")
    assert _search(path, results) == 0
    trials = pd.read_csv(results / "costs" / "trials.csv")
    assert (trials.state == "COMPLETE").sum() == 3
    assert set(trials["space_version"]) == {1}


def test_space_record_names_meaningful_fields_only(tmp_path):
    space = load_space(write_space(tmp_path, SPACE))
    record = space_record(space)
    assert set(record) == {
        "knobs", "fixed", "objectives", "constraints", "train", "profile", "confidence"
    }  # fmt: skip
    other = space_record(space.with_objectives(list(reversed(space.objectives))))
    assert space_changes(record, other) == ["objectives"]
    moved = {**record, "profile": {**record["profile"], "resolution": 96}}
    assert space_changes(record, moved) == ["profile.resolution 64 -> 96"]
    assert space_changes(record, {**record, "train": {"data_dir": "/elsewhere"}}) == []


def test_allow_space_change_records_versions_in_tables_and_report(tmp_path, capsys):
    results = tmp_path / "results"
    path = write_space(tmp_path, SPACE)
    assert _search(path, results, "--n-trials", "2") == 0
    write_space(tmp_path, _changed(constraints={"max_gflops": 2.0}))
    assert _search(path, results, "--n-trials", "4", "--allow-space-change") == 0
    folder = results / "costs"
    trials = pd.read_csv(folder / "trials.csv")
    assert trials["space_version"].tolist() == [1, 1, 2, 2]
    pareto = pd.read_csv(folder / "pareto.csv")
    assert len(pareto) and set(pareto["space_version"]) == {2}  # one regime per front
    assert set(pd.read_parquet(folder / "pareto.parquet")["space_version"]) == {2}

    # the same space again continues version 2 without the flag
    assert _search(path, results, "--n-trials", "5") == 0
    assert pd.read_csv(folder / "trials.csv")["space_version"].tolist() == [1, 1, 2, 2, 2]
    journal = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    study = optuna.load_study(study_name="costs", storage=journal)
    versions = space_versions(study.user_attrs)
    assert [v.number for v in versions] == [1, 2]
    assert versions[1].changed == ("constraints.max_gflops (added)",)
    assert study.user_attrs["dvbench"]["space_version"] == 2
    assert study.user_attrs["dvbench"]["constraints"] == {"max_gflops": 2.0}

    # the report says which trials ran under which version; report takes the folder path
    capsys.readouterr()
    assert main(["report", str(folder), "--no-importance"]) == 0
    text = (folder / "report" / "report.md").read_text()
    assert "## Space versions" in text and "space version 2 only" in text
    assert "| 1 | 2 | (the study's first space) |" in text
    assert "| 2 | 3 | constraints.max_gflops (added) |" in text


def test_workers_joining_at_once_compare_and_a_changed_one_is_refused(tmp_path):
    space = load_space(write_space(tmp_path, SPACE))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    errors: list[BaseException] = []

    def join() -> None:
        try:
            join_study(options)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=join) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    study = join_study(options)
    assert [v.number for v in space_versions(study.user_attrs)] == [1]
    changed = load_space(write_space(tmp_path, _changed(fixed={**SPACE["fixed"], "depth1": 2})))
    with pytest.raises(UsageError, match="fixed.depth1 1 -> 2"):
        join_study(SearchOptions(space=changed, results_dir=tmp_path / "results", quiet=True))


# ------------------------------------------------------------------------------ study names
@pytest.mark.parametrize("name", ["../escaped", "a/b", "/tmp/abs", ".", "..", "tab\there"])
def test_study_names_that_are_not_folder_names_are_refused(tmp_path, capsys, name):
    results = tmp_path / "deep" / "results"
    path = write_space(tmp_path, SPACE)
    assert _search(path, results, "--study-name", name, "--n-trials", "1") == 2
    line = _one_line(capsys.readouterr().err)
    assert "not a plain folder name" in line and repr(name) in line
    assert not (tmp_path / "deep").exists() and not (tmp_path / "escaped").exists()


def test_a_space_name_that_is_not_a_folder_name_is_refused(tmp_path, capsys):
    path = write_space(tmp_path, {**SPACE, "name": "../up"})
    assert _search(path, tmp_path / "results", "--n-trials", "1") == 2
    assert "'../up' is not a plain folder name" in _one_line(capsys.readouterr().err)


def test_report_with_storage_refuses_a_name_it_would_make_a_folder_of(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["report", "../x", "--storage", url, "--results-dir", str(tmp_path)]) == 2
    assert "not a plain folder name" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------- Optuna-native studies
def test_plain_optuna_reads_the_metric_names(tmp_path):
    results = tmp_path / "results"
    assert _search(write_space(tmp_path, SPACE), results, "--n-trials", "1") == 0
    journal = JournalStorage(JournalFileBackend(str(results / "costs" / "journal.log")))
    study = optuna.load_study(study_name="costs", storage=journal)
    assert study.metric_names == ["gflops", "params_m"]
    frame = study.trials_dataframe()
    assert {"values_gflops", "values_params_m"} <= set(frame.columns)


# ------------------------------------------------------------------------------ file modes
@pytest.fixture
def umask():
    def set_umask(mask: int) -> None:
        os.umask(mask)

    saved = os.umask(0o022)
    os.umask(saved)
    yield set_umask
    os.umask(saved)


def test_tables_get_the_users_file_mode(tmp_path, umask):
    umask(0o022)
    results = tmp_path / "results"
    assert _search(write_space(tmp_path, SPACE), results, "--n-trials", "1") == 0
    for name in ("trials.csv", "pareto.csv", "trials.parquet", "pareto.parquet"):
        mode = stat.S_IMODE((results / "costs" / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))
    umask(0o007)
    path = write_atomic(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".t.csv")] == []


# --------------------------------------------------------------------------------- secrets
def test_the_recorded_command_masks_a_storage_password():
    argv = [
        "search",
        "--storage",
        "postgresql+psycopg://me:hunter2@db/x",
        "--storage=mysql://a:b@h/d",
    ]
    line = command_line(argv)
    assert "hunter2" not in line and ":b@" not in line
    assert "postgresql+psycopg://me:***@db/x" in line and "--storage=mysql://a:***@h/d" in line


@pytest.fixture
def pg_role():
    """A login role with a password and a database of its own on the test server."""
    if not PG_URL:
        pytest.skip("DVBENCH_TEST_PG_URL is unset: run under .ci/with-postgres for PostgreSQL")
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_URL)
    suffix = uuid.uuid4().hex[:8]
    role, database, password = f"dv_{suffix}", f"dv_{suffix}", f"Pw-{uuid.uuid4().hex}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        connection.execute(f"CREATE DATABASE {database} OWNER {role}")
    url = admin.set(username=role, password=password, database=database)
    own_dsn = admin.set(drivername="postgresql", database=database)
    yield (
        url.render_as_string(hide_password=False),
        password,
        own_dsn.render_as_string(hide_password=False),
    )
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        connection.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.slow
def test_a_storage_password_is_never_printed_stored_or_written(tmp_path, pg_role):
    import psycopg

    url, password, database_dsn = pg_role
    results = tmp_path / "results"
    space = write_space(tmp_path, SPACE)
    cli = [sys.executable, str(REPO / "cli.py")]
    common = ["--results-dir", str(results), "--storage", url]
    runs = [
        [*cli, "search", "--space", str(space), "--study-name", "secret", "--n-trials", "3"]
        + ["--workers", "2", *common],
        [*cli, "report", "secret", "--no-importance", *common],
        [*cli, "export", "secret", "--trial", "0", *common],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for command in runs:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        assert password not in done.stdout + done.stderr
    files = [p for p in results.rglob("*") if p.is_file()]
    assert {"trials.csv", "report.md", "trial_0.yaml", "worker-1.log"} <= {p.name for p in files}
    for path in files:
        assert password.encode() not in path.read_bytes(), path
    report = (results / "secret" / "report" / "report.md").read_text()
    assert "--storage 'postgresql+psycopg://" in report and ":***@127.0.0.1" in report

    with psycopg.connect(database_dsn) as connection:
        for table in (
            "study_user_attributes",
            "study_system_attributes",
            "trial_user_attributes",
            "trial_system_attributes",
        ):
            rows = connection.execute(f"SELECT value_json FROM {table}").fetchall()
            assert rows or table != "study_user_attributes"
            assert not [row for row in rows if password in row[0]], table
        command = connection.execute(
            "SELECT value_json FROM study_user_attributes WHERE key = 'dvbench'"
        ).fetchone()[0]
        assert ":***@127.0.0.1" in command


def test_front_and_baselines_of_another_version_are_kept_apart():
    study = optuna.create_study(directions=["minimize", "maximize"])
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    # version 1 holds the best point; the front must not show it once version 2 has trials
    for number, (gflops, params, version) in enumerate(
        [(0.1, 9.0, 1), (0.5, 1.0, 2), (0.9, 2.0, 2), (0.6, 0.5, 2)]
    ):
        attrs = {"metrics": {"gflops": gflops, "params_m": params}, "space_version": version}
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": number}, distributions=dist, values=[gflops, params], user_attrs=attrs
            )
        )
    old_baseline = {"name": "old", "state": "COMPLETE", "metrics": {"gflops": 1, "params_m": 0.1}}
    study.set_user_attr("baseline:old", {**old_baseline, "space_version": 1})
    study.set_user_attr("baseline:new", {**old_baseline, "name": "new", "space_version": 2})
    study.set_user_attr(
        "dvbench",
        {
            "objectives": [
                {"metric": "gflops", "direction": "minimize"},
                {"metric": "params_m", "direction": "maximize"},
            ],
            "space_version": 2,
        },
    )
    study.set_user_attr("space_version:1", {"version": 1, "record": {}, "changed": []})
    study.set_user_attr(
        "space_version:2", {"version": 2, "record": {}, "changed": ["knobs.x (added)"]}
    )
    from dvbench.report import load_report_data, render_report
    from dvbench.search.tables import Criteria, dominance, pareto_frame, trials_frame

    frame = trials_frame(study)
    criteria = Criteria(("gflops", "params_m"), ("minimize", "maximize"))
    front = pareto_frame(frame, criteria)
    assert front["number"].tolist() == [1, 2]
    assert dominance(frame, criteria) == {"new": ["trial_1", "trial_2", "trial_3"]}
    text = render_report(load_report_data(study))
    assert "front holds the 3 trials of space version 2 only" in text
    assert "| baseline |  | old (space version 1) |" in text
    assert "**old**: not compared, it was measured under space version 1" in text
    assert "| 2 | 3 | knobs.x (added) |" in text
