"""The report's *What the knobs do at equal cost* section and ``effects.csv``: read from a
study's tables (candidates clustered over their seeds, baselines as families), drawn as a table
and sentences, written beside ``report.md`` by ``write_report``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dvbench.report import ReportData, write_report
from dvbench.report.effects import (
    EFFECTS_FILE,
    effects_section,
    get_effects_info,
    write_effects_table,
)
from dvbench.search import SPACE_VERSION, Criteria
from dvbench.stats.effects import EFFECT_COLUMNS

HEADING = "## What the knobs do at equal cost"


def study_data(
    *, candidates: int = 24, effect_a: float = 1.5, objectives=("top1", "gflops"), seed: int = 0
) -> ReportData:
    """A finished study's tables: top-1 rises 1.5 points per doubling of GFLOPs, knob ``a``
    adds ``effect_a`` at equal cost, ``b`` nothing; every candidate has 2 seeds but the first
    (3); one baseline, ``pvt_v2_b0``, compared."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(candidates):
        a, b, width = number % 2, int(rng.integers(0, 2)), int(rng.choice([16, 32, 64]))
        gflops = 1e-4 * width**2 * (1 + 0.3 * b) * (1 + 0.1 * (number % 3))
        top1 = 50 + 1.5 * math.log2(gflops) + effect_a * a + rng.normal(0, 0.2)
        rows.append({
            "number": number, "state": "COMPLETE", "baseline": False, "name": f"trial_{number}",
            "feasible": True, SPACE_VERSION: 1, "top1": top1, "top1_seeds": 3 if number == 0
            else 2, "test_loss": 2 - top1 / 50, "gflops": gflops, "params_m": gflops * 50,
            "knob.a": a, "knob.b": b, "knob.width": width,
        })  # fmt: skip
    rows.append({"number": None, "state": "COMPLETE", "baseline": True, "name": "pvt_v2_b0",
                 "feasible": True, SPACE_VERSION: 1, "top1": 40.0, "top1_seeds": 1,
                 "test_loss": 1.2, "gflops": 0.05, "params_m": 3.4})  # fmt: skip
    trials = pd.DataFrame(rows)
    criteria = Criteria(
        tuple(objectives),
        tuple("maximize" if m == "top1" else "minimize" for m in objectives),
        0.95,
    )
    return ReportData(
        study_name="planted",
        settings={},
        trials=trials,
        front=trials.iloc[0:0],
        criteria=criteria,
        hypervolume=None,
        history=pd.DataFrame(columns=["number", "hypervolume"]),
        dominance={"pvt_v2_b0": []},
    )


def test_info_clusters_candidates_over_their_seeds_and_finds_the_planted_knob():
    effects = get_effects_info(study_data())
    assert (effects.objective, effects.direction, effects.cost) == ("top1", "maximize", "gflops")
    assert effects.n_candidates == 25 and effects.n_runs == 24 * 2 + 1 + 1
    rows = effects.frame().set_index(["knob", "level"])
    assert rows.loc[("a", "1"), "verdict"] == "better"
    assert rows.loc[("a", "1"), "ci_low"] <= 1.5 <= rows.loc[("a", "1"), "ci_high"]
    assert rows.loc[("b", "1"), "verdict"] == "not distinguished"
    assert rows.loc[("width", "per doubling"), "n_candidates"] == 24  # the baseline has no knobs
    # one baseline is one network, not a family: left out of the family fit, and said so
    assert "family" not in rows.index.get_level_values("knob")
    assert any("family = pvt_v2_b0: one candidate only" in note for note in effects.notes)


def test_section_tables_every_term_and_words_only_what_the_interval_resolves():
    effects = get_effects_info(study_data())
    lines = effects_section(effects)
    text = "\n".join(lines)
    assert lines[0] == HEADING
    assert "| knob | level | vs | effect (points) | 95% interval | p | verdict |" in text
    told = [line for line in lines if line.startswith("- **")]
    assert len(told) == 1 and told[0].startswith("- **a 1 rather than 0**: +1.")
    assert told[0].endswith("of top-1 accuracy at equal GFLOPs (better).")
    assert "- Not distinguished at 95%: b, width." in lines
    assert "Cost: top-1 accuracy changes by +" in text and "per doubling of GFLOPs" in text
    assert "ranks knobs by how much they move each objective, their effect on cost included" in text
    row = effects.frame().set_index(["knob", "level"]).loc[("a", "1")]
    decimals = max(0, 1 - math.floor(math.log10(row["se"])))
    assert f"[{row['ci_low']:+.{decimals}f}, {row['ci_high']:+.{decimals}f}]" in told[0]


def test_a_minimised_accuracy_objective_reads_its_direction():
    effects = get_effects_info(study_data(objectives=("test_loss", "gflops")))
    a = effects.frame().set_index(["knob", "level"]).loc[("a", "1")]
    assert a["effect"] < 0 and a["verdict"] == "better"


def test_too_few_candidates_say_so_instead_of_a_table(tmp_path):
    effects = get_effects_info(study_data(candidates=4))
    lines = effects_section(effects)
    assert lines[0] == HEADING
    reason = "5 candidates with a finite top1 and gflops; at least 10 are needed"
    assert lines[2] == f"Not computed: {reason}."
    assert not any(line.startswith("|") for line in lines)
    assert write_effects_table(effects, tmp_path) is None and not (tmp_path / EFFECTS_FILE).exists()


def test_a_study_without_accuracy_and_cost_objectives_has_no_section():
    assert get_effects_info(study_data(objectives=("gflops", "params_m"))) is None
    assert effects_section(None) == []


def test_effects_csv_holds_every_term(tmp_path):
    effects = get_effects_info(study_data())
    path = write_effects_table(effects, tmp_path)
    table = pd.read_csv(path, keep_default_na=False)
    assert path.name == EFFECTS_FILE and list(table.columns) == list(EFFECT_COLUMNS)
    assert table["knob"].tolist() == ["gflops", "a", "b", "width"]
    assert table["model"].tolist() == ["cost", "joint", "joint", "joint"]
    assert float(table["r2_adj_cost"][0]) == pytest.approx(effects.r2_adj_cost)


@pytest.mark.slow
def test_write_report_writes_the_section_and_effects_csv(tmp_path):
    from test_report import make_study

    study = make_study(tmp_path / "study", n_trials=14, seed=1, name="effects")
    files = write_report(study, tmp_path / "report", importance=False)
    page = files.markdown.read_text()
    assert page.index("## Parameter importance") < page.index(HEADING) < page.index("## Settings")
    table = pd.read_csv(tmp_path / "report" / EFFECTS_FILE, keep_default_na=False)
    assert list(table.columns) == list(EFFECT_COLUMNS)
    assert int(table["n_candidates"].max()) == 12  # 14 trials: one over budget, one failed
    for row in table[table["model"] != "cost"].to_dict("records"):
        assert f"| {row['knob']} | {row['level']} | {row['reference']} |" in page
