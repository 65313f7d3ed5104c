"""Rank fidelity of the `small` space's accuracy signals on real CIFAR-10 (issue: how far can
the accuracy axis be trusted?).

Runs `python cli.py calibrate` on ../shared/data/cifar10-large at 32 px with all 8,000 test
images, a training subset that fits the time (--train-samples per class), 20 candidates, the
ladder 1, 3, 9, 15 epochs (15 = 5x the space's 3-epoch proxy), standalone 1- and 3-epoch
schedules, every proxy, and 10 candidates trained again with another seed. Resumable: re-run
the same command after a kill. Output: results/benchmarks/calibrate/small_cifar10-large/.

--workers N (default: one per usable core) runs N `calibrate --shard I/N` processes side by
side, each pinned to one core (small models train faster as one-thread processes than as one
process with N threads), then one run without --shard that measures nothing new and writes the
tables. Recorded seconds are therefore one-core seconds.

    python benchmarks/bench_fidelity.py                 # about 80 min on an idle 2-core CPU
    python benchmarks/bench_fidelity.py --train-samples 1000 --candidates 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10-large"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=300, help="per class (default 300)")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--ladder", default="1,3,9,15")
    parser.add_argument("--schedules", default="1,3")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    if not args.data.is_dir():
        print(
            f"bench_fidelity: {args.data} not found (the shared CIFAR-10 export)", file=sys.stderr
        )
        return 2
    command = [
        sys.executable, str(REPO / "cli.py"), "calibrate", "--space", "small",
        "--data", str(args.data), "--res", "32", "--train-samples", str(args.train_samples),
        "--candidates", str(args.candidates), "--ladder", args.ladder,
        "--schedules", args.schedules, "--repeats", str(args.repeats),
        "--results-dir", str(REPO / "results" / "benchmarks"),
    ]  # fmt: skip
    cores = sorted(os.sched_getaffinity(0))
    if args.workers > 1:
        shards = []
        for index in range(args.workers):
            core = {cores[index % len(cores)]}
            shard = [*command, "--shard", f"{index}/{args.workers}"]
            print(" ".join(shard), f"  # on core {min(core)}", flush=True)
            shards.append(
                subprocess.Popen(
                    shard, cwd=REPO, preexec_fn=lambda c=core: os.sched_setaffinity(0, c)
                )
            )
        codes = [process.wait() for process in shards]
        if any(codes):
            print(f"bench_fidelity: a shard failed (exit codes {codes})", file=sys.stderr)
            return 1
    print(" ".join(command), flush=True)
    return subprocess.call(command, cwd=REPO)


if __name__ == "__main__":
    raise SystemExit(main())
