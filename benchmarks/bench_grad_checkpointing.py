"""Gradient checkpointing on Dual-ViT: peak memory and time of one training step, off and on.

Memory is taken with the profiler's memory mode (``dvbench profile --train --memory`` on the
CPU): each training step (forward, cross-entropy, backward, AdamW) runs once in a fresh child
process and the figure is its peak resident memory above what the model, the batch and the
optimizer already held. ``set_grad_checkpointing(True)`` keeps only each block's inputs in the
forward pass and recomputes the block in the backward pass, so the activations, the largest
share of a training step's memory, shrink while the step does one more forward's work. The
two settings alternate over the repeats, and the medians are reported; the step time is the
median of in-process training steps, also alternating.

    python benchmarks/bench_grad_checkpointing.py                  # dualvit_s, batch 16, 224 px
    python benchmarks/bench_grad_checkpointing.py --model dualvit_b --batch-size 8
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

from dvbench.models import create_model  # noqa: E402
from dvbench.profile import cpu_peak_memory, make_step  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "benchmarks" / "grad_checkpointing_cpu.txt"
SETTINGS = {"off": False, "on": True}


def _model(name: str, res: int, checkpointing: bool) -> torch.nn.Module:
    model = create_model(name, img_size=res)
    model.set_grad_checkpointing(checkpointing)
    return model


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Raw samples per setting: peak MiB (one child process each) and step seconds."""
    samples = {key: {"peak_mib": [], "step_s": []} for key in SETTINGS}
    for repeat in range(args.repeats):
        order = list(SETTINGS) if repeat % 2 == 0 else list(SETTINGS)[::-1]
        for key in order:
            peak = cpu_peak_memory(
                _model(args.model, args.res, SETTINGS[key]),
                resolution=args.res,
                batch_size=args.batch_size,
                train=True,
                threads=args.threads,
            )
            samples[key]["peak_mib"].append(peak.mib)
    torch.set_num_threads(args.threads)
    steps = {
        key: make_step(
            _model(args.model, args.res, enable).train(),
            batch_size=args.batch_size,
            resolution=args.res,
            train=True,
        )
        for key, enable in SETTINGS.items()
    }
    for step in steps.values():  # warm-up: first-call costs, optimizer state
        step()
    for repeat in range(args.steps):
        order = list(SETTINGS) if repeat % 2 == 0 else list(SETTINGS)[::-1]
        for key in order:
            start = time.perf_counter()
            steps[key]()
            samples[key]["step_s"].append(time.perf_counter() - start)
    return samples


def report(args: argparse.Namespace, samples: dict[str, dict[str, list[float]]]) -> str:
    peak = {key: statistics.median(s["peak_mib"]) for key, s in samples.items()}
    step = {key: statistics.median(s["step_s"]) for key, s in samples.items()}
    lines = [
        f"{args.model}: one training step (AdamW), batch {args.batch_size}, {args.res} px, fp32, "
        f"{platform.machine()} CPU, {args.threads} threads, torch {torch.__version__}",
        f"peak memory: the profiler's CPU memory mode (peak RSS increase over the step, a fresh "
        f"child process per sample), median of {args.repeats}; step time: median of "
        f"{args.steps} in-process steps; settings alternate",
        "",
        "| grad checkpointing | peak MiB (median) | samples | step s (median) |",
        "|---|---|---|---|",
    ]
    for key in SETTINGS:
        values = ", ".join(f"{v:.0f}" for v in samples[key]["peak_mib"])
        lines.append(f"| {key} | {peak[key]:.0f} | {values} | {step[key]:.2f} |")
    lines += [
        "",
        f"with checkpointing: peak memory {peak['on'] / peak['off']:.2f}x "
        f"({peak['on'] - peak['off']:+.0f} MiB), step time {step['on'] / step['off']:.2f}x",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dualvit_s")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="memory samples per setting")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="write the table here")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps: at least 1")

    text = report(args, measure(args))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
