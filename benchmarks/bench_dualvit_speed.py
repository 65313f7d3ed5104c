"""Efficiency of dvbench's Dual-ViT against timm's PVTv2-B2, measured side by side in one run.

The figure of merit is multiply-accumulate throughput (GMACs per second, GMACs counted by
dvbench's profiler, i.e. fvcore plus the SDPA handle): a model that does more work per image
is not penalised for it, only for doing it slowly. Both models run in the same process,
interleaved (one timed forward of each per round, the order alternating), so machine noise
hits both alike; the ratio of the medians is reported.

    python benchmarks/bench_dualvit_speed.py                      # CPU, fp32, batch 8, 224 px
    python benchmarks/bench_dualvit_speed.py --device cuda --dtype bf16 --batch-size 64
    python benchmarks/bench_dualvit_speed.py --official ImageNetModel/classification/dualvit.py

``--official`` times the official implementation as a third model: the file of a checkout of
YehLi/ImageNetModel (not shipped here), loaded without touching timm's registry, given this
model's weights; the run stops unless both compute the same logits (<= 1e-5). The speed-up
over it is the ratio of medians, with the range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

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
    if args.official:
        names.append(OFFICIAL)
        gmacs[OFFICIAL] = gmacs[args.model]  # the same function
        models[OFFICIAL] = _official_model(args.official, args.model, models[args.model], x)
        models[OFFICIAL].to(device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode(), autocast:
        for _ in range(args.warmup):
            for model in models.values():
                model(x)
        _sync(device)
        for round_ in range(args.runs):
            shift = round_ % len(names)  # every model takes every place in the order
            order = names[shift:] + names[:shift]
            if round_ // len(names) % 2:
                order.reverse()
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
                "model": f"official {args.model}" if name == OFFICIAL else display_name(name),
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
    if args.official:
        per_round = [o / m for o, m in zip(times[OFFICIAL], times[args.model], strict=True)]
        rows[0]["speedup_vs_official"] = statistics.median(times[OFFICIAL]) / statistics.median(
            times[args.model]
        )
        rows[0]["speedup_range"] = (min(per_round), max(per_round))
    return rows


OFFICIAL = "official"


def gemm_ceiling(device: torch.device, size: int = 2048, runs: int = 15) -> float:
    """GMAC/s of a large fp32 matrix product on ``device``, the fastest of ``runs`` (a busy
    neighbour only slows a run): the rate no model here can exceed."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(runs):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return size**3 / best / 1e9


def _official_model(path: Path, name: str, ours: torch.nn.Module, x: torch.Tensor):
    """The official factory ``name`` from ``path`` with ``ours``' weights, outputs checked."""
    spec = importlib.util.spec_from_file_location("official_dualvit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    import timm.models.registry

    # The official file registers dualvit_s/b/l in timm, which would replace dvbench's entries.
    with mock.patch.object(timm.models.registry, "register_model", lambda fn: fn):
        spec.loader.exec_module(module)
    official = inspect.unwrap(getattr(module, name))().eval()
    official.load_state_dict(ours.state_dict())
    with torch.inference_mode():
        diff = (official(x) - ours(x)).abs().max().item()
    print(f"official {name}: max |logit difference| {diff:.2e}")
    if diff > 1e-5:
        raise SystemExit(f"bench_dualvit_speed: outputs differ from the official code by {diff}")
    return official


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
    parser.add_argument(
        "--official", type=Path, help="the official classification/dualvit.py to time as well"
    )
    args = parser.parse_args(argv)
    if args.runs < 7:
        parser.error("--runs: at least 7, so that medians mean something")
    if args.official and not args.official.is_file():
        parser.error(f"--official {args.official}: no such file")
    if args.official and args.model not in {"dualvit_s", "dualvit_b", "dualvit_l"}:
        parser.error(f"--official: the official file has dualvit_s/b/l, not {args.model}")

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
    summary = (
        f"efficiency ratio {args.model}/{args.reference}: {rows[0]['efficiency_vs_reference']:.3f}"
    )
    if args.dtype == "fp32":
        ceiling = gemm_ceiling(torch.device(args.device))
        summary += (
            f"; fp32 GEMM ceiling {ceiling:.1f} GMAC/s ({args.model} runs at "
            f"{rows[0]['gmacs_per_s'] / ceiling:.0%} of it)"
        )
    if args.official:
        low, high = rows[0]["speedup_range"]
        summary += (
            f"; speed-up over the official code: {rows[0]['speedup_vs_official']:.3f}x "
            f"(per round {low:.2f}-{high:.2f}x)"
        )
    lines += ["", summary]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as fh:
            fh.write(text + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
