"""The noise model (dvbench.stats.noise) and the dominance rule over it (dvbench.stats.pareto):
every expected value is hand arithmetic (McNemar's variance, pooled variances, Holm's steps,
Welch–Satterthwaite) or the old rule's formula, never a figure copied from the code."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from scipy.stats import norm

from dvbench.metrics import ACCURACY_METRICS, METRICS, accuracy_standard_error
from dvbench.search._runs import add_uncertainty
from dvbench.search.record import METRICS_ATTR, OUTCOMES, RUN
from dvbench.search.tables import Criteria, pareto_frame, trials_frame
from dvbench.space import load_space
from dvbench.stats import (
    STRICT,
    DominanceRule,
    Estimate,
    ImageOutcomes,
    Noise,
    SeedVariance,
    flip_variance,
    front_probability,
    holm,
    test_set_variance,
)

MAX_MIN = ["maximize", "minimize"]  # (top1, gflops)
RULE = DominanceRule(0.95)


def _scripted_pair(n: int, both: int, b: int, c: int):
    """Correct flags of two networks on ``n`` images: ``both`` right for both, ``b`` right only
    for the first, ``c`` right only for the second."""
    first, second = np.zeros(n, bool), np.zeros(n, bool)
    first[:both] = second[:both] = True
    first[both : both + b] = True
    second[both + b : both + b + c] = True
    return first, second


# ------------------------------------------------------------------------- paired errors
def test_a_paired_difference_has_mcnemars_variance():
    n, b, c = 400, 30, 12
    first, second = _scripted_pair(n, 150, b, c)
    unknown = SeedVariance()
    noise = Noise.of_estimates([
        [Estimate(1, unknown, images=100.0 * first), Estimate(1, unknown, images=100.0 * second)]
    ])  # fmt: skip
    variance, df = noise.difference(0)
    mcnemar = ((b + c) / n - ((b - c) / n) ** 2) / n  # proportion units
    assert variance[0, 1] == pytest.approx(100**2 * mcnemar)
    assert variance[1, 0] == variance[0, 1] and variance[0, 0] == 0
    assert math.isinf(df[0, 1])  # the test set's term is known
    # each alone keeps its binomial variance; as if independent their sum is much larger
    p1, p2 = first.mean(), second.mean()
    assert noise.se[:, 0] ** 2 == pytest.approx(
        [100**2 * p1 * (1 - p1) / n, 100**2 * p2 * (1 - p2) / n]
    )
    assert noise.se[0, 0] ** 2 + noise.se[1, 0] ** 2 > 3 * variance[0, 1]


def test_without_per_image_values_the_test_terms_add_as_independent():
    unknown = SeedVariance()
    first, second = _scripted_pair(400, 150, 30, 12)
    noise = Noise.of_estimates([
        [Estimate(1, unknown, images=100.0 * first), Estimate(1, unknown, test_var=0.25)]
    ])  # fmt: skip
    variance, _ = noise.difference(0)
    assert variance[0, 1] == pytest.approx(test_set_variance(100.0 * first) + 0.25)
    # a different test set (another length) is not paired either
    other = Estimate(1, unknown, images=100.0 * first[:300])
    apart = Noise.of_estimates([[Estimate(1, unknown, images=100.0 * first), other]])
    assert apart.difference(0)[0][0, 1] == pytest.approx(
        test_set_variance(100.0 * first) + test_set_variance(100.0 * first[:300])
    )


def test_the_paired_model_reaches_the_tables(tmp_path):
    """Two candidates whose trials stored per-image outcomes: the study's tables compare
    them paired (McNemar), and a baseline's stored outcomes pair with them too."""
    n, b, c = 2000, 60, 20
    first, second = _scripted_pair(n, 900, b, c)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for number, (flags, gflops) in enumerate(((first, 2.0), (second, 1.0))):
        metrics = {"top1": 100 * flags.mean(), "gflops": gflops, "test_images": n}
        study.add_trial(
            optuna.trial.create_trial(
                values=[metrics["top1"], gflops],
                user_attrs={
                    METRICS_ATTR: metrics,
                    OUTCOMES: ImageOutcomes(flags, np.ones(n)).pack(),
                    RUN: {"candidate": number, "rung": 0, "repeat": 0},
                },
            )
        )
    study.set_user_attr(
        "baseline:ref",
        {"name": "ref", "metrics": {"top1": 100 * first.mean(), "gflops": 3.0, "test_images": n},
         OUTCOMES: ImageOutcomes(first, np.ones(n)).pack()},
    )  # fmt: skip
    frame = trials_frame(study)
    criteria = Criteria(("top1", "gflops"), ("maximize", "minimize"))
    noise = criteria.noise(frame)
    variance, _ = noise.difference(0)
    mcnemar = 100**2 * ((b + c) / n - ((b - c) / n) ** 2) / n
    assert variance[0, 1] == pytest.approx(mcnemar)
    assert variance[0, 2] == pytest.approx(0.0)  # the baseline made the same calls as trial 0
    assert (frame["top1_se_from"] == "test set only (lower bound)").all()
    # 2 points apart, the paired SE of the difference 0.45: both on the front, told apart...
    front = pareto_frame(frame, criteria)
    assert front["number"].tolist() == [1, 0]
    # ...where as independent binomials (SE of the difference 1.58) they would be tied
    independent = criteria.rule.tied(
        criteria.values(frame[:2]), MAX_MIN, criteria.errors(frame[:2])
    )
    paired = criteria.rule.tied(criteria.values(frame[:2]), MAX_MIN, noise.take([0, 1]))
    assert independent[0, 1] and not paired[0, 1]
    assert "noise" not in pd.read_csv(_export(study, tmp_path, criteria) / "trials.csv").columns


def test_flip_variance_by_hand():
    runs = np.array([[0.0, 100.0, 100.0], [100.0, 100.0, 0.0]])
    # per image: var(0, 100) = 5000, var(100, 100) = 0, var(100, 0) = 5000; mean over 3 images
    assert flip_variance(runs) == pytest.approx((5000 + 0 + 5000) / 3 / 3)
    assert math.isnan(flip_variance(runs[:1]))


def test_repeats_measure_the_flips_and_take_them_out_of_the_test_terms():
    """The seeds' per-image flips are in sigma² and, divided by the seeds, in the variance over
    images of the seed-averaged values: a candidate's repeats measure them (phi) and the test
    terms of every candidate at that budget lose them."""
    rng = np.random.default_rng(5)
    n = 3000
    hard = rng.random(n)  # shared difficulty: networks agree on most images
    a, b, c = (hard > 0.5 + rng.normal(0, 0.1, n) for _ in range(3))
    study = optuna.create_study(directions=["maximize", "minimize"])
    for candidate, repeat, flags in ((0, 0, a), (1, 0, c), (0, 1, b)):
        metrics = {"top1": 100 * flags.mean(), "gflops": 1.0 + candidate, "test_images": n}
        study.add_trial(
            optuna.trial.create_trial(
                values=[metrics["top1"], metrics["gflops"]],
                user_attrs={
                    METRICS_ATTR: metrics,
                    OUTCOMES: ImageOutcomes(flags, np.ones(n)).pack(),
                    RUN: {"candidate": candidate, "rung": 0, "repeat": repeat},
                },
            )
        )
    frame = trials_frame(study)
    first, second = (frame[frame["candidate"] == k].iloc[0] for k in (0, 1))
    runs = 100.0 * np.stack([a, b])
    phi = runs.var(axis=0, ddof=1).mean() / n
    sigma2 = np.var([100 * a.mean(), 100 * b.mean()], ddof=1)
    mean0, one = runs.mean(axis=0), 100.0 * c
    tau0 = max(mean0.var() / n - phi / 2, 0)
    tau1 = max(one.var() / n - phi, 0)
    assert first["top1_se"] ** 2 == pytest.approx(sigma2 / 2 + tau0)
    assert second["top1_se"] ** 2 == pytest.approx(sigma2 + tau1)
    assert second["top1_se_from"] == "seeds (pooled, df=1)"
    noise = Criteria(("top1", "gflops"), ("maximize", "minimize")).noise(frame)
    paired = max((mean0 - one).var() / n - phi / 2 - phi, 0)
    assert noise.difference(0)[0][0, 1] == pytest.approx(sigma2 / 2 + sigma2 + paired)


def _export(study, folder, criteria):
    from dvbench.search.tables import export_tables

    export_tables(study, folder, criteria)
    return folder


# ---------------------------------------------------------------- seeds and the test set
def _frame(**columns) -> pd.DataFrame:
    base = {"top1": [50.0, 60.0, 55.0], "test_images": [8000] * 3, "budget": [None] * 3}
    return pd.DataFrame({**base, **columns})


def test_the_test_set_floor_is_not_divided_by_the_seeds():
    frame = _frame(top1_seeds=[4, 4, 1], top1_seed_sd=[0.6, 0.4, None])
    out = add_uncertainty(frame)
    pooled = (3 * 0.6**2 + 3 * 0.4**2) / 6
    binomial = accuracy_standard_error(50.0, 8000) ** 2
    assert out["top1_se"][0] ** 2 >= binomial  # the floor of the old model divided it by 4
    assert out["top1_se"][0] ** 2 == pytest.approx(pooled / 4 + binomial)
    estimate = Estimate(4, SeedVariance(0.36, 6, "seeds"), 0.31)
    assert estimate.variance == pytest.approx(0.09 + 0.31)


def test_the_pooled_seed_variance_serves_candidates_before_their_repeats():
    frame = _frame(top1_seeds=[3, 3, 1], top1_seed_sd=[0.5, 0.7, None])
    out = add_uncertainty(frame)
    pooled = (2 * 0.5**2 + 2 * 0.7**2) / 4
    binomial = accuracy_standard_error(55.0, 8000) ** 2
    assert out["top1_se"][2] ** 2 == pytest.approx(pooled + binomial)  # one seed: all of it
    assert out["top1_se_from"][2] == "seeds (pooled, df=4)"
    assert out["top1_df"][2] == pytest.approx((pooled + binomial) ** 2 / (pooled**2 / 4))


def test_the_calibration_prior_serves_until_the_study_has_repeats_then_pools_with_them():
    prior = {"top1": (0.5, 16.0)}
    alone = add_uncertainty(_frame(top1_seeds=[1, 1, 1]), prior=prior)
    binomial = accuracy_standard_error(50.0, 8000) ** 2
    assert alone["top1_se"][0] ** 2 == pytest.approx(0.25 + binomial)
    assert set(alone["top1_se_from"]) == {"calibration (df=16)"}
    both = add_uncertainty(
        _frame(top1_seeds=[3, 1, 1], top1_seed_sd=[1.0, None, None]), prior=prior
    )
    pooled = (16 * 0.25 + 2 * 1.0) / 18
    assert both["top1_se"][1] ** 2 == pytest.approx(pooled + accuracy_standard_error(60, 8000) ** 2)
    assert both["top1_se_from"][1] == "seeds + calibration (pooled, df=18)"
    nothing = add_uncertainty(_frame(top1_seeds=[1, 1, 1]))
    assert set(nothing["top1_se_from"]) == {"test set only (lower bound)"}
    with pytest.raises(ValueError, match="prior"):
        SeedVariance.pooled([], [], prior=(0.5, 0))


def test_pooling_is_by_budget():
    frame = pd.DataFrame({
        "top1": [50.0, 51.0, 52.0], "test_images": [8000] * 3, "budget": ["1ep", "1ep", "9ep"],
        "top1_seeds": [3, 1, 1], "top1_seed_sd": [1.0, None, None],
    })  # fmt: skip
    out = add_uncertainty(frame)
    assert out["top1_se_from"].tolist()[1:] == [
        "seeds (pooled, df=2)",
        "test set only (lower bound)",
    ]


# -------------------------------------------------------------------- test_loss, a metric
def test_test_loss_is_a_noisy_metric_without_a_binomial():
    assert "test_loss" in ACCURACY_METRICS and METRICS["test_loss"].direction == "minimize"
    frame = pd.DataFrame({
        "test_loss": [1.40, 1.45, 1.50], "test_images": [8000] * 3, "budget": [None] * 3,
        "test_loss_seeds": [3, 3, 1], "test_loss_seed_sd": [0.01, 0.02, None],
    })  # fmt: skip
    out = add_uncertainty(frame)
    pooled = (2 * 0.01**2 + 2 * 0.02**2) / 4
    assert out["test_loss_se"].tolist() == pytest.approx(
        [math.sqrt(pooled / 3), math.sqrt(pooled / 3), math.sqrt(pooled)]
    )  # no test-set term is known: a lower bound, and it says so
    assert set(out["test_loss_se_from"]) == {"seeds (pooled, df=4); test set unknown (lower bound)"}
    unknown = add_uncertainty(frame.assign(test_loss_seeds=1, test_loss_seed_sd=None))
    assert unknown["test_loss_se"].isna().all()  # never the binomial formula
    losses = np.linspace(0.5, 2.5, 8000)
    per_image = Estimate(1, SeedVariance(), images=losses)
    assert per_image.variance == pytest.approx(losses.var() / 8000)


def test_a_space_takes_test_loss_as_objective_and_constraint(tmp_path):
    space = {
        "name": "loss",
        "knobs": {"width": {"choices": [8, 16]}},
        "fixed": {
            "head_dim": 8, "width_multipliers": [1, 2, 3, 4], "depth1": 1, "depth2": 1,
            "depth3": 1, "depth4": 1, "mlp_ratio": 2, "stem_hidden_dim": 8, "semantic_grid": 1,
        },
        "objectives": [
            {"metric": "test_loss", "direction": "minimize"},
            {"metric": "gflops", "direction": "minimize"},
        ],
        "constraints": {"max_test_loss": 2.0},
        "train": {"data": "digits", "resolution": 16, "epochs": 1, "train_samples": 5},
    }  # fmt: skip
    path = tmp_path / "loss.yaml"
    path.write_text(yaml.safe_dump(space))
    loaded = load_space(path)
    assert loaded.metrics == ["test_loss", "gflops"] and loaded.needs_training
    assert loaded.constraints == {"max_test_loss": 2.0}
    assert Criteria.of_space(loaded).noisy == (True, False)


# --------------------------------------------------------------------- the t and Holm
def test_few_degrees_of_freedom_widen_the_margin():
    assert RULE.quantile(3) > RULE.quantile(30) > RULE.z == pytest.approx(norm.ppf(0.95))
    assert RULE.quantile(math.inf) == pytest.approx(RULE.z)
    # a gap of 2.5 SEs of the difference: past z (1.64) and t_4 (2.13), short of t_2 (2.92)
    values = [[52.5, 1.0], [50.0, 2.0]]
    known = Noise.independent([[1 / math.sqrt(2), 0], [1 / math.sqrt(2), 0]])
    assert RULE.matrix(values, MAX_MIN, known)[0, 1]
    for df, dominated in ((4, True), (2, False)):
        seed = SeedVariance(1.0, df, "seeds")  # one pooled sigma² = 1: the difference's var 2
        noise = Noise.of_estimates([[Estimate(2, seed, 0.0), Estimate(2, seed, 0.0)], None])
        variance, dof = noise.difference(0)
        assert variance[0, 1] == pytest.approx(1.0) and dof[0, 1] == pytest.approx(df)
        assert RULE.matrix(values, MAX_MIN, noise)[0, 1] == dominated


def test_welch_satterthwaite_of_a_difference():
    seed = SeedVariance(0.25, 4, "seeds")
    a, b = Estimate(1, seed, 0.3), Estimate(3, seed, 0.2)
    noise = Noise.of_estimates([[a, b]])
    variance, dof = noise.difference(0)
    shared = 0.25 * (1 + 1 / 3)  # one estimate of sigma²: its share has its 4 df
    assert variance[0, 1] == pytest.approx(shared + 0.5)
    assert dof[0, 1] == pytest.approx((shared + 0.5) ** 2 / (shared**2 / 4))
    assert noise.df[0, 0] == pytest.approx(a.df) == pytest.approx(0.55**2 / (0.25**2 / 4))


def _would_be_dominated(p_values, se: float = 1.0):
    """A candidate (last row: cost 9, top-1 50) and cheaper ones each better by the gap whose
    one-sided p-value (independent errors, known SEs) is ``p``."""
    spread = math.sqrt(2) * se
    values = [[50 + norm.isf(p) * spread, 1.0 + k] for k, p in enumerate(p_values)]
    values.append([50.0, 9.0])
    return values, [[se, 0.0]] * len(values)


@pytest.mark.parametrize(
    ("p_values", "dominated_by"),
    [
        ((0.03,), {0}),  # a family of one: the plain test at 0.05
        ((0.03, 0.03), set()),  # Holm: 0.03 > 0.05 / 2 at the first step
        ((0.02, 0.03), {0, 1}),  # 0.02 <= 0.025, then 0.03 <= 0.05
        ((0.01, 0.2), {0}),  # 0.01 <= 0.025, then 0.2 > 0.05: stops
        ((0.03, 0.04, 0.001), {2}),  # 0.001 <= 0.05/3; 0.03 > 0.05/2
    ],
)
def test_holm_over_the_would_be_dominators(p_values, dominated_by):
    values, ses = _would_be_dominated(p_values)
    beaten = RULE.matrix(values, MAX_MIN, ses)[:, -1]
    assert set(np.flatnonzero(beaten)) == dominated_by
    assert RULE.front(values, MAX_MIN, ses)[-1] == (not dominated_by)
    p, family = RULE.p_values(values, MAX_MIN, ses)
    assert p[: len(p_values), -1] == pytest.approx(p_values)
    assert family[: len(p_values), -1].all() and not family[-1, : len(p_values)].any()


def test_holm_by_hand():
    assert holm([0.03, 0.03], 0.05).tolist() == [False, False]
    assert holm([0.03, 0.02], 0.05).tolist() == [True, True]
    assert holm([0.04, 0.001, 0.03], 0.05).tolist() == [False, True, False]
    assert holm([0.01, 0.01, 0.2], 0.05).tolist() == [True, True, False]  # ties pass together
    assert holm([], 0.05).tolist() == []


def test_a_more_expensive_candidate_is_not_in_the_family():
    values = [[90.0, 3.0], [50.0, 2.0]]
    assert not RULE.matrix(values, MAX_MIN, [[1, 0], [1, 0]])[0, 1]
    _, family = RULE.p_values(values, MAX_MIN, [[1, 0], [1, 0]])
    assert not family[0, 1] and family[1, 0]


def test_several_noisy_objectives_need_all_of_them_better():
    directions = ["maximize", "minimize", "minimize"]  # top1, test_loss, gflops
    ses = [[1.0, 0.01, 0.0], [1.0, 0.01, 0.0]]
    better_in_both = [[55.0, 1.30, 1.0], [50.0, 1.40, 2.0]]
    assert RULE.matrix(better_in_both, directions, ses)[0, 1]
    loss_tied = [[55.0, 1.40, 1.0], [50.0, 1.40, 2.0]]
    p, _ = RULE.p_values(loss_tied, directions, ses)
    assert p[0, 1] == pytest.approx(0.5)  # intersection-union: the larger p-value
    assert not RULE.matrix(loss_tied, directions, ses)[0, 1]


# -------------------------------------------------------------- old callers, strict rule
def test_confidence_zero_is_the_strict_rule_whatever_the_noise():
    values = [[50.0, 1.0], [50.5, 2.0], [49.0, 3.0], [48.0, 1.0]]
    noise = Noise.independent([[5.0, 0.0]] * 4)
    exact = [
        [all(a >= b for a, b in zip(gi, gj)) and any(a > b for a, b in zip(gi, gj))
         for gj in ([v[0], -v[1]] for v in values)]
        for gi in ([v[0], -v[1]] for v in values)
    ]  # fmt: skip
    assert STRICT.matrix(values, MAX_MIN, noise).tolist() == exact
    assert STRICT.matrix(values, MAX_MIN).tolist() == exact
    assert STRICT.tied(values, MAX_MIN, noise).sum() == 0  # no two equal accuracies


def test_a_standard_error_array_keeps_its_old_meaning():
    """An array of SEs: independent errors, infinite df. For a pair (a family of one) the
    answers are the old rule's: dominated when ahead by more than z sqrt(se_a² + se_b²)."""
    rng = np.random.default_rng(7)
    z = norm.ppf(0.95)
    for _ in range(300):
        a = [50 + rng.normal(0, 2), rng.choice([1.0, 2.0])]
        b = [50 + rng.normal(0, 2), rng.choice([1.0, 2.0])]
        se_a, se_b = [rng.uniform(0.1, 1.5), 0], [rng.uniform(0.1, 1.5), 0]
        margin = z * math.hypot(se_a[0], se_b[0])
        old = a[1] <= b[1] and a[0] - b[0] > margin
        assert RULE.dominates(a, b, MAX_MIN, se_a, se_b) == old
        ties = RULE.tied([a, b], MAX_MIN, [se_a, se_b])
        assert ties[0, 1] == (abs(a[0] - b[0]) <= margin)
        as_noise = Noise.independent([se_a, se_b])
        assert RULE.matrix([a, b], MAX_MIN, as_noise)[0, 1] == old


# ------------------------------------------------------------------- front probability
def test_front_probability_uses_the_paired_errors():
    # two candidates of one cost, 1 point apart, each with test-set SE 0.56
    values = [[50.0, 1.0], [49.0, 1.0]]
    independent = front_probability(values, MAX_MIN, [[0.56, 0], [0.56, 0]])
    assert independent[1] == pytest.approx(norm.cdf(-1 / (0.56 * math.sqrt(2))), abs=0.02)
    cov = 0.56**2 * np.array([[1.0, 0.8], [0.8, 1.0]])  # errors correlated 0.8: shared images
    paired = Noise(np.zeros((2, 2)), math.inf, 0, (cov, None))
    sd = math.sqrt(2 * 0.56**2 * 0.2)
    assert front_probability(values, MAX_MIN, paired)[1] == pytest.approx(
        norm.cdf(-1 / sd), abs=0.01
    )


def test_front_probability_shrinks_a_lucky_estimate_toward_the_others():
    # ten candidates of one cost whose estimates spread exactly as their noise would: the
    # best estimate is not surely the best network (independent draws say it is, mostly)
    values = [[50.0 + 0.5 * k, 1.0] for k in np.linspace(-1.6, 1.6, 10)]
    ses = [[0.5, 0.0]] * 10
    posterior = front_probability(values, MAX_MIN, ses)
    independent = _independent_draws(values, ses)
    assert posterior.sum() == pytest.approx(1.0)  # one cost: one front member per draw
    assert independent[-1] > 0.35 and posterior[-1] < 0.8 * independent[-1]
    assert posterior[0] > independent[0]
    assert (front_probability(values, MAX_MIN, ses) == posterior).all()  # a fixed seed


def _independent_draws(values, ses, draws: int = 4000) -> np.ndarray:
    """The old front probability: independent normal draws around each estimate."""
    rng = np.random.default_rng(1)
    gains = np.asarray(values) * [1, -1]
    drawn = gains[None] + rng.standard_normal((draws, *gains.shape)) * np.asarray(ses)[None]
    diff = drawn[:, :, None, :] - drawn[:, None, :, :]
    beaten = ((diff >= 0).all(3) & (diff > 0).any(3)).any(1)
    return (~beaten).mean(0)


def test_front_probability_with_a_trend_and_few_degrees_of_freedom_keeps_the_cheapest():
    rng = np.random.default_rng(3)
    n = 60
    cost = np.exp(rng.uniform(-3, 0, n))
    seed = SeedVariance(0.25, 3, "seeds")
    estimates = [Estimate(int(k), seed, 0.3) for k in rng.integers(1, 4, n)]
    values = np.column_stack([50 + 2 * np.log(cost) + rng.normal(0, 0.8, n), cost])
    chance = front_probability(values, MAX_MIN, Noise.of_estimates([estimates, None]))
    assert chance.shape == (n,) and ((0 <= chance) & (chance <= 1)).all()
    assert chance.max() > 0.5  # the cheapest is on the front whatever its accuracy
    assert chance[np.argmin(cost)] == 1.0
