"""Multi-fidelity against full-fidelity search on the `small` space (issue: spend training
where the front is decided).

For each seed, two searches over the same number of candidates on
../shared/data/cifar10-large at 32 px (a training subset, --train-samples per class, and all
8,000 test images):

- full fidelity: every candidate trained for the top budget (9 epochs) in one go;
- multi-fidelity: the same space with ``fidelity: {rungs: [1, 3, 9], eta: 3}`` (asynchronous
  successive halving over Pareto ranks).

Both use the space's own sampler (NSGA-II, population 8) and seed, without the space's
pre-filter (every sampled candidate is trained on both sides). A candidate's network at
the top rung is the same in both (same seed; the schedule's horizon is the top rung and a
promotion continues the checkpoint), so both fronts are judged at the top rung as they
stand: the full-fidelity front over every candidate, the multi-fidelity final front over the
candidates that reached the top rung. Training seeds are keyed to each network, so a network
sampled by both searches measures the same accuracy in both. Reported: each front's normalised
hypervolume (see the search tables), the total training seconds and epochs (every run of every
candidate), and their ratios.

Then the trivial policies on the same compute, chosen among the full-fidelity candidates and
trained in full (their accuracies are the full study's): the k cheapest (cost only), the first
k of params_m's predicted front, and k at random, k = the multi-fidelity search's epochs over
the top budget. Every row -- multi-fidelity's final candidates included -- is scored by its
share of the full study's hypervolume and of its noise-aware front, with 95 % intervals over
the accuracies' noise (benchmarks/_policies.py). Each search is a study under
results/benchmarks/multifidelity/ (resumable: re-run the same command after a kill); the
tables are results/benchmarks/multifidelity.csv/.parquet (one row per search) and
multifidelity_policies.csv/.parquet (one row per seed and policy).

--workers N (default: one per usable core) runs the searches in N processes, each pinned to
one core; training seconds are one-core seconds on both sides.

    python benchmarks/bench_multifidelity.py                     # about 25 min on 2 cores
    python benchmarks/bench_multifidelity.py --seeds 0 --candidates 6 --train-samples 20
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "cifar10-large"
OUT = REPO / "results" / "benchmarks"


def _space(mode: str, args: argparse.Namespace):
    from dvbench.search import load_space
    from dvbench.search._rungs import Fidelity

    space = load_space("small")
    data = dataclasses.replace(
        space.data, source=str(args.data), resolution=32, train_samples=args.train_samples,
        test_samples=None,
    )  # fmt: skip
    rungs = tuple(float(r) for r in args.rungs.split(","))
    train = dataclasses.replace(space.train, epochs=rungs[-1])
    fidelity = Fidelity(rungs=rungs, eta=args.eta) if mode == "multi" else None
    return dataclasses.replace(
        space, data=data, train=train, fidelity=fidelity, n_trials=args.candidates,
        name=f"small_{mode}", prefilter=None,
    )  # fmt: skip


def _pin(cores: list[int], counter) -> None:
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    os.sched_setaffinity(0, {cores[index % len(cores)]})


def run_one(job: tuple[str, int, argparse.Namespace]) -> dict:
    import torch

    from dvbench.search import SearchOptions, run_search, trials_frame

    mode, seed, args = job
    torch.set_num_threads(1)
    space = _space(mode, args)
    options = SearchOptions(
        space=space, study_name=f"{mode}_seed{seed}", seed=seed, quiet=True,
        results_dir=args.out / "multifidelity",
    )  # fmt: skip
    summary = run_search(options)
    import optuna

    from dvbench.search import run_of
    from dvbench.search.storage import open_storage

    study = optuna.load_study(study_name=options.name, storage=open_storage(options.storage_url))
    frame = trials_frame(study)
    runs = [t for t in study.trials if t.state.name in ("COMPLETE", "FAIL")]
    train_s = sum(t.user_attrs.get("timings", {}).get("train_s", 0.0) for t in runs)
    epochs = 0.0
    for t in study.trials:
        if t.state.name != "COMPLETE":
            continue
        if space.fidelity is None:
            epochs += space.train.epochs
        else:
            rung, rungs = run_of(t).rung, space.fidelity.rungs
            epochs += rungs[rung] - (rungs[rung - 1] if rung else 0)
    top = frame["final"].fillna(False).astype(bool).sum() if "final" in frame else len(frame)
    return {
        "seed": seed,
        "mode": mode,
        "candidates": summary.completed,
        "at_top_rung": int(top),
        "front": len(summary.pareto),
        "hypervolume": summary.hypervolume,
        "train_s": train_s,
        "train_epochs": epochs,
        "checkpoint_peak_mb": (summary.checkpoint_peak_bytes or 0) / 1e6,
        "best_top1": float(summary.pareto["top1"].max()) if len(summary.pareto) else None,
    }


def _study_frame(args: argparse.Namespace, name: str):
    import optuna

    from dvbench.search import trials_frame
    from dvbench.search.storage import open_storage, study_folder_storage

    url = study_folder_storage(args.out / "multifidelity" / name)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    frame = trials_frame(study)
    frame = frame[(frame["state"] == "COMPLETE") & ~frame["baseline"].astype(bool)]
    if "final" in frame:
        frame = frame[frame["final"].fillna(False).astype(bool)]
    return frame


def _network(config: str) -> str:
    import json

    fields = json.loads(config)
    fields.pop("name", None)
    return json.dumps(fields, sort_keys=True)


def policy_rows(args: argparse.Namespace, seeds: list[int], table):
    """Multi-fidelity and the trivial policies on its compute, scored on the full study."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(REPO / "benchmarks"))
    import _policies as policies

    rows = []
    for seed in seeds:
        full = _study_frame(args, f"full_seed{seed}")
        multi = _study_frame(args, f"multi_seed{seed}")
        union = pd.concat([full, multi[~multi["config"].map(_network).isin(
            set(full["config"].map(_network)))]], ignore_index=True)  # fmt: skip
        top1 = union["top1"].to_numpy(float)
        errors = union["top1_se"].fillna(0).to_numpy(float)
        gflops = union["gflops"].to_numpy(float)
        params = union["params_m"].to_numpy(float)
        pool = np.arange(len(full))
        networks = union["config"].map(_network).tolist()
        final = np.array(sorted({networks.index(_network(c)) for c in multi["config"]}))
        row = table[(table["seed"] == seed) & (table["mode"] == "multi")].iloc[0]
        per_candidate = table[(table["seed"] == seed) & (table["mode"] == "full")].iloc[0]
        k = max(1, round(row["train_epochs"] / (per_candidate["train_epochs"] / len(full))))
        rules = {
            "multi-fidelity (its final candidates)": lambda rng, final=final: final,
            f"cheapest {k} (cost only)": policies.cheapest(gflops, pool, k),
            f"params_m predicted front, {k}": policies.predicted_front(params, gflops, pool, k),
            f"random {k}": policies.random_k(pool, k),
        }
        for policy, choose in rules.items():
            scored = policies.scores(top1, errors, gflops, pool, choose, seed=seed)
            rows.append({"seed": seed, "policy": policy, "trained_in_full": k, **scored})
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--train-samples", type=int, default=100, help="per class")
    parser.add_argument("--rungs", default="1,3,9", help="epochs; the last is full fidelity")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"bench_multifidelity: {args.data} not found (the shared CIFAR-10)", file=sys.stderr)
        return 2
    import pandas as pd

    from dvbench.files import write_atomic

    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [("full", s, args) for s in seeds] + [("multi", s, args) for s in seeds]
    cores = sorted(os.sched_getaffinity(0))
    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    with context.Pool(args.workers, initializer=_pin, initargs=(cores, counter)) as pool:
        rows = list(pool.imap_unordered(run_one, jobs))
    table = pd.DataFrame(rows).sort_values(["seed", "mode"]).reset_index(drop=True)
    policies = policy_rows(args, seeds, table)
    full = table[table["mode"] == "full"].set_index("seed")
    table["hv_vs_full"] = table.apply(
        lambda r: r["hypervolume"] / full.loc[r["seed"], "hypervolume"], axis=1
    )
    table["compute_vs_full"] = table.apply(
        lambda r: r["train_s"] / full.loc[r["seed"], "train_s"], axis=1
    )
    table["epochs_vs_full"] = table.apply(
        lambda r: r["train_epochs"] / full.loc[r["seed"], "train_epochs"], axis=1
    )
    stem = args.out / "multifidelity"
    write_atomic(table, stem.with_suffix(".csv"))
    write_atomic(table, stem.with_suffix(".parquet"))
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    write_atomic(policies, args.out / "multifidelity_policies.csv")
    write_atomic(policies, args.out / "multifidelity_policies.parquet")
    print(policies.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    mean = policies.groupby("policy", sort=False)[["hv_share", "front_kept"]].mean()
    print("mean over seeds:\n" + mean.to_string(float_format=lambda v: f"{v:.3f}"))
    multi = table[table["mode"] == "multi"]
    print(
        f"multi-fidelity over {len(multi)} seeds: hypervolume {multi['hv_vs_full'].mean():.1%} "
        f"of full fidelity (min {multi['hv_vs_full'].min():.1%}) with "
        f"{multi['compute_vs_full'].mean():.1%} of its training seconds "
        f"({multi['epochs_vs_full'].mean():.1%} of its epochs); goal: >= 95 % with <= 40 %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
