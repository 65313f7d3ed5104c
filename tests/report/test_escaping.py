"""Names escaped per output (issue 39): markdown cells and sentences HTML-escaped, the YAML
export written by the YAML library (a newline in a name cannot add keys), strict JSON, and
the trials a front leaves off for non-finite objectives named."""

from __future__ import annotations

import json
import math

import optuna
import pandas as pd
import pytest
import yaml
from search_helpers import COST_SPACE, write_space

from dvbench.models import load_config
from dvbench.report import export_trial
from dvbench.report.escape import markdown_cell, markdown_text
from dvbench.report.left_off import get_left_off_info, left_off_text
from dvbench.search import SearchOptions, run_search
from dvbench.search.record import METRICS_ATTR, SEED_NAME, STUDY_ATTR
from dvbench.space import load_space

HOSTILE = "x\nnum_classes: 1000\n<script>alert(1)</script> | \u2028top: 1\r\x85"


def test_a_markdown_cell_is_text_on_one_line():
    cell = markdown_cell(HOSTILE)
    assert "<" not in cell and ">" not in cell and "&lt;script&gt;" in cell
    assert not any(c in cell for c in "\n\r\x85\u2028")
    assert "\\|" in cell and cell.count("|") == cell.count("\\|")
    assert markdown_text("a\\|b") == "a&#92;|b"  # a backslash cannot undo the escaping
    assert markdown_cell(1.5) == "1.5"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("escape")
    space = load_space(write_space(folder, {**COST_SPACE, "seeds": {}, "n_trials": 2}))
    run_search(SearchOptions(space=space, results_dir=folder / "r", quiet=True))
    return optuna.load_study(
        study_name="costs",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(folder / "r" / "costs" / "journal.log"))
        ),
    )


def _complete(study) -> optuna.trial.FrozenTrial:
    return next(t for t in study.trials if t.state.name == "COMPLETE")


def _copy_with(study, trial, *, user_attrs=None, settings=None) -> optuna.Study:
    """An in-memory copy of ``study`` holding ``trial`` with some attributes replaced (a
    finished trial cannot be edited in place): what a hostile storage could hold."""
    copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    for key, value in study.user_attrs.items():
        copy.set_user_attr(key, value)
    if settings is not None:
        copy.set_user_attr(STUDY_ATTR, {**study.user_attrs[STUDY_ATTR], **settings})
    copy.add_trial(
        optuna.trial.create_trial(
            params=trial.params,
            distributions=trial.distributions,
            values=trial.values,
            user_attrs={**trial.user_attrs, **(user_attrs or {})},
            system_attrs=trial.system_attrs,
        )
    )
    return copy


def test_a_name_with_a_newline_cannot_break_out_of_the_yaml_comment(study, tmp_path):
    study = _copy_with(
        study,
        _complete(study),
        user_attrs={SEED_NAME: HOSTILE},
        settings={"command": "python cli.py search\nnum_classes: 1000"},
    )
    path = export_trial(study, 0, tmp_path / "t.yaml")
    loaded = yaml.safe_load(path.read_text())
    assert loaded["num_classes"] == 10 and "top" not in loaded  # no key injected
    assert load_config(path).num_classes == 10
    assert all(line.startswith("#") for line in path.read_text().splitlines()[:5])


def test_non_finite_metrics_are_null_in_the_export(study, tmp_path):
    trial = _complete(study)
    metrics = {**trial.user_attrs[METRICS_ATTR], "top1": math.nan, "latency_ms_median": math.inf}
    study = _copy_with(study, trial, user_attrs={METRICS_ATTR: metrics})

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    data = json.loads(export_trial(study, 0, tmp_path / "t.json").read_text(),
                      parse_constant=refuse)  # fmt: skip
    assert data["source"]["metrics"]["top1"] is None
    text = export_trial(study, 0, tmp_path / "t.yaml").read_text()
    assert "top1: null" in text and "% top-1" not in text  # never a blank number


def _frame(values):
    return pd.DataFrame({
        "number": range(len(values)), "state": "COMPLETE", "baseline": False,
        "feasible": True, "space_version": 1,
        "gflops": [v[0] for v in values], "top1": [v[1] for v in values],
    })  # fmt: skip


def test_the_report_names_trials_left_off_the_front_and_why():
    frame = _frame([(1.0, 50.0), (2.0, math.nan), (0.5, 40.0), (math.inf, 60.0)])
    rows = get_left_off_info(frame, ["top1", "gflops"])
    assert [(r.number, r.metric) for r in rows] == [(1, "top1"), (3, "gflops")]
    text = left_off_text(rows)
    assert text.startswith("2 completed trials left off the front")
    assert "trial 1: top1 is missing or NaN" in text and "trial 3: gflops is inf" in text
    assert left_off_text(get_left_off_info(_frame([(1.0, 50.0)]), ["top1", "gflops"])) == ""
