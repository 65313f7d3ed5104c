"""Racing repeats judged on the cifar yardstick's truth, by simulated studies: do seeds 2 and 3
spent where the front is unsure beat the same seeds spent on the cheapest networks?

Truth (``benchmarks/_policies.py``'s pool: the cifar yardstick and its extension, 15-epoch
top-1 of 3 seeds, GFLOPs at 224 px): a candidate's true top-1 is the grand mean plus
sqrt(R) times its seed mean's deviation from it, R the reliability of a 3-seed mean
(Spearman-Brown of the seeds table's ICC(1,1)), so that the truths spread as much as the
networks do rather than as much as their noisy means; the seed sd is the table's pooled
within-candidate sd. A second scenario stretches the truths' spread 3x.

Every study is a real ``run_search`` with the pool's candidates enqueued and a
``SimulatedEvaluator``: a run measures the truth plus normal noise of the seed sd drawn from its
training seed, on 8,000 test images. Replicates differ in the study seed. Policies (the space's
``repeats:`` block, confidence 0.95): ``racing`` (``{seeds: 3}``: seeds 2 and 3 only where the
front probability is in (0.05, 0.95)), ``uniform 3 seeds`` (``{seeds: 3, rule: uniform}``) and
``one seed`` (the uniform study's first run of every candidate: the training seeds a study
without repeats draws). Every candidate is trained; a policy's estimate is the mean of its
seeds, judged with the measures of ``benchmarks/_measures.py`` (regret at equal cost, front
precision and recall of the estimates' front, hypervolume share) against the truth.

Controls at racing's compute (its S seeds over n candidates; the seeds drawn from the same
noise model): ``cheapest-k`` gives the S - n extra seeds to the cheapest candidates (two each,
cost only); ``random-k`` to candidates at random (averaged over draws); ``permuted`` keeps
racing's own allocation after the truths are shuffled among the candidates. Differences are
paired within a replicate; 95 % intervals bootstrap the replicates (``scipy.stats.bootstrap``,
percentile). The check: the uniform study's front, scored against its permuted control.
Output: ``results/benchmarks/racing_policies.csv`` and ``racing_policies_checks.csv``.

    python benchmarks/bench_racing.py                 # 10 replicates a scenario, ~20 core-min
    python benchmarks/bench_racing.py --replicates 5
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from dvbench.stats import DEFAULT_CONFIDENCE  # noqa: E402

OUT = REPO / "results" / "benchmarks" / "racing_policies"
WIDTHS, DEPTHS = (8, 16, 24, 32), (1, 2, 3, 4, 5)  # up to 20 networks, one per candidate
SPACE = {
    "name": "racing",
    "knobs": {"width": {"choices": list(WIDTHS)}, "depth3": {"low": 1, "high": 5}},
    "fixed": {
        "head_dim": 8, "width_multipliers": [1, 2, 3, 4], "depth1": 1, "depth2": 1,
        "depth4": 1, "mlp_ratio": 2, "stem_hidden_dim": 8, "semantic_grid": 1,
    },
    "objectives": [{"metric": "top1", "direction": "maximize"},
                   {"metric": "gflops", "direction": "minimize"}],
    "sampler": {"name": "random"},
    "train": {"data": "digits", "resolution": 16, "epochs": 1, "train_samples": 2},
    "profile": {"resolution": 32},
    "confidence": DEFAULT_CONFIDENCE,
}  # fmt: skip
SEEDS = 3
STUDIES = {"racing": {"seeds": SEEDS}, "uniform 3 seeds": {"seeds": SEEDS, "rule": "uniform"}}
DRAWS = 20
READER = "uniform 3 seeds' front (reads accuracy)"


def fitted_truth(pool, stretch: float) -> tuple[np.ndarray, float]:
    """(true top-1 per candidate, seed sd) from the pool's top-epoch seeds table."""
    from dvbench.stats.reliability import icc, mean_reliability

    table = pool.top1[pool.top_epoch]
    fit = icc(table)
    means = table.mean(axis=1)
    shrink = math.sqrt(max(mean_reliability(fit.icc, table.shape[1]), 0.0))
    return means.mean() + stretch * shrink * (means - means.mean()), fit.seed_sd


def one_study(folder: Path, truth: np.ndarray, cost: np.ndarray, sd: float, repeats: dict,
              seed: int) -> list[tuple[int, int]]:  # fmt: skip
    """The (candidate, training seed) runs of one simulated study, in order."""
    from dvbench.evaluate import SimulatedEvaluator
    from dvbench.search import SearchOptions, join_study, run_search
    from dvbench.space import load_space

    keys = list(itertools.product(WIDTHS, DEPTHS))[: len(truth)]
    table = {k: ({"params_m": 1.0, "gflops": float(g)}, float(t))
             for k, g, t in zip(keys, cost, truth)}  # fmt: skip
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump({**SPACE, "n_trials": len(truth), "repeats": repeats}))
    space = load_space(path)
    options = SearchOptions(space=space, results_dir=folder, seed=seed, quiet=True)
    study = join_study(options)
    for width, depth in keys:
        study.enqueue_trial({"width": width, "depth3": depth})
    evaluator = SimulatedEvaluator.for_space(
        space, key=lambda cfg: (cfg.embed_dims[0], cfg.depths[2]), truth=table, seed_sd=sd
    )
    run_search(options, evaluator=evaluator)
    return [(keys.index(key), training_seed) for key, training_seed in evaluator.runs]


def measured(runs: list[tuple[int, int]], truth: np.ndarray, sd: float, *, first_only=False):
    """(each candidate's mean of its runs, seeds per candidate), from the runs the simulated
    evaluator made (its value: truth + sd * N(0, 1) drawn from the run's training seed)."""
    values: dict[int, list[float]] = {}
    for candidate, seed in runs:
        if first_only and candidate in values:
            continue
        noise = float(np.random.default_rng(seed).standard_normal())
        values.setdefault(candidate, []).append(truth[candidate] + sd * noise)
    n = len(truth)
    return np.array([np.mean(values[c]) for c in range(n)]), np.array(
        [len(values[c]) for c in range(n)]
    )


def _drawn(truth: np.ndarray, seeds: np.ndarray, sd: float, rng) -> np.ndarray:
    return truth + sd * rng.standard_normal(len(truth)) / np.sqrt(seeds)


def _allocation(n: int, extra: int, order: np.ndarray) -> np.ndarray:
    """Seeds per candidate: one each, the ``extra`` given two at a time along ``order``."""
    seeds = np.ones(n, int)
    for candidate in order:
        if extra <= 0:
            break
        more = min(SEEDS - 1, extra)
        seeds[candidate] += more
        extra -= more
    return seeds


def replicate(truth: np.ndarray, cost: np.ndarray, sd: float, seed: int) -> dict:
    """Every row's measures on one replicate (the two studies and the controls)."""
    import _measures as measures

    runs = {}
    for policy, repeats in STUDIES.items():
        with tempfile.TemporaryDirectory() as tmp:
            runs[policy] = one_study(Path(tmp), truth, cost, sd, repeats, seed)
    everyone = np.arange(len(truth))
    estimates = {
        "racing": measured(runs["racing"], truth, sd),
        "uniform 3 seeds": measured(runs["uniform 3 seeds"], truth, sd),
        "one seed": measured(runs["uniform 3 seeds"], truth, sd, first_only=True),
    }
    rows = {name: {**measures.Scorer(truth, cost, estimate=est)(everyone),
                   "seeds_per_candidate": counts.mean()}
            for name, (est, counts) in estimates.items()}  # fmt: skip
    race_seeds = estimates["racing"][1]
    extra = int(race_seeds.sum()) - len(truth)
    rng = np.random.default_rng(10_000 + seed)

    def scored(allocation: np.ndarray, true: np.ndarray) -> dict:
        est = _drawn(true, allocation, sd, rng)
        return measures.Scorer(true, cost, estimate=est)(everyone)

    def mean(values: list[dict]) -> dict:
        return {k: float(np.nanmean([v[k] for v in values])) for k in values[0]}

    cheapest = _allocation(len(truth), extra, np.argsort(cost, kind="stable"))
    rows["cheapest-k"] = mean([scored(cheapest, truth) for _ in range(DRAWS)])
    rows["random-k"] = mean([scored(_allocation(len(truth), extra, rng.permutation(len(truth))),
                                    truth) for _ in range(DRAWS)])  # fmt: skip
    rows["permuted"] = mean([scored(race_seeds, truth[rng.permutation(len(truth))])
                             for _ in range(DRAWS)])  # fmt: skip
    # the check: the uniform study's estimated front against its permuted control
    est = estimates["uniform 3 seeds"][0]
    front = measures.true_front(est, cost)
    rows["check reader"] = measures.Scorer(truth, cost, estimate=est)(front)
    rows["check permuted"] = measures.permuted_control(front, truth, cost, estimate=est,
                                                       draws=DRAWS, rng=rng)  # fmt: skip
    return rows


ROWS = ("racing", "cheapest-k", "random-k", "permuted", "uniform 3 seeds", "one seed")


def summarise(replicates: list[dict], scenario: str) -> tuple[list[dict], list]:
    """Table rows (mean and interval of each measure; paired gains of racing over each other
    row) and the checks, over the replicates."""
    import _measures as measures
    from _policies import verdict
    from scipy.stats import bootstrap

    def interval(values: np.ndarray) -> tuple[float, float, float]:
        values = values[np.isfinite(values)]
        if len(values) < 2 or np.ptp(values) == 0:
            point = float(values.mean()) if len(values) else math.nan
            return point, point, point
        ci = bootstrap((values,), np.mean, n_resamples=2000, method="percentile",
                       random_state=np.random.default_rng(0)).confidence_interval  # fmt: skip
        return float(values.mean()), float(ci.low), float(ci.high)

    def column(row: str, measure: str) -> np.ndarray:
        return np.array([r[row][measure] for r in replicates], float)

    out = []
    for row in ROWS:
        entry = {"scenario": scenario, "row": row, "replicates": len(replicates)}
        if "seeds_per_candidate" in replicates[0][row]:
            entry["seeds_per_candidate"] = column(row, "seeds_per_candidate").mean()
        for measure in measures.MEASURES:
            value, low, high = interval(column(row, measure))
            entry.update({measure: value, f"{measure}_low": low, f"{measure}_high": high})
            if row != "racing":  # racing's gain over this row, paired by replicate
                sign = 1.0 if measures.HIGHER_IS_BETTER[measure] else -1.0
                gain = sign * (column("racing", measure) - column(row, measure))
                g, g_low, g_high = interval(gain)
                entry.update({f"{measure}_gain": g, f"{measure}_gain_low": g_low,
                              f"{measure}_gain_high": g_high})  # fmt: skip
        out.append(entry)
    checks = []
    for measure in measures.MEASURES:
        sign = 1.0 if measures.HIGHER_IS_BETTER[measure] else -1.0
        worse = sign * (column("check reader", measure) - column("check permuted", measure))
        _, low, high = interval(worse)
        checks.append(
            measures.MeasureCheck(
                measure,
                float(column("check reader", measure).mean()),
                float(column("check permuted", measure).mean()),
                float(worse.mean()),
                low,
                high,
            )
        )
    checked = any(c.passes for c in checks if c.measure == "regret")
    for entry in out:
        entry["regret_passes_check"] = checked
        if entry["row"] != "racing":
            entry["verdict"] = verdict(entry["regret_gain"], entry["regret_gain_low"],
                                       entry["regret_gain_high"], checked=checked,
                                       control=entry["row"])  # fmt: skip
            entry["verdict"] = "racing " + entry["verdict"]
    return out, checks


def main(argv: list[str] | None = None) -> int:
    import _policies

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not (_policies.YARDSTICK[0] / "records.jsonl").is_file():
        print(f"bench_racing: no calibration at {_policies.YARDSTICK[0]}", file=sys.stderr)
        return 2
    pool = _policies.read_pool(list(_policies.YARDSTICK))
    if len(pool) > len(WIDTHS) * len(DEPTHS):
        print(f"bench_racing: {len(pool)} candidates, the space holds 20", file=sys.stderr)
        return 2
    print(_policies.describe(pool), flush=True)
    rows, checked = [], []
    for scenario, stretch in (("measured spread", 1.0), ("3x the measured spread", 3.0)):
        truth, sd = fitted_truth(pool, stretch)
        print(f"{scenario}: truths {truth.min():.2f}-{truth.max():.2f}, seed sd {sd:.2f}",
              flush=True)  # fmt: skip
        replicates = [replicate(truth, pool.gflops, sd, seed) for seed in range(args.replicates)]
        table, checks = summarise(replicates, scenario)
        rows += table
        checked.append(_policies.checks_frame({READER: checks}, scenario=scenario))
    out = pd.DataFrame(rows)
    out.insert(1, "pool", " + ".join(pool.sources))
    shown = ["scenario", "row", "seeds_per_candidate", "regret", "regret_low", "regret_high",
             "regret_gain", "regret_gain_low", "regret_gain_high", "front_precision",
             "front_recall", "verdict"]  # fmt: skip
    _policies.publish(out, pd.concat(checked, ignore_index=True), args.out, shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
