"""Proxy-training speed: dvbench's training loop against a bare forward/backward/step loop.

Both train the same model (by default ``TINY_DUALVIT``, about 1.7 M parameters) at 32 px with
the same batch size and the same fused AdamW, in alternating rounds so that machine noise hits
both alike. The bare loop reuses one fixed, already normalised batch; the dvbench loop gathers,
augments and normalises real digits batches and runs its schedule, clipping and finite-loss
checks, so the ratio is the loop's overhead. Then a 3-epoch proxy on ``digits`` is timed end
to end, once in this process and once as ``python cli.py train ...`` (imports included).

    python benchmarks/bench_train_throughput.py [--rounds 3] [--steps 20] [--batch-size 128]
    python benchmarks/bench_train_throughput.py --model pvt_v2_b0 --skip-cli
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dvbench.models import DualViTConfig
from dvbench.train import TrainSettings, build_candidate, load_data, train_candidate
from dvbench.train.loop import make_optimizer

REPO = Path(__file__).resolve().parents[1]

#: A tiny Dual-ViT for proxy runs at 32 px: the stage-1 map is 8x8, one semantic token.
TINY_DUALVIT = DualViTConfig(
    embed_dims=(32, 64, 128, 160),
    num_heads=(1, 2, 4, 5),
    depths=(1, 1, 2, 1),
    mlp_ratios=(4, 4, 4, 4),
    stem_hidden_dim=16,
    num_classes=10,
    img_size=32,
    name="tiny_dualvit",
)
TINY_CLI_ARGS = [
    "dualvit_s",
    "--set",
    "embed_dims=32,64,128,160",
    "--set",
    "num_heads=1,2,4,5",
    "--set",
    "depths=1,1,2,1",
    "--set",
    "mlp_ratios=4,4,4,4",
    "--set",
    "stem_hidden_dim=16",
]


def bare_images_per_s(
    spec, *, res: int, batch_size: int, steps: int, warmup: int = 2, channels_last: bool = False
) -> float:
    """Forward, backward and optimizer step on one fixed batch: the model's own speed."""
    torch.manual_seed(0)
    model = build_candidate(spec, num_classes=10, resolution=res)
    settings = TrainSettings(batch_size=batch_size)
    optimizer = make_optimizer(model, settings)
    x = torch.randn(batch_size, 3, res, res)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model spec (default: TINY_DUALVIT)")
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="(default: every usable core)")
    parser.add_argument("--skip-cli", action="store_true", help="no subprocess CLI timing")
    args = parser.parse_args()
    spec = args.model or TINY_DUALVIT
    threads = args.threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    torch.set_num_threads(threads)
    model = build_candidate(spec, num_classes=10, resolution=args.res)
    params = sum(p.numel() for p in model.parameters())
    name = args.model or TINY_DUALVIT.name
    print(
        f"{name}: {params / 1e6:.2f} M parameters, {args.res} px, batch {args.batch_size}, "
        f"{threads} threads, torch {torch.__version__}"
    )

    data = load_data("digits", resolution=args.res)
    settings = TrainSettings(
        num_threads=threads,
        epochs=None,
        max_steps=args.steps + 1,
        batch_size=args.batch_size,
        channels_last=args.channels_last,
    )
    bare, loop = [], []
    for round_ in range(args.rounds):
        bare.append(
            bare_images_per_s(
                spec,
                res=args.res,
                batch_size=args.batch_size,
                steps=args.steps,
                channels_last=args.channels_last,
            )
        )
        # the loop's images_per_s leaves out its first step, like the bare loop's warm-up
        result = train_candidate(spec, data, settings, seed=round_, device="cpu")
        loop.append(result.images_per_s)
        print(f"  round {round_ + 1}: bare {bare[-1]:7.0f} img/s   loop {loop[-1]:7.0f} img/s")
    bare_median, loop_median = statistics.median(bare), statistics.median(loop)
    print(
        f"median: bare {bare_median:.0f} img/s, loop {loop_median:.0f} img/s "
        f"(loop/bare = {loop_median / bare_median:.2f})"
    )

    start = time.perf_counter()
    result = train_candidate(
        spec,
        load_data("digits", resolution=args.res),
        TrainSettings(epochs=3, batch_size=args.batch_size, num_threads=threads),
        device="cpu",
    )
    wall = time.perf_counter() - start
    print(
        f"3-epoch digits proxy in process: {wall:.1f} s wall (train {result.train_time_s:.1f} s"
        f", eval {result.eval_time_s:.2f} s, {result.images_per_s:.0f} img/s), "
        f"top-1 {result.top1:.1f} %"
    )

    if args.skip_cli or args.model is not None:
        return
    command = [
        sys.executable,
        str(REPO / "cli.py"),
        "train",
        *TINY_CLI_ARGS,
        "--data",
        "digits",
        "--epochs",
        "3",
        "--res",
        str(args.res),
        "--threads",
        str(threads),
        "--quiet",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(
        f"3-epoch digits proxy via the CLI (imports, data, train, eval): "
        f"{time.perf_counter() - start:.1f} s wall"
    )


if __name__ == "__main__":
    main()
