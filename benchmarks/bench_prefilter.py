"""The pre-filter judged on the cifar yardstick's candidates, by replay (no training here):
does training only what a training-free score ranks high beat training the cheapest networks?

The pre-filter (``prefilter: {signal, keep: 1, sample: 2}``, `small`'s and `medium`'s default
with synflow) is replayed as a search runs it (``dvbench.space.prefilter.Prefilter``): the
candidates arrive in the pool's order, each is scored and ranked among those scored so far on
the front the signal predicts with GFLOPs, and trained when it places in the best half. Every
training-free signal of the records is replayed the same way, and the trained candidates are
judged with the measures of ``benchmarks/_measures.py`` against cheapest-k (the same number
of trainings spent on the cheapest networks), random-k and the permuted control, with paired
95 % intervals over bootstrap resamples of the candidates (``benchmarks/_policies.py``).

Output: ``results/benchmarks/prefilter_policies.csv`` (one row per policy and control, the
verdict on each policy's row) and ``prefilter_policies_checks.csv`` (does each measure rank
the permuted control of a policy that reads accuracy clearly worse?).

    python benchmarks/bench_prefilter.py                  # the yardstick and its extension
    python benchmarks/bench_prefilter.py --resamples 100  # quicker, wider-grained intervals
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
OUT = REPO / "results" / "benchmarks" / "prefilter_policies"
#: The shipped default (search_spaces/small.yaml, medium.yaml).
DEFAULT = {"signal": "synflow", "keep": 1, "sample": 2}
DIRECTIONS = ("maximize", "minimize")  # (score, GFLOPs)


def prefilter(signal: str, keep: int = 1, sample: int = 2):
    """The pre-filter as a policy: trained candidates, in arrival order, by the search's rule."""
    from _policies import Choice

    from dvbench.space.prefilter import Prefilter

    rule = Prefilter(signal=signal, keep=keep, sample=sample)

    def choose(replay) -> Choice:
        score, cost = replay.pool.proxies[signal], replay.cost
        points = list(zip(score.tolist(), cost.tolist()))
        kept = [c for c in range(len(points)) if rule.keeps(points[c], points[:c], DIRECTIONS)]
        return Choice(np.array(kept, int), float(len(kept)))

    return choose


def policy_name(signal: str, keep: int, sample: int) -> str:
    shipped = " (default)" if (signal, keep, sample) == tuple(DEFAULT.values()) else ""
    return f"pre-filter {signal}, keep {keep} of {sample}{shipped}"


def main(argv: list[str] | None = None) -> int:
    import _policies

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calibration",
        type=Path,
        action="append",
        help="calibration folders (default: the cifar yardstick and extension)",
    )
    parser.add_argument("--resamples", type=int, default=_policies.RESAMPLES)
    parser.add_argument("--draws", type=int, default=_policies.DRAWS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)  # fmt: skip
    folders = args.calibration or list(_policies.YARDSTICK)
    if not (folders[0] / "records.jsonl").is_file():
        print(f"bench_prefilter: no calibration at {folders[0]}", file=sys.stderr)
        return 2
    pool = _policies.read_pool(folders)
    print(_policies.describe(pool), flush=True)
    signals = [DEFAULT["signal"]] + sorted(s for s in pool.proxies if s != DEFAULT["signal"])
    policies = {policy_name(s, 1, 2): prefilter(s, 1, 2) for s in signals}
    table, checks = _policies.judge(pool, policies, resamples=args.resamples, draws=args.draws)
    table.insert(0, "pool", " + ".join(pool.sources))
    checked = _policies.checks_frame(checks, pool=" + ".join(pool.sources))
    shown = ["row", "trainings", "regret", "regret_low", "regret_high", "regret_gain",
             "regret_gain_low", "regret_gain_high", "front_precision", "front_recall",
             "hv_share", "verdict"]  # fmt: skip
    _policies.publish(table, checked, args.out, shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
