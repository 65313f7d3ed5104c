"""What the pre-filter keeps of the front, against the trivial policies on the same compute,
replayed on a calibration's candidates (no training here).

Reads a calibration folder (default: the fidelity benchmark's, `small` on cifar10-large; any
`python cli.py calibrate` folder works): its candidates with every training-free score and
their top-1 at the calibration's target budget -- the mean over their seeds, with the standard
error the tables use (the pooled seed variance, never below the test set's binomial variance,
over the seeds each has). Every rule keeps half of the candidates (``keep: 1, sample: 2``):

- the pre-filter: the first half of the predicted front (the signal in place of accuracy,
  with GFLOPs at 224 px, ordered by the search's rule), for every training-free signal;
- the signal alone (its best half);
- the trivial policies: the cheapest half (cost only), params_m's predicted front, a random
  half.

Each kept half is scored by its share of the whole set's normalised hypervolume and of its
noise-aware front, with 95 % intervals over the accuracies' noise (and the random draws);
see benchmarks/_policies.py. A signal is useful only where it beats the cheapest half by more
than the intervals. Output: results/benchmarks/prefilter.csv/.parquet.

    python benchmarks/bench_prefilter.py
    python benchmarks/bench_prefilter.py --calibration results/benchmarks/yardstick/cifar_...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DEFAULT = REPO / "results" / "benchmarks" / "calibrate" / "small_cifar10-large"
OUT = REPO / "results" / "benchmarks" / "prefilter"


def target_with_errors(candidates: pd.DataFrame, test_images: int) -> tuple[np.ndarray, ...]:
    """Each candidate's target mean and its standard error (see the module docstring)."""
    from dvbench.metrics import accuracy_standard_error

    seeds = candidates[[c for c in candidates if c.startswith("target.seed")]].to_numpy(float)
    counts = np.isfinite(seeds).sum(axis=1)
    means = np.where(counts > 0, np.nansum(seeds, axis=1) / np.maximum(counts, 1), np.nan)
    several = counts >= 2
    pooled = math.nan
    if several.any():
        deviations = np.nansum((seeds[several] - means[several, None]) ** 2)
        pooled = deviations / (counts[several] - 1).sum()
    errors = []
    for mean, count in zip(means, counts):
        variance = accuracy_standard_error(mean, test_images) ** 2
        if math.isfinite(pooled):
            variance = max(variance, pooled)
        errors.append(math.sqrt(variance / max(count, 1)))
    return means, np.array(errors), counts


def main() -> int:
    import _policies as policies

    from dvbench.calibrate import CalibrationPlan, read_records, summarize_calibration
    from dvbench.files import write_atomic
    from dvbench.models import DualViTConfig
    from dvbench.profile import count_cost
    from dvbench.train import build_candidate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path, default=DEFAULT)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not (args.calibration / "records.jsonl").is_file():
        print(f"bench_prefilter: no calibration at {args.calibration}", file=sys.stderr)
        return 2
    records = read_records(args.calibration)
    header = records[0]
    plan = CalibrationPlan(**header["plan"])
    result = summarize_calibration(records, plan, space=header["space"], data="", test_images=0)
    table = result.candidates
    test_images = int(header["data"].get("test_samples") or 800) * 10
    top1, errors, counts = target_with_errors(table, test_images)
    pool = np.flatnonzero(np.isfinite(top1))
    gflops = np.full(len(table), np.nan)
    for i in pool:
        cfg = DualViTConfig.from_dict(json.loads(table["config"][i])).replace(img_size=224)
        model = build_candidate(cfg, num_classes=cfg.num_classes, resolution=224)
        gflops[i] = count_cost(model, 224).gflops
    k = len(pool) // 2
    rules = {
        ("cheapest half", "gflops (cost only)"): policies.cheapest(gflops, pool, k),
        ("random half", "-"): policies.random_k(pool, k),
    }
    signals = [c.split(".", 1)[1] for c in table.columns if c.startswith("proxy.")]
    for signal in signals:
        score = table[f"proxy.{signal}"].to_numpy(float)
        if not np.isfinite(score[pool]).all():
            continue
        rules[("predicted front", signal)] = policies.predicted_front(score, gflops, pool, k)
        alone = pool[np.argsort(-score[pool], kind="stable")[:k]]
        rules[("score alone", signal)] = lambda rng, alone=alone: alone
    rows = []
    for (rule, signal), choose in rules.items():
        scored = policies.scores(top1, errors, gflops, pool, choose)
        rows.append({"rule": rule, "signal": signal, "kept": k, "of": len(pool), **scored})
    out = pd.DataFrame(rows)
    cheap = out[out["rule"] == "cheapest half"].iloc[0]
    out["beats_cheapest"] = out["hv_share_low"] > cheap["hv_share_high"]
    out.insert(0, "calibration", args.calibration.name)
    out.insert(1, "seeds_per_candidate", float(np.mean(counts[pool])))
    write_atomic(out, args.out.with_suffix(".csv"))
    write_atomic(out, args.out.with_suffix(".parquet"))
    pd.set_option("display.width", 200)
    shown = ["rule", "signal", "hv_share", "hv_share_low", "hv_share_high", "front_kept",
             "front_kept_low", "front_kept_high", "beats_cheapest"]  # fmt: skip
    print(out[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
