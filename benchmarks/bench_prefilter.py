"""What the pre-filter keeps of the front, replayed on the fidelity benchmark's candidates.

Reads the calibration of `small` on cifar10-large (run benchmarks/bench_fidelity.py first):
20 candidates with every training-free score and their accuracy after 15 epochs. For each
signal it keeps half of them (``keep: 1, sample: 2``) two ways -- the best half by the score
alone, and the first half of the predicted front (the search's pre-filter rule: the score in
place of accuracy, ranked with GFLOPs at 224 px by non-dominated rank, then crowding) -- and
reports the hypervolume (15-epoch top-1 against GFLOPs, reference 0 % and 1.1x the largest
GFLOPs) of what was kept, as a share of all 20 candidates' hypervolume; also against the
seed-mean accuracy where a second seed was trained. A random half (mean and 5th percentile
of 10,000 draws) and the cheapest half are the baselines. The whole set is the target; the
score is only useful where it beats the random half. Output:
results/benchmarks/prefilter.csv/.parquet.

    python benchmarks/bench_prefilter.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CALIBRATION = REPO / "results" / "benchmarks" / "calibrate" / "small_cifar10-large"
OUT = REPO / "results" / "benchmarks" / "prefilter"


def main() -> int:
    from dvbench.models import DualViTConfig
    from dvbench.profile import count_cost
    from dvbench.search._rungs import pareto_order
    from dvbench.search.tables import hypervolume, write_atomic
    from dvbench.train import build_candidate

    path = CALIBRATION / "candidates.csv"
    if not path.is_file():
        print(
            f"bench_prefilter: {path} not found; run benchmarks/bench_fidelity.py", file=sys.stderr
        )
        return 2
    table = pd.read_csv(path)
    gflops = []
    for text in table["config"]:
        cfg = DualViTConfig.from_dict(json.loads(text)).replace(img_size=224)
        gflops.append(count_cost(build_candidate(cfg, num_classes=10, resolution=224), 224).gflops)
    gflops = np.array(gflops)
    directions = ["maximize", "minimize"]
    reference = [0.0, 1.1 * gflops.max()]
    n = len(table)
    targets = {"15 epochs": table["rung.15"].to_numpy()}
    repeated = table["repeat.15"].notna().to_numpy()
    seed_mean = (table["rung.15"] + table["repeat.15"]) / 2

    def share(accuracy: np.ndarray, kept: np.ndarray, pool: np.ndarray) -> float:
        def hv(index: np.ndarray) -> float:
            return hypervolume(np.c_[accuracy[index], gflops[index]], directions, reference)

        return hv(kept) / hv(pool)

    rng = np.random.default_rng(0)
    rows = []
    signals = [c.split(".", 1)[1] for c in table.columns if c.startswith("proxy.")]
    for target, accuracy, pool in (
        ("15 epochs", targets["15 epochs"], np.arange(n)),
        ("seed mean", seed_mean.to_numpy(), np.flatnonzero(repeated)),
    ):
        k = len(pool) // 2
        draws = [share(accuracy, rng.choice(pool, k, replace=False), pool) for _ in range(10000)]
        rows.append({"target": target, "signal": "random half", "rule": "-",
                     "kept": k, "of": len(pool), "hv_share": float(np.mean(draws)),
                     "hv_share_p5": float(np.percentile(draws, 5))})  # fmt: skip
        cheapest = pool[np.argsort(gflops[pool], kind="stable")[:k]]
        rows.append({"target": target, "signal": "gflops", "rule": "cheapest half", "kept": k,
                     "of": len(pool), "hv_share": share(accuracy, cheapest, pool)})  # fmt: skip
        for signal in signals:
            score = table[f"proxy.{signal}"].to_numpy()
            alone = pool[np.argsort(-score[pool], kind="stable")[:k]]
            front = pareto_order(
                [[score[i], gflops[i]] for i in pool], directions, [int(i) for i in pool]
            )[:k]
            for rule, kept in (("score alone", alone), ("predicted front", np.array(front))):
                rows.append({"target": target, "signal": signal, "rule": rule, "kept": k,
                             "of": len(pool), "hv_share": share(accuracy, kept, pool)})  # fmt: skip
    out = pd.DataFrame(rows)
    write_atomic(out, OUT.with_suffix(".csv"))
    write_atomic(out, OUT.with_suffix(".parquet"))
    pd.set_option("display.width", 160)
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
