"""How repeatable are dvbench's latency numbers on this machine, and how long does counting take?

Times each model ``--repeats`` times, interleaved (A B C A B C ...) so that drifts in machine
load hit every model alike, and prints per model the medians of the repeats, their spread
((max - min) / median) and the time ``count_flops`` takes (model already built).

    python benchmarks/bench_profile_repeatability.py dualvit_s pvt_v2_b2 --batch-size 8
"""

from __future__ import annotations

import argparse
import statistics
import time

from dvbench.models.registry import create_model
from dvbench.profile import count_flops, make_step, measure
from dvbench.profile.timing import prepare_model
from dvbench.runtime import num_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--min-time", type=float, default=2.0)
    args = parser.parse_args()

    with num_threads(args.threads) as threads:
        models = {name: create_model(name, img_size=args.res) for name in args.models}
        count_s = {}
        for name, model in models.items():
            start = time.perf_counter()
            count_flops(model, args.res)
            count_s[name] = time.perf_counter() - start
        steps = {
            name: make_step(prepare_model(model), batch_size=args.batch_size, resolution=args.res)
            for name, model in models.items()
        }
        medians: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, step in steps.items():
                m = measure(step, batch_size=args.batch_size, min_time_s=args.min_time)
                medians[name].append(m.median_s * 1e3)

    print(f"{threads} threads, batch {args.batch_size}, {args.res} px, {args.repeats} repeats")
    print(f"{'model':<14}{'count s':>9}{'median ms':>11}{'spread':>8}  repeats (ms)")
    for name, values in medians.items():
        middle = statistics.median(values)
        spread = (max(values) - min(values)) / middle
        runs = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:<14}{count_s[name]:>9.2f}{middle:>11.1f}{spread:>8.1%}  {runs}")


if __name__ == "__main__":
    main()
