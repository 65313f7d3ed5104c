"""The noise model judged on synthetic studies drawn from the yardstick: does "dominated" keep
its error rate, how much does it separate, and is ``p_front`` calibrated -- the new model
(``dvbench.stats``: paired, t, Holm, posterior front probability) beside the old one
(independent errors, z, the binomial floor divided by the seeds, independent draws).

**Truth** (``results/benchmarks/calibrate/yardstick_cifar-300-32-15/records.jsonl``: 8
candidates x 3 seeds, 15-epoch top-1, GFLOPs): a candidate's true top-1 is the yardstick's
least-squares line of seed means on log GFLOPs at its cost, plus a between-candidate deviation
of sd ``between``. The yardstick's own deviations are within its noise (their estimated
variance is below zero), so the spread is a scenario: near zero (0.05, the estimate), the
one-sided 95 % upper bound of that variance (chi-square on its residual degrees of freedom),
half of it, and half of it around a flat line (no trend: many near-ties, where a front member
has many would-be dominators). Costs are drawn log-uniformly over the yardstick's range, ``K``
candidates a study (default 12).

**Runs**: per-image outcomes on a fresh test set of 8,000 images each study, probit: image x is
right for candidate c, seed s when ``a_c + b_cs - lam d_x + e_c(x) + eps_csx > 0`` with
``d_x ~ N(0, 1)`` a latent difficulty every network shares, ``e_c(x) ~ N(0, w²)`` the
candidate's own per-image pattern, ``b_cs ~ N(0, g²)`` a seed's global shift and ``eps`` each
image's seed flip. ``a_c`` makes the population accuracy the truth; ``lam``, ``g`` and ``w``
are solved so that the seed sd is the yardstick's pooled one (about 0.49 points), its per-image
flips' share (phi) and the extra per-image variance of two *different* candidates are those of
the per-image outcomes of ``yardstick_cifar-300-32-15_curves`` when they are there (3 seeds of a
candidate, single seeds of others, at epoch 15), else the figures measured there first (phi
0.115 points², extra 0.006). The single-seed binomial SE then comes out near 0.56, as measured.

**Seeds**: one seed a candidate with a calibration prior (the yardstick's pooled sd, its 16
df; ``new`` without and ``new+phi`` with the prior's flip sd), and three seeds a candidate
(pooled in the study, no prior). The old model has no prior: with one seed its SE is the
binomial one.

**Measures** (confidence 0.95): the share of true front members (the strict front of the true
values) called dominated, goal <= 0.05, with a 95 % interval bootstrapping studies; the power
to call the worse of two equal-cost candidates dominated when the truths are 1 and 2 true SEs
apart (SE: the sd of one candidate's estimate, both on one test set, scored within a study of
``K`` candidates that pools the seed variance; a family of one); and
``p_front`` against membership of the true front in bins of predicted probability (goal:
every bin's observed share within 0.10 of its mean prediction), with the Brier score beside a
control that knows nothing (every candidate the study's base rate). **Leave one seed out** on
the real yardstick records: the held-out seed's value predicted from the other two (same test
set, so the test-set term cancels; the seed variance pooled without the held-out run), the
share of 95 % intervals that hold it, for top-1 and the test loss.

    python benchmarks/bench_noise_model.py            # ~6 min on one core, 600 studies a scenario
    python benchmarks/bench_noise_model.py --quick    # a fast check (few studies)

Output: ``results/benchmarks/noise_model.csv``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import norm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dvbench.stats import DEFAULT_CONFIDENCE, pooled_variance  # noqa: E402

CALIBRATE = REPO / "results" / "benchmarks" / "calibrate"
YARDSTICK = CALIBRATE / "yardstick_cifar-300-32-15" / "records.jsonl"
CURVES = CALIBRATE / "yardstick_cifar-300-32-15_curves" / "records.jsonl"
OUT = REPO / "results" / "benchmarks" / "noise_model.csv"
IMAGES = 8000
EPOCH = 15.0
DIRECTIONS = ("maximize", "minimize")  # top-1, GFLOPs
BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0 + 1e-9)
PHI_FIRST, EXTRA_FIRST = 0.115, 0.006  # points², first outcomes of the curves (see docstring)


# --------------------------------------------------------------------------- the yardstick
@dataclass(frozen=True)
class Yardstick:
    top1: dict[int, list[float]]  # candidate -> top-1 of each seed at EPOCH
    loss: dict[int, list[float]]
    gflops: dict[int, float]

    @property
    def seed_sd(self) -> float:
        return math.sqrt(self._pooled[0])

    @property
    def seed_df(self) -> int:
        return int(self._pooled[1])

    @property
    def _pooled(self) -> tuple[float, float]:
        """The top-1 seed variance pooled over the candidates, and its degrees of freedom."""
        runs = list(self.top1.values())
        return pooled_variance([np.var(v, ddof=1) for v in runs], [len(v) for v in runs])


def read_yardstick(path: Path) -> Yardstick:
    top1, loss, gflops = defaultdict(list), defaultdict(list), {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("unit") == "proxies":
            gflops[record["candidate"]] = record["values"]["gflops"]
        elif record.get("unit") == "rung" and record.get("epochs") == EPOCH:
            top1[record["candidate"]].append(record["top1"])
            loss[record["candidate"]].append(record["test_loss"])
    return Yardstick(dict(top1), dict(loss), gflops)


def trend_and_between(yard: Yardstick) -> tuple[np.ndarray, float, float, int]:
    """(intercept, slope) of seed means on log GFLOPs, the residual variance, its df."""
    keys = sorted(yard.top1)
    means = np.array([np.mean(yard.top1[k]) for k in keys])
    x = np.log([yard.gflops[k] for k in keys])
    design = np.column_stack([np.ones(len(x)), x])
    coef, *_ = np.linalg.lstsq(design, means, rcond=None)
    residual = means - design @ coef
    df = len(x) - 2
    return coef, float(residual @ residual / df), float(np.ptp(x)), df


def outcome_targets() -> tuple[float, float, str]:
    """(phi, extra per-image variance of two candidates, source) in points² on 8,000 images."""
    from dvbench.stats import ImageOutcomes, flip_variance

    if not CURVES.is_file():
        return PHI_FIRST, EXTRA_FIRST, "first curves outcomes (file absent)"
    runs: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    for line in CURVES.read_text().splitlines():
        record = json.loads(line)
        if record.get("unit") == "rung" and record.get("epochs") == EPOCH and "outcomes" in record:
            outcomes = ImageOutcomes.unpack(record["outcomes"])
            runs[record["candidate"]][record["seed"]] = outcomes.metric("top1")
    repeated = [np.stack(list(s.values())) for s in runs.values() if len(s) >= 2]
    singles = [next(iter(s.values())) for s in runs.values()]
    if not repeated or len(singles) < 2:
        return PHI_FIRST, EXTRA_FIRST, "first curves outcomes (too few runs yet)"
    weights = [len(r) - 1 for r in repeated]
    phi = float(np.average([flip_variance(r) for r in repeated], weights=weights))
    pairs = [(a - b).var() / a.size for i, a in enumerate(singles) for b in singles[i + 1 :]]
    extra = max(float(np.mean(pairs)) - 2 * phi, 0.0) / 2  # Var_x(p_c - p_c') / 2N, points²
    return phi, extra, f"curves outcomes ({len(repeated)} repeated, {len(singles)} candidates)"


# ----------------------------------------------------------------------- the generator
@dataclass(frozen=True)
class Generator:
    """The probit per-image model (see the module docstring), solved for its targets."""

    lam: float  # scale of the shared difficulty
    g: float  # sd of a seed's global shift (latent units)
    w: float  # sd of a candidate's own per-image pattern

    @property
    def total(self) -> float:
        return math.sqrt(1 + self.lam**2 + self.g**2 + self.w**2)

    def offset(self, accuracy: np.ndarray) -> np.ndarray:
        return norm.ppf(np.asarray(accuracy) / 100.0) * self.total

    def runs(self, truth: np.ndarray, seeds: int, rng) -> np.ndarray:
        """0/100 outcomes, candidates x seeds x images, on a fresh test set."""
        k = len(truth)
        difficulty = rng.standard_normal(IMAGES)
        own = self.w * rng.standard_normal((k, 1, IMAGES))
        shift = self.g * rng.standard_normal((k, seeds, 1))
        latent = self.offset(truth)[:, None, None] + shift - self.lam * difficulty + own
        return 100.0 * (latent + rng.standard_normal((k, seeds, IMAGES)) > 0)

    @classmethod
    def solve(cls, seed_sd: float, phi: float, extra: float, accuracy: float) -> Generator:
        """lam for phi, g for the rest of the seed variance, w for the extra (Monte Carlo
        over a fixed sample of images; two rounds, the targets hardly interact)."""
        rng = np.random.default_rng(0)
        d, e1, e2 = rng.standard_normal((3, 200_000))
        lam, g, w = 1.0, 0.1, 0.05
        for _ in range(3):

            def flips(lam_, g=g, w=w):
                a = norm.ppf(accuracy / 100) * math.sqrt(1 + lam_**2 + g**2 + w**2)
                q = norm.cdf(a - lam_ * d + w * e1)
                return float((q * (1 - q)).mean()) * 1e4 / IMAGES

            lam = _bisect(lambda v: flips(v) - phi, 0.05, 20.0, decreasing=True)
            a = norm.ppf(accuracy / 100) * math.sqrt(1 + lam**2 + g**2 + w**2)
            density = float(norm.pdf(a - lam * d + w * e1).mean())
            rest = max(seed_sd**2 - phi, 1e-6) / 1e4
            g = math.sqrt(rest) / density

            def spread(w_, lam=lam, g=g):
                scale = math.sqrt(1 + g**2)
                a = norm.ppf(accuracy / 100) * math.sqrt(1 + lam**2 + g**2 + w_**2)
                p1 = norm.cdf((a - lam * d + w_ * e1) / scale)
                p2 = norm.cdf((a - lam * d + w_ * e2) / scale)
                return float((p1 - p2).var()) * 1e4 / IMAGES / 2

            w = _bisect(lambda v: spread(v) - extra, 0.0, 5.0) if extra > 0 else 0.0
        return cls(lam, g, w)


def _bisect(f, low: float, high: float, *, decreasing: bool = False, steps: int = 50) -> float:
    sign = -1 if decreasing else 1
    for _ in range(steps):
        mid = (low + high) / 2
        if sign * f(mid) > 0:
            high = mid
        else:
            low = mid
    return (low + high) / 2


# --------------------------------------------------------------------------- the models
@dataclass(frozen=True)
class Study:
    values: np.ndarray  # candidates x (top-1 estimate, GFLOPs)
    runs: np.ndarray  # candidates x seeds x images (0/100)
    truth: np.ndarray  # true top-1


def old_errors(study: Study) -> np.ndarray:
    """The old model: a mean of n seeds has max(pooled sigma², binomial²) / n, the binomial
    alone (not divided) before any candidate has two seeds."""
    seeds = study.runs.shape[1]
    p = study.values[:, 0] / 100
    binomial = 1e4 * p * (1 - p) / IMAGES
    if seeds >= 2:
        pooled = pooled_variance(study.runs.mean(axis=2).var(axis=1, ddof=1), [seeds] * len(p))[0]
        variance = np.maximum(pooled, binomial) / seeds
    else:
        variance = binomial
    return np.column_stack([np.sqrt(variance), np.zeros(len(p))])


def old_dominated(values: np.ndarray, ses: np.ndarray) -> np.ndarray:
    """The old rule: i dominates j when no costlier and ahead by more than z sqrt(se_i² +
    se_j²), pair by pair."""
    z = norm.ppf(DEFAULT_CONFIDENCE)
    accuracy, cost, se = values[:, 0], values[:, 1], ses[:, 0]
    ahead = accuracy[:, None] - accuracy[None, :] > z * np.hypot(se[:, None], se[None, :])
    return ahead & (cost[:, None] <= cost[None, :])


def old_front_probability(values: np.ndarray, ses: np.ndarray, draws: int = 2000) -> np.ndarray:
    """The old front probability: independent normal draws around each estimate, the share
    of draws on the strict front (costs exact)."""
    rng = np.random.default_rng(20260)
    accuracy = values[:, 0] + rng.standard_normal((draws, len(values))) * ses[:, 0]
    cheaper = values[:, 1][:, None] <= values[:, 1][None, :]  # [j, i]: j no costlier than i
    np.fill_diagonal(cheaper, False)
    beaten = ((accuracy[:, :, None] > accuracy[:, None, :]) & cheaper[None]).any(axis=1)
    return 1.0 - beaten.mean(axis=0)


def new_noise(study: Study, prior):
    """The new model's Noise of a study: the seed variance pooled (with ``prior``), phi from
    the repeats (or the prior), paired per-image test-set terms."""
    from dvbench.stats import Estimate, Noise, SeedVariance, flip_variance

    seeds = study.runs.shape[1]
    means = study.runs.mean(axis=2)
    sds = means.std(axis=1, ddof=1) if seeds >= 2 else np.full(len(means), np.nan)
    flips = [flip_variance(r) for r in study.runs] if seeds >= 2 else []
    seed = SeedVariance.pooled(
        sds, [seeds] * len(means), prior=prior, flips=flips, flip_seeds=[seeds] * len(flips)
    )
    estimates = [Estimate(seeds, seed, images=r.mean(axis=0)) for r in study.runs]
    return Noise.of_estimates([estimates, None])


def draw_study(truth_line, between: float, k: int, seeds: int, gen: Generator, span, rng):
    (intercept, slope), (low, high) = truth_line, span
    log_cost = rng.uniform(low, high, k)
    truth = intercept + slope * log_cost + between * rng.standard_normal(k)
    runs = gen.runs(truth, seeds, rng)
    values = np.column_stack([runs.mean(axis=(1, 2)), np.exp(log_cost)])
    return Study(values, runs, truth)


# ------------------------------------------------------------------------ the measures
def simulate(scenario: dict, gen: Generator, line, span, replicates: int, k: int):
    """Per model: (called dominated, true front members) per study, and (p_front, on the
    true front) per candidate."""
    from dvbench.stats import STRICT, DominanceRule, front_probability

    rule = DominanceRule(DEFAULT_CONFIDENCE)
    rng = np.random.default_rng(scenario["seed"])
    models = scenario["models"]  # model -> its calibration prior
    wrong = {m: [] for m in models}
    chances = {m: [] for m in models}
    on_truth = []
    for _ in range(replicates):
        trend = (line[0], line[1] * scenario["slope"])
        study = draw_study(trend, scenario["between"], k, scenario["seeds"], gen, span, rng)
        true_front = STRICT.front(np.column_stack([study.truth, study.values[:, 1]]), DIRECTIONS)
        on_truth.append(true_front)
        for model in models:
            if model == "old":
                ses = old_errors(study)
                beaten = old_dominated(study.values, ses).any(axis=0)
                chance = old_front_probability(study.values, ses)
            else:
                noise = new_noise(study, models[model])
                beaten = ~rule.front(study.values, DIRECTIONS, noise)
                chance = front_probability(study.values, DIRECTIONS, noise)
            wrong[model].append((int((beaten & true_front).sum()), int(true_front.sum())))
            chances[model].append(chance)
    return wrong, chances, on_truth


def power(scenario: dict, gen: Generator, replicates: int, k: int, gaps=(1.0, 2.0)):
    """Share of equal-cost pairs, the truths ``gap`` true SEs apart, where the worse is called
    dominated (a family of one), per model. The pair is scored within a study of ``k``
    candidates (the others at the pair's mean), whose repeats pool the seed variance."""
    from dvbench.stats import DominanceRule

    rule = DominanceRule(DEFAULT_CONFIDENCE)
    rng = np.random.default_rng(scenario["seed"] + 1)
    seeds = scenario["seeds"]
    true_se = one_candidate_sd(gen, seeds)
    out = {}
    for gap in gaps:
        truth = np.full(k, 48.5)
        truth[:2] += np.array([gap, -gap]) * true_se / 2
        hits = defaultdict(int)
        for _ in range(replicates):
            runs = gen.runs(truth, seeds, rng)
            values = np.column_stack([runs.mean(axis=(1, 2)), np.ones(k)])
            study = Study(values, runs, truth)
            for model in scenario["models"]:
                if model == "old":
                    hit = old_dominated(values[:2], old_errors(study)[:2])[0, 1]
                else:
                    noise = new_noise(study, scenario["models"][model]).take([0, 1])
                    hit = rule.matrix(values[:2], DIRECTIONS, noise)[0, 1]
                hits[model] += bool(hit)
        out[gap] = {m: hits[m] / replicates for m in scenario["models"]}
    return out, true_se


def one_candidate_sd(gen: Generator, seeds: int, accuracy: float = 48.5, draws: int = 400):
    """The true sd of one candidate's n-seed mean over seeds and test sets (simulated)."""
    rng = np.random.default_rng(11)
    runs = np.stack([gen.runs(np.array([accuracy]), seeds, rng)[0] for _ in range(draws)])
    return float(runs.mean(axis=(1, 2)).std(ddof=1))


def ratio_interval(pairs: list[tuple[int, int]]) -> tuple[float, float, float]:
    """(rate, low, high): called over members, 95 % bootstrap over studies."""
    called = np.array([p[0] for p in pairs], float)
    members = np.array([p[1] for p in pairs], float)
    rate = called.sum() / members.sum()
    result = stats.bootstrap(
        (called, members), lambda c, m: c.sum() / m.sum(), paired=True, vectorized=False,
        n_resamples=2000, method="percentile", random_state=np.random.default_rng(1),
    )  # fmt: skip
    return float(rate), *map(float, result.confidence_interval)


def calibration_rows(chance: np.ndarray, truth: np.ndarray, base: np.ndarray):
    rows = []
    for low, high in zip(BINS[:-1], BINS[1:]):
        inside = (chance >= low) & (chance < high)
        count = int(inside.sum())
        if not count:
            continue
        observed = truth[inside].mean()
        ci = stats.binomtest(int(truth[inside].sum()), count).proportion_ci(0.95)
        predicted = chance[inside].mean()
        rows.append({
            "bin": f"[{low:.1f}, {min(high, 1.0):.1f}{']' if high > 1 else ')'}",
            "predicted": predicted, "value": observed, "low": ci.low, "high": ci.high,
            "count": count, "goal": "|observed - predicted| <= 0.10",
            "met": abs(observed - predicted) <= 0.10,
        })  # fmt: skip
    brier, control = float(((chance - truth) ** 2).mean()), float(((base - truth) ** 2).mean())
    rows.append({
        "bin": "all", "measure": "p_front Brier score", "value": brier, "control": control,
        "count": len(chance), "goal": "below the base-rate control's", "met": brier < control,
    })  # fmt: skip
    return rows


# --------------------------------------------------------------- leave one seed out (real)
def leave_one_seed_out(yard: Yardstick) -> list[dict]:
    """Coverage of the held-out seed by the interval from the other two, top-1 and loss."""
    rows = []
    for metric, table in (("top1", yard.top1), ("test_loss", yard.loss)):
        keys = sorted(table)
        held = {"new": 0, "old": 0}
        total = 0
        for c in keys:
            for s in range(len(table[c])):
                rest = [v for i, v in enumerate(table[c]) if i != s]
                others = [table[o] for o in keys if o != c]
                pooled, df = pooled_variance([np.var(v, ddof=1) for v in [*others, rest]],
                                             [len(v) for v in [*others, rest]])  # fmt: skip
                error = table[c][s] - np.mean(rest)
                spread = math.sqrt(pooled * (1 + 1 / len(rest)))  # the test term cancels
                held["new"] += abs(error) <= stats.t.ppf(0.975, df) * spread
                old = pooled
                if metric == "top1":  # never below the binomial, z
                    old = max(pooled, accuracy_variance(np.mean(rest)))
                held["old"] += abs(error) <= norm.ppf(0.975) * math.sqrt(old * (1 + 1 / len(rest)))
                total += 1
        for model, count in held.items():
            ci = stats.binomtest(int(count), total).proportion_ci(0.95)
            rows.append({
                "scenario": "yardstick, leave one seed out", "model": model,
                "measure": f"{metric}: 95 % interval coverage of the held-out seed",
                "value": count / total, "low": ci.low, "high": ci.high, "count": total,
                "goal": "0.95 inside [low, high]", "met": ci.low <= 0.95 <= ci.high,
            })  # fmt: skip
    return rows


def accuracy_variance(accuracy: float) -> float:
    from dvbench.metrics import accuracy_standard_error

    return accuracy_standard_error(accuracy, IMAGES) ** 2


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    from dvbench.files import write_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast check: few studies")
    parser.add_argument("--replicates", type=int, default=None, help="studies a scenario")
    parser.add_argument("--candidates", type=int, default=12, help="candidates a study")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not YARDSTICK.is_file():
        print(f"bench_noise_model: no yardstick records at {YARDSTICK}", file=sys.stderr)
        return 2
    replicates = args.replicates or (25 if args.quick else 600)
    yard = read_yardstick(YARDSTICK)
    coef, residual, span_width, df = trend_and_between(yard)
    seed_sd = yard.seed_sd
    x = np.log(list(yard.gflops.values()))
    phi, extra, source = outcome_targets()
    accuracy = float(np.mean([np.mean(v) for v in yard.top1.values()]))
    gen = Generator.solve(seed_sd, phi, extra, accuracy)
    noise_of_mean = one_candidate_sd(gen, 3) ** 2  # a 3-seed mean's variance, test set and all
    upper = df * residual / stats.chi2.ppf(0.05, df) - noise_of_mean
    print(f"yardstick: seed sd {seed_sd:.3f} ({yard.seed_df} df), trend {coef[1]:.3f}/log GFLOP, "
          f"between-candidate variance {residual - noise_of_mean:.3f} (upper 95 % {upper:.3f}); "
          f"phi {phi:.3f}, extra {extra:.4f} from {source}", flush=True)  # fmt: skip
    print(f"generator: lam {gen.lam:.3f}, g {gen.g:.4f}, w {gen.w:.4f}; one seed's binomial SE "
          f"{math.sqrt(accuracy_variance(accuracy)):.3f}, a 3-seed mean's true sd "
          f"{math.sqrt(noise_of_mean):.3f}", flush=True)  # fmt: skip
    prior = (seed_sd, yard.seed_df)
    with_phi = (seed_sd, yard.seed_df, math.sqrt(phi))
    span = (x.min(), x.max())
    upper_sd = math.sqrt(max(upper, 0.01))
    spreads = (
        ("near-zero spread (the yardstick's estimate)", 0.05, 1.0),
        ("low spread (half the upper bound)", upper_sd / 2, 1.0),
        ("high spread (the yardstick's upper 95 % bound)", upper_sd, 1.0),
        ("flat trend, low spread", upper_sd / 2, 0.0),
    )
    settings = (
        ("1 seed + prior", 1, {"old": None, "new": prior, "new+phi": with_phi}),
        ("3 seeds", 3, {"old": None, "new": None}),
    )
    rows = []
    for (label, seeds, models), (spread, between, slope) in itertools.product(settings, spreads):
        name = f"{label}; {spread}, sd {between:.2f}"
        scenario = {"seeds": seeds, "between": between, "slope": slope, "models": models,
                    "seed": len(rows) + 1}  # fmt: skip
        wrong, chances, truths = simulate(scenario, gen, coef, span, replicates, args.candidates)
        truth = np.concatenate(truths).astype(float)
        base = np.concatenate([np.full(len(t), t.mean()) for t in truths])
        for model in models:
            rate, low, high = ratio_interval(wrong[model])
            rows.append({
                "scenario": name, "model": model, "measure": "true front member called dominated",
                "value": rate, "low": low, "high": high,
                "count": sum(p[1] for p in wrong[model]), "goal": "<= 0.05", "met": rate <= 0.05,
            })  # fmt: skip
            for row in calibration_rows(np.concatenate(chances[model]), truth, base):
                rows.append(
                    {
                        "scenario": name,
                        "model": model,
                        "measure": row.pop("measure", "p_front calibration"),
                        **row,
                    }
                )
        print(f"{name}: done", flush=True)
    for label, seeds, models in settings:
        pairs = replicates * 2
        scenario = {"seeds": seeds, "models": models, "seed": 100 + seeds}
        found, true_se = power(scenario, gen, pairs, args.candidates)
        for gap, by_model in found.items():
            for model, share in by_model.items():
                ci = stats.binomtest(round(share * pairs), pairs).proportion_ci(0.95)
                rows.append({
                    "scenario": f"{label}; two candidates of one cost", "model": model,
                    "measure": f"power: the worse called dominated, {gap:g} true SE "
                               f"({true_se:.2f}) apart",
                    "value": share, "low": ci.low, "high": ci.high, "count": pairs,
                })  # fmt: skip
    rows += leave_one_seed_out(yard)
    table = pd.DataFrame(rows)
    table.insert(0, "studies", replicates)
    table.insert(1, "candidates", args.candidates)
    write_atomic(table, args.out)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 500)
    shown = ["scenario", "model", "measure", "bin", "predicted", "value", "low", "high",
             "control", "count", "met"]  # fmt: skip
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
