"""End-to-end proxy training against an older trainer, as a user runs it: `python cli.py train`.

The issue's yardstick: a small Dual-ViT (widths 32/64/128/160, depths 1/2/2/1, heads 2/4/8/10,
MLP ratio 3, stem 16) on cifar10-mini at 32 px, 2 epochs, batch 64, seed 0, one thread. The
old trainer is a git worktree of ``--baseline`` (default 1cf82c8) run with this environment's
Python; old and new processes alternate ``--rounds`` times so machine noise hits both alike.
Wall seconds include imports, data loading, training and evaluation. The first new run fills
the decoded-image cache (``DVBENCH_CACHE_DIR``, a fresh temporary folder here), as a user's
first run does; its time is reported separately and the ratio uses the warm runs.

    python benchmarks/bench_train_e2e.py [--rounds 3] [--baseline 1cf82c8]
    python benchmarks/bench_train_e2e.py --fidelity-shape   # 300 images a class, 15 epochs
Writes results/benchmarks/train_e2e.csv (one row a run) and prints the medians and ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "results" / "benchmarks"
MODEL = [
    "dualvit_s",
    *("--set", "embed_dims=32,64,128,160", "--set", "depths=1,2,2,1"),
    *("--set", "num_heads=2,4,8,10", "--set", "mlp_ratios=3,3,3,3"),
    *("--set", "stem_hidden_dim=16"),
]


def command(shape: str) -> list[str]:
    if shape == "fidelity":
        data = ["--data", str(SHARED / "cifar10-large"), "--train-samples", "300", "--epochs", "15"]
    else:
        data = ["--data", str(SHARED / "cifar10-mini"), "--epochs", "2"]
    return [
        sys.executable, "cli.py", "train", *MODEL, *data, "--res", "32", "--batch-size", "64",
        "--threads", "1", "--seed", "0",
    ]  # fmt: skip


def run(tree: Path, args: list[str], env: dict[str, str]) -> tuple[float, float | None]:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench_train_e2e: {tree} failed:\n{done.stderr[-2000:]}")
    # "40.6 %" (the old trainer) or "40.5 ± 1.6 %" (with its standard error)
    top1 = re.search(r"top-1\s*│\s*([0-9.]+)(?: ± [0-9.]+)? %", done.stdout)
    return wall, float(top1.group(1)) if top1 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="1cf82c8", help="commit of the old trainer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fidelity-shape", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "cifar10-mini").is_dir():
        print(f"bench_train_e2e: {SHARED} not found (the shared CIFAR-10)", file=sys.stderr)
        return 2
    shape = "fidelity" if args.fidelity_shape else "mini"
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-f", str(old), args.baseline],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        env = {**os.environ, "DVBENCH_CACHE_DIR": str(Path(scratch) / "cache")}
        env["DVBENCH_RESULTS_DIR"] = str(Path(scratch) / "results")
        rows = []
        try:
            wall, top1 = run(REPO, command(shape), env)
            rows.append({"tree": "new", "round": 0, "cache": "cold", "wall_s": wall, "top1": top1})
            print(f"new, cold decoded-image cache: {wall:.1f} s, top-1 {top1}")
            for round_ in range(1, args.rounds + 1):
                for tree, name in ((old, "old"), (REPO, "new")):
                    wall, top1 = run(tree, command(shape), env)
                    cache = "warm" if name == "new" else "none"
                    rows.append({"tree": name, "round": round_, "cache": cache, "wall_s": wall,
                                 "top1": top1})  # fmt: skip
                    print(f"round {round_} {name}: {wall:.1f} s, top-1 {top1}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO)
    frame = pd.DataFrame(rows).assign(shape=shape, baseline=args.baseline)
    old_s = statistics.median(frame.query("tree == 'old'")["wall_s"])
    new_s = statistics.median(frame.query("tree == 'new' and cache == 'warm'")["wall_s"])
    ratios = [
        o / n
        for o, n in zip(
            frame.query("tree == 'old'")["wall_s"],
            frame.query("tree == 'new' and cache == 'warm'")["wall_s"],
            strict=True,
        )
    ]
    print(
        f"{shape}: old {old_s:.1f} s, new {new_s:.1f} s (median of {args.rounds}): "
        f"{old_s / new_s:.2f}x (per round {min(ratios):.2f}-{max(ratios):.2f}x)"
    )
    from dvbench.files import write_atomic

    path = OUT / f"train_e2e_{shape}.csv"
    write_atomic(frame, path)
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
