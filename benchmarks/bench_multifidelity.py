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

Then the controls on the same compute, chosen among the full-fidelity candidates and trained
in full (their accuracies are the full study's), k = the multi-fidelity search's epochs over
the top budget: the k cheapest (cost only), k at random (averaged over draws), and the
permuted control (multi-fidelity's own final candidates, scored after the accuracies are
shuffled). Every row is scored with the measures of ``benchmarks/_measures.py`` (regret at
equal cost, front precision and recall, hypervolume share with the reference just below the
worst accuracy) against the full study's accuracies (one seed a network, so full fidelity
scores 0 by construction and the table has no intervals: the verdict is ``--replay``'s).
Each search is a study under
results/benchmarks/multifidelity/ (resumable: re-run the same command after a kill); the
table is results/benchmarks/multifidelity.csv/.parquet: one row per seed and policy (the two
searches with their compute, the controls beside them). ``--rescore`` rebuilds it from the
committed studies and the committed search rows without training.

``--replay`` judges the rule on the cifar yardstick instead, without training: successive
halving over Pareto ranks (``dvbench.space.rungs.promotions``, the study's noise-aware rule
at confidence 0.95, one seed a candidate as a search runs it) replayed on the records' learning
curves (``--rungs``, default 3,15 epochs, the epochs every candidate of the yardstick has;
eta 3), judged against cheapest-k, random-k and permuted with paired bootstrap intervals over
the candidates (``benchmarks/_policies.py``). Output: results/benchmarks/
multifidelity_policies.csv and multifidelity_policies_checks.csv.

--workers N (default: one per usable core) runs the searches in N processes, each pinned to
one core; training seconds are one-core seconds on both sides.

    python benchmarks/bench_multifidelity.py                     # about 25 min on 2 cores
    python benchmarks/bench_multifidelity.py --seeds 0 --candidates 6 --train-samples 20
    python benchmarks/bench_multifidelity.py --rescore      # the table from the committed studies
    python benchmarks/bench_multifidelity.py --replay       # the cifar yardstick, ~5 core-min
    python benchmarks/bench_multifidelity.py --replay --rungs 1,3,15   # once 9+ have curves
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
    from dvbench.space import load_space
    from dvbench.space.rungs import Fidelity

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


def policy_rows(args: argparse.Namespace, seeds: list[int], table):
    """The two searches and the controls on multi-fidelity's compute, scored on the full
    study's accuracies (one row per seed and policy)."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(REPO / "benchmarks"))
    import _measures as measures
    from _policies import config_key

    rows = []
    for seed in seeds:
        full = _study_frame(args, f"full_seed{seed}")
        multi = _study_frame(args, f"multi_seed{seed}")
        networks = full["config"].map(config_key).tolist()
        extra = multi[~multi["config"].map(config_key).isin(set(networks))]
        union = pd.concat([full, extra], ignore_index=True)  # a final the full study lacks
        networks = union["config"].map(config_key).tolist()
        truth = union["top1"].to_numpy(float)
        cost = union["gflops"].to_numpy(float)
        final = np.array(sorted({networks.index(config_key(c)) for c in multi["config"]}))
        estimate = truth.copy()
        estimate[final] = [float(multi.loc[multi["config"].map(config_key) == networks[i],
                                           "top1"].iloc[0]) for i in final]  # fmt: skip
        searched = table[table["seed"] == seed].set_index("mode")
        per_training = searched.loc["full", "train_epochs"] / len(full)
        k = max(1, round(searched.loc["multi", "train_epochs"] / per_training))
        score = measures.Scorer(truth, cost, estimate=estimate)
        rng = np.random.default_rng(seed)
        scored = {
            "full fidelity": score(np.arange(len(full))),
            "multi-fidelity": score(final),
            "cheapest-k (cost only)": score(measures.cheapest_k(cost[: len(full)], k)),
            "random-k": measures.random_control(truth[: len(full)], cost[: len(full)], k,
                                                draws=200, rng=rng),
            "permuted": measures.permuted_control(final, truth, cost, estimate=estimate,
                                                  draws=200, rng=rng),
        }  # fmt: skip
        for policy, values in scored.items():
            mode = {"full fidelity": "full", "multi-fidelity": "multi"}.get(policy)
            search = searched.loc[mode].to_dict() if mode else {}
            rows.append({"seed": seed, "policy": policy, "mode": mode or "",
                         "trainings": (search["train_epochs"] / per_training if mode
                                       else float(k)),
                         **{c: search.get(c) for c in SEARCH_COLUMNS}, **values})  # fmt: skip
    return pd.DataFrame(rows)


SEARCH_COLUMNS = ("candidates", "at_top_rung", "front", "hypervolume", "train_s", "train_epochs",
                  "checkpoint_peak_mb", "best_top1", "hv_vs_full", "compute_vs_full",
                  "epochs_vs_full")  # fmt: skip


def successive_halving(rungs: tuple[float, ...], eta: int, confidence: float | None = None):
    """Multi-fidelity as a policy on a replay: candidates arrive in the pool's order, each
    trains to the first rung, and every promotion the search's rule allows runs before the
    next candidate (one worker); chosen: those that reached the top rung. ``confidence``: the
    rule's (default: dvbench's, :data:`~dvbench.stats.DEFAULT_CONFIDENCE`)."""
    import numpy as np
    from _policies import Choice

    from dvbench.metrics import accuracy_standard_error
    from dvbench.space.rungs import Fidelity, Measured, promotions
    from dvbench.stats.pareto import DEFAULT_CONFIDENCE, DominanceRule

    fidelity = Fidelity(rungs=tuple(float(r) for r in rungs), eta=eta)
    rule = DominanceRule(DEFAULT_CONFIDENCE if confidence is None else confidence)
    directions = ("maximize", "minimize")

    def choose(replay) -> Choice:
        completed: dict[int, dict[int, Measured]] = {}
        started: set[tuple[int, int]] = set()
        epochs = 0.0

        def run(candidate: int, rung: int) -> None:
            nonlocal epochs
            started.add((candidate, rung))
            epochs += fidelity.rungs[rung] - (fidelity.rungs[rung - 1] if rung else 0.0)
            top1 = float(replay.seen(fidelity.rungs[rung])[candidate])
            error = accuracy_standard_error(top1, TEST_IMAGES)
            values = [top1, float(replay.cost[candidate])]
            completed.setdefault(candidate, {})[rung] = Measured(values, [error, 0.0])

        for candidate in range(len(replay.pool)):
            run(candidate, 0)
            while due := promotions(completed, started, directions, fidelity, rule=rule):
                for promoted, rung in due:
                    run(promoted, rung)
        final = sorted(c for c, done in completed.items() if fidelity.top in done)
        return Choice(np.array(final, int), epochs / fidelity.rungs[-1])

    return choose


#: Test images of the yardstick's records (cifar10-large's test split).
TEST_IMAGES = 8000
POLICIES_OUT = OUT / "multifidelity_policies"


def replay(args: argparse.Namespace) -> int:
    """The rule judged on the cifar yardstick's learning curves (see the module docstring)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import _policies

    rungs = tuple(float(r) for r in args.rungs.split(","))
    try:
        pool = _policies.read_pool(list(_policies.YARDSTICK), epochs=rungs)
    except ValueError as error:
        print(f"bench_multifidelity: --rungs {args.rungs}: {error}", file=sys.stderr)
        return 2
    print(_policies.describe(pool), flush=True)
    name = f"multi-fidelity, rungs {'/'.join(f'{r:g}' for r in rungs)} ep, eta {args.eta}"
    policies = {name: successive_halving(rungs, args.eta)}
    table, checks = _policies.judge(pool, policies, resamples=args.resamples)
    label = " + ".join(pool.sources)
    table.insert(0, "pool", label)
    checked = _policies.checks_frame(checks, pool=label)
    shown = ["row", "trainings", "kept", "regret", "regret_low", "regret_high", "regret_gain",
             "regret_gain_low", "regret_gain_high", "front_precision", "front_recall",
             "hv_share", "verdict"]  # fmt: skip
    _policies.publish(table, checked, POLICIES_OUT, shown)
    return 0


def write_table(args: argparse.Namespace, seeds: list[int], table) -> None:
    """multifidelity.csv/.parquet: the searches' rows and the controls' (one row per seed and
    policy), printed with the mean over seeds."""
    import pandas as pd

    from dvbench.files import write_atomic

    rows = policy_rows(args, seeds, table)
    stem = args.out / "multifidelity"
    write_atomic(rows, stem.with_suffix(".csv"))
    write_atomic(rows, stem.with_suffix(".parquet"))
    pd.set_option("display.width", 220)
    shown = ["seed", "policy", "trainings", "train_s", "regret", "front_precision",
             "front_recall", "hv_share"]  # fmt: skip
    print(rows[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    mean = rows.groupby("policy", sort=False)[["trainings", "regret", "front_precision",
                                               "front_recall", "hv_share"]].mean()  # fmt: skip
    print("mean over seeds:\n" + mean.to_string(float_format=lambda v: f"{v:.3f}"))


def rescore(args: argparse.Namespace) -> int:
    """multifidelity.csv again from the committed studies and search rows (no training)."""
    import pandas as pd

    committed = pd.read_csv(args.out / "multifidelity.csv")
    if "policy" in committed:  # a table this function wrote: its search rows
        committed = committed[committed["mode"].isin(["full", "multi"])]
    seeds = sorted(int(s) for s in committed["seed"].unique())
    write_table(args, seeds, committed.reset_index(drop=True))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--train-samples", type=int, default=100, help="per class")
    parser.add_argument(
        "--rungs", help="epochs; the last is full fidelity (default 1,3,9; with --replay 3,15)"
    )
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="rebuild multifidelity.csv from the committed studies, no training",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="judge the rule on the cifar yardstick's curves, no training",
    )
    parser.add_argument("--resamples", type=int, default=500, help="with --replay")
    args = parser.parse_args()
    if args.replay:
        args.rungs = args.rungs or "3,15"
        return replay(args)
    args.rungs = args.rungs or "1,3,9"
    if args.rescore:
        return rescore(args)
    if not args.data.is_dir():
        print(f"bench_multifidelity: {args.data} not found (the shared CIFAR-10)", file=sys.stderr)
        return 2
    import pandas as pd

    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [("full", s, args) for s in seeds] + [("multi", s, args) for s in seeds]
    cores = sorted(os.sched_getaffinity(0))
    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    with context.Pool(args.workers, initializer=_pin, initargs=(cores, counter)) as pool:
        rows = list(pool.imap_unordered(run_one, jobs))
    table = pd.DataFrame(rows).sort_values(["seed", "mode"]).reset_index(drop=True)
    full = table[table["mode"] == "full"].set_index("seed")
    for column, of in (("hv_vs_full", "hypervolume"), ("compute_vs_full", "train_s"),
                       ("epochs_vs_full", "train_epochs")):  # fmt: skip
        table[column] = table.apply(lambda r, of=of: r[of] / full.loc[r["seed"], of], axis=1)
    write_table(args, seeds, table)
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
