"""``dvbench.stats.effects``: knob effects at equal cost on scripted studies with planted
effects, the run/mean equivalence, the covariances against statsmodels and a published formula,
and what the fit does with aliased, lonely and missing terms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import t as student_t

from dvbench.stats.effects import (
    EFFECT_COLUMNS,
    MIN_CANDIDATES,
    NOT_DISTINGUISHED,
    knob_effects,
)

KNOBS = ["a", "b", "width", "depth"]


def scripted_study(
    *,
    candidates: int = 24,
    seeds: int = 2,
    candidate_sd: float = 0.25,
    seed_sd: float = 0.5,
    effect_a: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Runs of a study whose truth is known: top-1 rises 1.5 points per doubling of GFLOPs;
    at equal cost knob ``a`` (1 vs 0, free) adds ``effect_a`` and ``b`` (1 vs 0, costs 30 %)
    nothing; ``width`` (16/32/64) and ``depth`` (1..4) only set the cost."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(candidates):
        knobs = {
            "a": c % 2,  # balanced, independent of the others
            "b": int(rng.integers(0, 2)),
            "width": int(rng.choice([16, 32, 64])),
            "depth": int(rng.integers(1, 5)),
        }
        gflops = 1e-4 * knobs["width"] ** 2 * (knobs["depth"] + 2) * (1 + 0.3 * knobs["b"])
        mean = 50 + 1.5 * math.log2(gflops) + effect_a * knobs["a"] + rng.normal(0, candidate_sd)
        for s in range(seeds):
            rows.append({"candidate": f"c{c}", "seed": s, "gflops": gflops, **knobs,
                         "top1": mean + rng.normal(0, seed_sd)})  # fmt: skip
    return pd.DataFrame(rows)


def term(effects, knob: str, level: str | None = None) -> pd.Series:
    rows = effects.table[effects.table["knob"] == knob]
    if level is not None:
        rows = rows[rows["level"] == level]
    assert len(rows) == 1, effects.table
    return rows.iloc[0]


def fit(rows: pd.DataFrame, **options):
    options = {"objective": "top1", "direction": "maximize", "cost": "gflops",
               "knobs": KNOBS, **options}  # fmt: skip
    return knob_effects(rows, **options)


def test_planted_effect_is_recovered_and_a_null_one_is_not_distinguished():
    effects = fit(scripted_study())
    assert effects.model == "joint" and effects.skipped is None
    assert list(effects.frame().columns) == list(EFFECT_COLUMNS)
    a, b = term(effects, "a", "1"), term(effects, "b", "1")
    assert a["reference"] == "0" and a["ci_low"] <= 1.0 <= a["ci_high"] and a["ci_low"] > 0
    assert a["verdict"] == "better" and a["better"]
    assert b["ci_low"] <= 0 <= b["ci_high"] and b["verdict"] == NOT_DISTINGUISHED
    assert (a["n_candidates"], a["n_runs"]) == (24, 48)
    # width 16/32/64 is a line in log2 of it; depth a line per unit
    assert term(effects, "width")["level"] == "per doubling"
    assert term(effects, "depth")["level"] == "per unit"
    trend = term(effects, "gflops")
    assert trend["model"] == "cost" and trend["level"] == "per doubling"
    assert trend["ci_low"] <= 1.5 + 0.5 * 0.5 and trend["verdict"] == "better"
    # cost explains most of top-1; the knobs add a's effect on top
    assert 0.5 < effects.r2_adj_cost < effects.r2_adj_model <= 1


def test_a_study_without_effects_distinguishes_nothing_beside_cost():
    effects = fit(scripted_study(effect_a=0.0, seed=3))
    knobs = effects.knob_rows()
    assert len(knobs) == 4 and (knobs["verdict"] == NOT_DISTINGUISHED).all()


def test_minimised_objective_calls_a_negative_effect_better():
    runs = scripted_study()
    runs["loss"] = -runs["top1"] / 10
    effects = fit(runs, objective="loss", direction="minimize")
    a = term(effects, "a", "1")
    assert a["effect"] < 0 and a["better"] and a["verdict"] == "better"
    assert term(effects, "gflops")["better"]  # more cost, lower loss


def test_candidate_means_with_run_counts_give_the_same_answer_as_the_runs():
    runs = scripted_study(seeds=3)
    runs = runs[~((runs["candidate"] == "c0") & (runs["seed"] > 0))]  # c0: one seed
    means = runs.groupby("candidate", as_index=False).agg(
        top1=("top1", "mean"), runs=("top1", "size"),
        **{k: (k, "first") for k in ["gflops", *KNOBS]},
    )  # fmt: skip
    for covariance in ("CR2", "CR1"):
        from_runs = fit(runs, covariance=covariance).frame()
        from_means = fit(means, runs="runs", covariance=covariance).frame()
        pd.testing.assert_frame_equal(from_runs, from_means)
        assert from_runs["n_runs"].iloc[0] == 3 * 24 - 2


def test_cr1_is_statsmodels_cluster_covariance_of_the_runs():
    runs = scripted_study()
    effects = fit(runs, covariance="CR1")
    codes = runs["candidate"].str[1:].astype(int).to_numpy()
    design = np.column_stack([
        np.ones(len(runs)), np.log2(runs["gflops"]), runs["a"], runs["b"],
        np.log2(runs["width"]), runs["depth"],
    ]).astype(float)  # fmt: skip
    own = sm.OLS(runs["top1"].to_numpy(), design).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    a = term(effects, "a", "1")
    assert a["effect"] == pytest.approx(own.params[2])
    assert a["se"] == pytest.approx(own.bse[2])
    assert [a["ci_low"], a["ci_high"]] == pytest.approx(list(own.conf_int()[2]))


def test_cr2_of_two_groups_is_welch_with_bell_mccaffrey_degrees_of_freedom():
    """Equal costs leave intercept + one contrast: HC2's variance is then Welch's, and the
    Bell-McCaffrey degrees of freedom have a closed form (Imbens and Kolesar 2016, eq. 10)."""
    rng = np.random.default_rng(7)
    n0, n1 = 20, 4
    rows = pd.DataFrame({
        "candidate": range(n0 + n1), "gflops": 1.0, "a": [0] * n0 + [1] * n1,
        "top1": np.r_[rng.normal(0, 1, n0), rng.normal(0.5, 2, n1)],
    })  # fmt: skip
    effects = knob_effects(rows, objective="top1", direction="maximize", cost="gflops",
                           knobs=["a"], model="joint")  # fmt: skip
    a = term(effects, "a", "1")
    groups = rows.groupby("a")["top1"]
    welch = math.sqrt((groups.var() / groups.size()).sum())
    assert a["effect"] == pytest.approx(groups.mean()[1] - groups.mean()[0])
    assert a["se"] == pytest.approx(welch)
    dof = (n0 + n1) ** 2 * (n0 - 1) * (n1 - 1) / (n1**2 * (n1 - 1) + n0**2 * (n0 - 1))
    assert a["ci_high"] - a["effect"] == pytest.approx(student_t.ppf(0.975, dof) * welch)
    assert any("same cost" in note for note in effects.notes)
    assert "gflops" not in set(effects.table["knob"])  # no trend without cost differences


def test_family_difference_at_equal_cost_is_recovered():
    runs = scripted_study(effect_a=0.0)
    rng = np.random.default_rng(11)
    others = []
    for family, shift in (("pvt_v2", -2.0), ("swin", 0.0)):
        for i in range(6):
            gflops = float(np.exp(rng.uniform(np.log(0.03), np.log(1.5))))
            mean = 50 + 1.5 * math.log2(gflops) + shift + rng.normal(0, 0.25)
            others += [{"candidate": f"{family}{i}", "gflops": gflops, "family": family,
                        "top1": mean + rng.normal(0, 0.5)} for _ in range(2)]  # fmt: skip
    runs = pd.concat([runs.assign(family="dualvit"), pd.DataFrame(others)], ignore_index=True)
    effects = fit(runs, family="family", family_reference="dualvit")
    pvt, swin = term(effects, "family", "pvt_v2"), term(effects, "family", "swin")
    assert pvt["reference"] == "dualvit" and pvt["model"] == "family"
    assert pvt["ci_low"] <= -2.0 <= pvt["ci_high"] and pvt["verdict"] == "worse"
    assert swin["ci_low"] <= 0 <= swin["ci_high"]
    assert pvt["n_candidates"] == 24 + 12
    # the knob fit holds the Dual-ViT candidates only (baselines have no knobs)
    assert term(effects, "a", "1")["n_candidates"] == 24


def test_collinear_knobs_are_dropped_with_a_note_not_a_crash():
    runs = scripted_study()
    runs["a_copy"] = runs["a"]  # the same knob twice
    runs["log_cost"] = np.log2(runs["gflops"])  # a knob that is the cost
    effects = fit(runs, knobs=[*KNOBS, "a_copy", "log_cost"])
    assert set(effects.knob_rows()["knob"]) == set(KNOBS)
    assert any(note.startswith("a_copy 1:") for note in effects.notes)
    assert any(note.startswith("log_cost per unit:") for note in effects.notes)
    a = term(effects, "a", "1")
    assert a["ci_low"] <= 1.0 <= a["ci_high"] and a["verdict"] == "better"


def test_a_knob_that_sets_the_cost_gets_a_wide_interval_and_a_note():
    runs = scripted_study()
    effects = fit(runs)
    width, a = term(effects, "width"), term(effects, "a", "1")
    assert width["se"] > 3 * a["se"]
    assert any(note.startswith("width per doubling: variance inflation") for note in effects.notes)


def test_a_level_held_by_one_candidate_is_left_out_not_given_a_zero_interval():
    runs = scripted_study()
    runs["style"] = np.where(runs["candidate"] == "c5", "odd", "plain")
    effects = fit(runs, knobs=["a", "style"], model="joint")
    assert "style" not in set(effects.table["knob"])
    assert any("style = odd: one candidate only" in note for note in effects.notes)
    assert term(effects, "a", "1")["n_candidates"] == 23
    assert (effects.table["se"] > 0).all()


def test_too_few_candidates_for_the_joint_model_fits_each_knob_alone():
    runs = scripted_study(candidates=12, candidate_sd=0.1)
    effects = fit(runs)  # 12 candidates, 6 coefficients: fewer spare than MIN_RESIDUAL_DF
    assert effects.model == "each"
    assert set(effects.knob_rows()["model"]) == {"each"}
    a = term(effects, "a", "1")
    assert a["ci_low"] <= 1.0 <= a["ci_high"]
    assert fit(runs, model="joint").model == "joint"


def test_too_few_candidates_say_so():
    runs = scripted_study(candidates=MIN_CANDIDATES - 1)
    effects = fit(runs)
    assert effects.table.empty and effects.n_candidates == MIN_CANDIDATES - 1
    assert effects.skipped.startswith(f"{MIN_CANDIDATES - 1} candidates")


def test_a_knob_with_one_value_and_unusable_rows():
    runs = scripted_study()
    runs["fixed"] = 3
    runs.loc[0, "top1"] = np.nan  # a run without its objective is skipped
    effects = fit(runs, knobs=["a", "fixed"])
    assert any("fixed: one value" in note for note in effects.notes)
    assert effects.n_runs == 47


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("direction", "up", "direction: 'up'"),
        ("covariance", "HC9", "covariance: 'HC9'"),
        ("model", "both", "model: 'both'"),
        ("confidence", 95, "confidence: 95"),
        ("knobs", ["nope"], "no column 'nope'"),
        ("categorical", ["nope"], "categorical: ['nope']"),
    ],
)
def test_bad_arguments_name_themselves(option, value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fit(scripted_study(candidates=10), **{option: value})


def test_one_candidate_with_two_costs_is_refused():
    runs = scripted_study()
    runs.loc[0, "gflops"] *= 2
    with pytest.raises(ValueError, match="candidate 'c0' has runs of different gflops"):
        fit(runs)
