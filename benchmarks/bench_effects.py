"""Knob effects at equal cost: do the 95 % intervals of `dvbench.stats.effects` hold, on studies
shaped like the measured cifar yardstick? And what do they say about the yardstick itself?

PLAN (declared before the figures in results/benchmarks/effects_simulation.csv were drawn)
------------------------------------------------------------------------------------------
Why: the report's "What the knobs do at equal cost" section states, per knob, an effect and a
95 % interval from `knob_effects` (issue #35 item 6). Its intervals must cover the truth and
must not call a knob that does nothing "better" or "worse" more often than 5 % of the time.

Synthetic studies over the real `cifar` space: a pool of POOL candidates drawn at random from
it (`SearchSpace.random_candidates`, seed 0), each one's GFLOPs counted at 32 px (the yardstick's
resolution). A study draws G of them; candidate g's true top-1 is 51.4 + 1.6 log10(GFLOPs)
(the committed yardstick's cost line) + the planted effects + a deviation of sd 0.85 (the
yardstick's between-candidate sd, larger than its 0.5 at equal cost: conservative), and each
seed adds noise of sd 0.5 (the yardstick's seed sd). Planted at equal cost:
`semantic_mlp_ratio_merge` 2 vs 1: +1.0 point (the planted term); `depth4` 2 vs 1: 0 (the zero
term); every other knob 0. The family scenario adds two baseline families of 4 networks each
(costs log-uniform over the pool's), `pvt_v2` -1.0 point against Dual-ViT (planted) and `swin`
0 (zero); there the Dual-ViT knobs plant nothing (the family fit compares a family with the
Dual-ViT candidates as drawn, so a knob effect would shift the truth by its share).

Scenarios: 14 x 3 seeds (the yardstick with its 6 new candidates), 14 x 2, 24 x 2, 24 x 3,
24 with search-like seeds (1 seed, 3 for a quarter of them), 24 x 2 with a candidate sd that
grows 4x from the costliest to the cheapest (heteroskedastic), 20 x 2 + two families; each with
the default covariance (CR2; `model="auto"`: joint at 24, one knob at a time at 14). Controls
that must be able to fail: CR1 with t(G-1) (the textbook few-cluster choice) at 24 x 2 and
14 x 3.

Goals, per scenario, on the point estimate with its Wilson 95 % Monte-Carlo interval: the
planted term's interval covers it in >= 90 % of studies; the zero term is called better or
worse in <= 5 %. Verdict: `met`; `within Monte-Carlo error` (the point misses, the interval
reaches the goal); `missed`. Also reported: power (the planted term distinguished), the share of
studies where ANY of the nine zero-effect knobs is distinguished (95 % is per interval, not per
study), the planted interval's mean width.

Pilots (seeds 0 and 1, other pools, 20-300 studies a scenario) chose the estimator: CR1 missed
both goals in the joint model; CR2 with t on G - K missed the false-positive goal for a family
of four networks, hence Bell-McCaffrey degrees of freedom. They also found a mistake in the
family scenario's truth (a planted knob effect moved the Dual-ViT mean). The figures in the
CSV are a fresh draw (seed 2, its own pool), run once.

Real data: the same estimator on the yardstick's candidates
(results/benchmarks/calibrate/yardstick_cifar-300-32-15, and `..._curves` when present: its
candidates 8-13), top-1 and test loss of every seed at epoch 15, printed.

    python benchmarks/bench_effects.py                  # ~5 min on one core
    python benchmarks/bench_effects.py --studies 50     # a quick look
    python benchmarks/bench_effects.py --yardstick      # the real candidates only
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from dvbench.stats.effects import NOT_DISTINGUISHED, KnobEffects, knob_effects

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "effects_simulation.csv"
YARDSTICK = REPO / "results" / "benchmarks" / "calibrate" / "yardstick_cifar-300-32-15"
YARDSTICK_FOLDERS = (YARDSTICK, YARDSTICK.with_name(YARDSTICK.name + "_curves"))
POOL, RESOLUTION = 96, 32
INTERCEPT, SLOPE = 51.4, 1.6  # top-1 = INTERCEPT + SLOPE log10(GFLOPs): the yardstick's line
CANDIDATE_SD, SEED_SD = 0.85, 0.5
PLANTED = ("semantic_mlp_ratio_merge", "2", 1.0)  # knob, level, effect at equal cost
ZERO = ("depth4", "2")
FAMILIES = {"pvt_v2": -1.0, "swin": 0.0}  # planted family effects against Dual-ViT
FAMILY_SIZE = 4
COVERAGE_GOAL, FALSE_POSITIVE_GOAL = 0.90, 0.05


@dataclass(frozen=True)
class Scenario:
    name: str
    candidates: int
    seeds: int  # 0: search-like (1 seed, 3 for a quarter)
    covariance: str = "CR2"
    heteroskedastic: bool = False
    families: bool = False


SCENARIOS = (
    Scenario("14 x 3 seeds", 14, 3),
    Scenario("14 x 2 seeds", 14, 2),
    Scenario("24 x 2 seeds", 24, 2),
    Scenario("24 x 3 seeds", 24, 3),
    Scenario("24, search-like seeds", 24, 0),
    Scenario("24 x 2, heteroskedastic", 24, 2, heteroskedastic=True),
    Scenario("20 x 2 + 2 families x 4", 20, 2, families=True),
    Scenario("control: 24 x 2, CR1", 24, 2, covariance="CR1"),
    Scenario("control: 14 x 3, CR1", 14, 3, covariance="CR1"),
)


def cost_pool(count: int = POOL, seed: int = 0) -> pd.DataFrame:
    """``count`` random candidates of the cifar space: their knobs and GFLOPs at 32 px."""
    import torch

    from dvbench.models import DualViT
    from dvbench.profile.flops import count_flops
    from dvbench.space import load_space

    torch.set_num_threads(1)
    drawn = load_space("cifar").random_candidates(count, seed, img_size=RESOLUTION)
    return pd.DataFrame(
        [{**knobs, "gflops": count_flops(DualViT(cfg), RESOLUTION).gflops} for knobs, cfg in drawn]
    )


def one_study(pool: pd.DataFrame, scenario: Scenario, rng: np.random.Generator) -> pd.DataFrame:
    """The runs of one synthetic study (one row per seed)."""
    picked = pool.iloc[rng.choice(len(pool), scenario.candidates, replace=False)]
    picked = picked.assign(family="dualvit").reset_index(drop=True)
    knob, level, effect = PLANTED
    truth = effect * (picked[knob].astype(str) == level).to_numpy(float)
    if scenario.families:  # Dual-ViT plants nothing: the family contrasts are then exact
        truth[:] = 0.0
        low, high = np.log(pool["gflops"].min()), np.log(pool["gflops"].max())
        others = [
            {"family": name, "gflops": float(np.exp(rng.uniform(low, high)))}
            for name in FAMILIES
            for _ in range(FAMILY_SIZE)
        ]
        picked = pd.concat([picked, pd.DataFrame(others)], ignore_index=True)
        truth = np.concatenate([truth, [FAMILIES[o["family"]] for o in others]])
    log_cost = np.log10(picked["gflops"].to_numpy())
    sd = np.full(len(picked), CANDIDATE_SD)
    if scenario.heteroskedastic:  # 4x the sd at the cheapest end, on a log-cost ramp
        share = (log_cost.max() - log_cost) / np.ptp(log_cost)
        sd = CANDIDATE_SD * np.exp(np.log(4.0) * (share - 0.5)) * 0.8
    mean = INTERCEPT + SLOPE * log_cost + truth + rng.normal(0.0, sd)
    if scenario.seeds:
        seeds = np.full(len(picked), scenario.seeds)
    else:
        seeds = np.where(rng.random(len(picked)) < 0.25, 3, 1)
    runs = (
        picked.loc[picked.index.repeat(seeds)].reset_index().rename(columns={"index": "candidate"})
    )
    runs["top1"] = np.repeat(mean, seeds) + rng.normal(0.0, SEED_SD, len(runs))
    return runs


def judged_terms(scenario: Scenario) -> tuple[tuple[str, str, float], tuple[str, str]]:
    if scenario.families:
        return ("family", "pvt_v2", FAMILIES["pvt_v2"]), ("family", "swin")
    return PLANTED, ZERO


def score(effects: KnobEffects, scenario: Scenario) -> dict:
    """What one study's intervals say about the planted and zero terms."""
    rows = effects.knob_rows()
    (knob, level, effect), (zero_knob, zero_level) = judged_terms(scenario)
    planted = rows[(rows["knob"] == knob) & (rows["level"] == level)]
    zero = rows[(rows["knob"] == zero_knob) & (rows["level"] == zero_level)]
    zeros = rows[(rows["model"] != "family") & (rows["knob"] != PLANTED[0])]
    out = {"model": effects.model, "fitted": len(planted) == 1 and len(zero) == 1}
    if out["fitted"]:
        p, z = planted.iloc[0], zero.iloc[0]
        out.update(
            covered=bool(p["ci_low"] <= effect <= p["ci_high"]),
            found=p["verdict"] != NOT_DISTINGUISHED,
            false_positive=z["verdict"] != NOT_DISTINGUISHED,
            any_zero=bool((zeros["verdict"] != NOT_DISTINGUISHED).any()),
            width=float(p["ci_high"] - p["ci_low"]),
        )
    return out


def proportion(hits: int, n: int) -> tuple[float, float, float]:
    interval = binomtest(hits, n).proportion_ci(method="wilson")
    return hits / n, interval.low, interval.high


def verdict(point: float, low: float, high: float, goal: float, *, at_least: bool) -> str:
    if (point >= goal) if at_least else (point <= goal):
        return "met"
    reaches = high >= goal if at_least else low <= goal
    return "within Monte-Carlo error" if reaches else "missed"


def run_scenario(pool: pd.DataFrame, scenario: Scenario, studies: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    scores = []
    for _ in range(studies):
        runs = one_study(pool, scenario, rng)
        effects = knob_effects(
            runs, objective="top1", direction="maximize", cost="gflops",
            knobs=[c for c in pool.columns if c != "gflops"], family="family",
            family_reference="dualvit", covariance=scenario.covariance,
        )  # fmt: skip
        scores.append(score(effects, scenario))
    frame = pd.DataFrame(scores)
    fitted = frame[frame["fitted"]]
    n = len(fitted)
    (knob, level, effect), (zero_knob, zero_level) = judged_terms(scenario)
    cover, cover_low, cover_high = proportion(int(fitted["covered"].sum()), n)
    fp, fp_low, fp_high = proportion(int(fitted["false_positive"].sum()), n)
    return {
        "scenario": scenario.name, "candidates": scenario.candidates,
        "seeds": scenario.seeds or "1, or 3 for 25 %", "covariance": scenario.covariance,
        "model": "/".join(sorted(set(frame["model"]))), "studies": studies, "fitted": n,
        "planted_term": f"{knob} {level}", "planted_effect": effect,
        "coverage": cover, "coverage_low": cover_low, "coverage_high": cover_high,
        "coverage_verdict": verdict(cover, cover_low, cover_high, COVERAGE_GOAL, at_least=True),
        "zero_term": f"{zero_knob} {zero_level}",
        "false_positive": fp, "false_positive_low": fp_low, "false_positive_high": fp_high,
        "false_positive_verdict": verdict(fp, fp_low, fp_high, FALSE_POSITIVE_GOAL,
                                          at_least=False),
        "power": float(fitted["found"].mean()),
        "any_zero_knob_distinguished": float(fitted["any_zero"].mean()),
        "planted_ci_width": float(fitted["width"].mean()),
        "seconds": time.perf_counter() - start,
    }  # fmt: skip


# --------------------------------------------------------------------------- the yardstick
def yardstick_runs(folders=YARDSTICK_FOLDERS) -> pd.DataFrame:
    """Every seed's last-epoch run of the yardstick's candidates: candidate, seed, top1,
    test_loss, gflops and the knobs (a candidate re-run in a later folder keeps the first)."""
    from dvbench.calibrate import read_records

    rows, seen = [], set()
    for folder in folders:
        if not (folder / "records.jsonl").is_file():
            continue
        records = read_records(folder)
        epochs = float(records[0]["train"]["epochs"])
        proxies = {r["candidate"]: r for r in records if r.get("unit") == "proxies"}
        for record in records:
            key = (record.get("candidate"), record.get("seed"))
            if record.get("unit") != "rung" or record.get("epochs") != epochs or key in seen:
                continue
            proxy = proxies.get(record["candidate"])
            if proxy is None:
                continue
            seen.add(key)
            rows.append({
                "candidate": record["candidate"], "seed": record["seed"],
                "top1": record["top1"], "test_loss": record["test_loss"],
                "gflops": proxy["values"]["gflops"], **proxy["knobs"], "folder": folder.name,
            })  # fmt: skip
    return pd.DataFrame(rows)


def yardstick_effects(runs: pd.DataFrame) -> dict[str, KnobEffects]:
    """The knob effects at equal GFLOPs on the yardstick's top-1 and test loss."""
    not_knobs = ("candidate", "seed", "top1", "test_loss", "gflops", "folder")
    knobs = [c for c in runs.columns if c not in not_knobs]
    return {
        metric: knob_effects(
            runs, objective=metric, direction=direction, cost="gflops", knobs=knobs
        )
        for metric, direction in (("top1", "maximize"), ("test_loss", "minimize"))
    }


def print_yardstick() -> None:
    runs = yardstick_runs()
    if runs.empty:
        print("yardstick: no records found")
        return
    per_folder = runs.groupby("folder")["candidate"].nunique().to_dict()
    print(f"\nWhat the knobs do at equal cost on the yardstick: {runs['candidate'].nunique()} "
          f"candidates, {len(runs)} runs at the last epoch ({per_folder})")  # fmt: skip
    for metric, effects in yardstick_effects(runs).items():
        if effects.skipped:
            print(f"  {metric}: not fitted: {effects.skipped}")
            continue
        rows = effects.frame()
        told = rows[(rows["model"] != "cost") & (rows["verdict"] != NOT_DISTINGUISHED)]
        print(f"  {metric} ({effects.model}; adjusted R² on cost {effects.r2_adj_cost:.2f}, on "
              f"cost and knobs {effects.r2_adj_model:.2f}):")  # fmt: skip
        for row in rows.to_dict("records"):
            print(f"    {row['knob']:26s} {row['level']:>12s} vs {row['reference'] or '-':>3s} "
                  f"{row['effect']:+8.3f} [{row['ci_low']:+8.3f}, {row['ci_high']:+8.3f}]  "
                  f"{row['verdict']}")  # fmt: skip
        terms = len(rows) - 1
        print(f"    {len(told)} of {terms} knob terms distinguished at 95 % (about "
              f"{0.05 * terms:.1f} expected by chance)"
              + ("; nothing is told apart from cost" if told.empty else ""))  # fmt: skip
        for note in effects.notes:
            print(f"    note: {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=300, help="studies per scenario")
    parser.add_argument("--seed", type=int, default=2, help="pilots used 0 and 1")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--yardstick", action="store_true", help="only the real candidates")
    args = parser.parse_args()
    if args.studies < 1:
        print(f"bench_effects: --studies {args.studies}: at least 1", file=sys.stderr)
        return 2
    if not args.yardstick:
        from dvbench.files import write_atomic

        start = time.perf_counter()
        pool = cost_pool(seed=args.seed)
        print(f"pool: {len(pool)} cifar candidates, GFLOPs {pool['gflops'].min():.4f}-"
              f"{pool['gflops'].max():.4f} at {RESOLUTION} px "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        rows = []
        for index, scenario in enumerate(SCENARIOS):
            row = run_scenario(pool, scenario, args.studies, seed=args.seed * 1000 + index)
            rows.append(row)
            print(
                f"{row['scenario']:26s} {row['model']:5s} coverage {row['coverage']:.3f} "
                f"[{row['coverage_low']:.3f}, {row['coverage_high']:.3f}] "
                f"{row['coverage_verdict']:8s} false positive {row['false_positive']:.3f} "
                f"[{row['false_positive_low']:.3f}, {row['false_positive_high']:.3f}] "
                f"{row['false_positive_verdict']:8s} power {row['power']:.2f} any-zero "
                f"{row['any_zero_knob_distinguished']:.2f} ({row['seconds']:.0f} s)",
                flush=True,
            )
        write_atomic(pd.DataFrame(rows), args.out)
        print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s in all)")
    print_yardstick()
    return 0


if __name__ == "__main__":
    sys.exit(main())
