"""Search speed and quality, measured with the real harness in a temporary results folder.

1. ``--part speed``: ``search --space small --n-trials N`` end to end: wall time, trials per
   minute, and the harness's own overhead per trial — everything that is not the candidate's
   FLOP count, profiling or proxy training (sampling, storage writes, table export, process
   start), as a share of the trial time.
2. ``--part quality``: on the ``paper`` space (costs only, no training), the hypervolume
   NSGA-II reaches in N trials against what random search reaches in N and 2N trials, per
   seed and averaged over seeds (reference point: the space's ``reference_point``).

    python benchmarks/bench_search.py --part speed --n-trials 20
    python benchmarks/bench_search.py --part quality --seeds 3 --n-trials 48
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dvbench.search import SearchOptions, run_search  # noqa: E402
from dvbench.search.tables import candidates  # noqa: E402
from dvbench.space import load_space
from dvbench.space.definition import hypervolume_reference  # noqa: E402
from dvbench.stats.pareto import hypervolume  # noqa: E402


def speed(n_trials: int) -> None:
    space = load_space("small")
    with tempfile.TemporaryDirectory() as tmp:
        options = SearchOptions(space=space, results_dir=Path(tmp), n_trials=n_trials, quiet=True)
        start = time.perf_counter()
        summary = run_search(options)
        wall = time.perf_counter() - start
        trials = pd.read_csv(Path(tmp) / space.name / "trials.csv")
    work = trials[["count_s", "train_s", "profile_s"]].fillna(0).sum(axis=1)
    per_trial = wall / len(trials)
    overhead = (wall - work.sum()) / len(trials)
    print(
        f"search --space small --n-trials {n_trials}: {summary.completed} complete, "
        f"{summary.failed} failed in {wall:.1f} s = {len(trials) / wall * 60:.2f} trials/min"
    )
    print(
        f"per trial: {per_trial:.2f} s wall; candidate work (count + train) "
        f"{work.mean():.2f} s; harness overhead {overhead:.3f} s = "
        f"{100 * overhead / per_trial:.1f}% of the trial time "
        f"(of which table export {summary.timings.get('export_s', 0) / len(trials):.3f} s)"
    )


def _hv_after(frame: pd.DataFrame, n: int, metrics, directions, reference) -> float:
    first = frame[frame["number"] < n]
    pool = candidates(first, metrics)
    values = pool[list(metrics)].astype(float).to_numpy()
    return hypervolume(values, directions, reference) if len(values) else 0.0


def quality(seeds: int, n_trials: int) -> None:
    space = load_space("paper")
    metrics, directions = space.metrics, space.directions
    ref_map = hypervolume_reference(space)
    reference = [ref_map[m] for m in metrics]
    rows = []
    for seed in range(seeds):
        result = {"seed": seed}
        for sampler, n in (("nsga2", n_trials), ("random", 2 * n_trials)):
            with tempfile.TemporaryDirectory() as tmp:
                options = SearchOptions(
                    space=space,
                    results_dir=Path(tmp),
                    sampler=sampler,
                    seed=seed,
                    n_trials=n,
                    quiet=True,
                )
                start = time.perf_counter()
                run_search(options)
                elapsed = time.perf_counter() - start
                frame = pd.read_csv(Path(tmp) / space.name / "trials.csv")
            if sampler == "nsga2":
                result["nsga2_N"] = _hv_after(frame, n_trials, metrics, directions, reference)
            else:
                result["random_N"] = _hv_after(frame, n_trials, metrics, directions, reference)
                result["random_2N"] = _hv_after(frame, 2 * n_trials, metrics, directions, reference)
            result[f"{sampler}_s"] = elapsed
        rows.append(result)
        print(
            f"seed {seed}: NSGA-II@{n_trials} {result['nsga2_N']:.1f}, random@{n_trials} "
            f"{result['random_N']:.1f}, random@{2 * n_trials} {result['random_2N']:.1f}",
            flush=True,
        )
    table = pd.DataFrame(rows)
    means = {k: statistics.mean(table[k]) for k in ("nsga2_N", "random_N", "random_2N")}
    print(
        f"\npaper space, objectives {metrics} ({directions}), reference point {reference}, "
        f"population {space.sampler.get('population_size')}, {seeds} seeds:"
    )
    print(
        f"mean hypervolume: NSGA-II@{n_trials} {means['nsga2_N']:.1f}, random@{n_trials} "
        f"{means['random_N']:.1f}, random@{2 * n_trials} {means['random_2N']:.1f}"
    )
    ratio = means["nsga2_N"] / means["random_2N"] if means["random_2N"] else np.nan
    print(f"NSGA-II@{n_trials} / random@{2 * n_trials} = {ratio:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("speed", "quality", "both"), default="both")
    parser.add_argument("--n-trials", type=int, help="speed: 20; quality: 48")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("speed", "both"):
        speed(args.n_trials or 20)
    if args.part in ("quality", "both"):
        quality(args.seeds, args.n_trials or 48)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
