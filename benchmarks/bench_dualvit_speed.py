"""Efficiency of dvbench's Dual-ViT against timm's PVTv2-B2, measured side by side in one run.

The figure of merit is multiply-accumulate throughput (GMACs per second, GMACs counted by
dvbench's profiler, i.e. fvcore plus the SDPA handle): a model that does more work per image
is not penalised for it, only for doing it slowly. Both models run in the same process,
interleaved (one timed forward of each per round, the order alternating), so machine noise
hits both alike; the ratio of the medians is reported.

    python benchmarks/bench_dualvit_speed.py                      # CPU, fp32, batch 8, 224 px
    python benchmarks/bench_dualvit_speed.py --device cuda --dtype bf16 --batch-size 64
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dvbench  # noqa: E402,F401  (registers the Dual-ViT models in timm)
from dvbench.models import create_model, display_name  # noqa: E402
from dvbench.profile import count_cost  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    names = [args.model, args.reference]
    models, gmacs = {}, {}
    for name in names:
        gmacs[name] = count_cost(name, args.res).gflops  # per image, at fp32 semantics
        model = create_model(name, img_size=args.res).eval().to(device)
        models[name] = model
    x = torch.randn(args.batch_size, 3, args.res, args.res, device=device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode(), autocast:
        for _ in range(args.warmup):
            for model in models.values():
                model(x)
        _sync(device)
        for round_ in range(args.runs):
            order = names if round_ % 2 == 0 else names[::-1]
            for name in order:
                _sync(device)
                start = time.perf_counter()
                models[name](x)
                _sync(device)
                times[name].append(time.perf_counter() - start)
    rows = []
    for name in names:
        median = statistics.median(times[name])
        rows.append(
            {
                "model": display_name(name),
                "gmacs_per_image": gmacs[name],
                "median_ms": median * 1e3,
                "min_ms": min(times[name]) * 1e3,
                "max_ms": max(times[name]) * 1e3,
                "runs": len(times[name]),
                "gmacs_per_s": gmacs[name] * args.batch_size / median,
            }
        )
    reference_rate = rows[1]["gmacs_per_s"]
    for row in rows:
        row["efficiency_vs_reference"] = row["gmacs_per_s"] / reference_rate
    return rows


def _device_text(args: argparse.Namespace) -> str:
    if args.device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(args.device))
    return f"{platform.processor() or platform.machine()} CPU, {args.threads} threads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dualvit_s")
    parser.add_argument("--reference", default="pvt_v2_b2")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--runs", type=int, default=9, help="timed rounds (each model once)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--out", type=Path, help="append the table (markdown) to this file")
    args = parser.parse_args(argv)
    if args.runs < 7:
        parser.error("--runs: at least 7, so that medians mean something")

    rows = measure(args)
    header = (
        f"{args.model} vs {args.reference}: batch {args.batch_size}, {args.res} px, "
        f"{args.dtype}, inference, {_device_text(args)}, torch {torch.__version__}, "
        f"{args.runs} interleaved runs"
    )
    lines = [
        header,
        "",
        "| model | GMACs/img | median ms | min ms | max ms | GMACs/s | efficiency vs ref |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['gmacs_per_image']:.2f} | {r['median_ms']:.1f} | "
            f"{r['min_ms']:.1f} | {r['max_ms']:.1f} | {r['gmacs_per_s']:.1f} | "
            f"{r['efficiency_vs_reference']:.3f} |"
        )
    text = "\n".join(lines)
    print(text)
    print(
        f"\nefficiency ratio {args.model}/{args.reference}: "
        f"{rows[0]['efficiency_vs_reference']:.3f}"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as fh:
            fh.write(text + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
