"""Latency and throughput: warm up, then time single calls until enough runs and time.

The idea of ``torch.utils.benchmark.Timer.blocked_autorange``: after ``warmup`` untimed calls,
calls are timed one at a time (the device synchronised before and after each) until at
least ``min_runs`` calls *and* ``min_time_s`` seconds of timed calls are done. The result,
:class:`Measurement`, keeps the raw per-call times and how they were taken; median and
percentiles are computed from them. Each call processes one batch, so latency is per batch
and throughput is ``batch_size / median``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "AMP_DTYPES",
    "Measurement",
    "check_amp",
    "input_channels",
    "make_step",
    "measure",
    "prepare_model",
    "synchronizer",
]

#: ``--amp`` names and the autocast dtypes they select.
AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Measurement:
    """Raw per-call times (seconds) of one timed function, with the settings that made them."""

    times_s: tuple[float, ...]
    batch_size: int
    warmup: int
    min_runs: int
    min_time_s: float
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.times_s:
            raise ValueError("times_s: a measurement needs at least one timed run")

    @property
    def runs(self) -> int:
        return len(self.times_s)

    @property
    def total_s(self) -> float:
        return float(sum(self.times_s))

    def percentile(self, q: float) -> float:
        """The q-th percentile of the per-call times (linear interpolation, as numpy)."""
        return float(np.percentile(self.times_s, q))

    @property
    def median_s(self) -> float:
        return self.percentile(50)

    @property
    def p10_s(self) -> float:
        return self.percentile(10)

    @property
    def p90_s(self) -> float:
        return self.percentile(90)

    @property
    def throughput(self) -> float:
        """Items (images) per second at the median latency."""
        return self.batch_size / self.median_s


def synchronizer(device: torch.device | str) -> Callable[[], None]:
    """A function that waits for ``device`` to finish queued work (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def measure(
    fn: Callable[[], Any],
    *,
    batch_size: int = 1,
    warmup: int = 2,
    min_runs: int = 10,
    min_time_s: float = 1.0,
    max_runs: int | None = None,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time ``fn()`` call by call until ``min_runs`` runs and ``min_time_s`` seconds are reached.

    ``max_runs`` caps the number of runs (fast functions would otherwise run ``min_time_s``
    worth of calls). The device is synchronised around every call so that each time covers
    the work the call queued. ``threads`` is only recorded; see :func:`num_threads`.
    """
    if min_runs < 1:
        raise ValueError(f"min_runs: must be at least 1, got {min_runs}")
    if warmup < 0:
        raise ValueError(f"warmup: must not be negative, got {warmup}")
    if min_time_s < 0:
        raise ValueError(f"min_time_s: must not be negative, got {min_time_s}")
    if max_runs is not None and max_runs < min_runs:
        raise ValueError(f"max_runs: must be at least min_runs={min_runs}, got {max_runs}")
    sync = synchronizer(device)
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    total = 0.0
    while len(times) < min_runs or total < min_time_s:
        if max_runs is not None and len(times) >= max_runs:
            break
        start = timer()
        fn()
        sync()
        elapsed = timer() - start
        times.append(elapsed)
        total += elapsed
    return Measurement(
        times_s=tuple(times),
        batch_size=batch_size,
        warmup=warmup,
        min_runs=min_runs,
        min_time_s=min_time_s,
        device=str(device),
        threads=threads,
    )


def input_channels(model: nn.Module) -> int:
    """Channels a vision model reads: those of its first convolution (3 if it has none)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def prepare_model(
    model: nn.Module,
    *,
    device: torch.device | str = "cpu",
    train: bool = False,
    channels_last: bool = False,
) -> nn.Module:
    """Move ``model`` to ``device`` (and channels-last memory format) in train or eval mode."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(train)


def check_amp(amp: str | None) -> None:
    """ValueError unless ``amp`` is None or one of :data:`AMP_DTYPES`."""
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"amp: must be one of {', '.join(AMP_DTYPES)} or None, got {amp!r}")


def _autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def _logits(output: Any) -> torch.Tensor:
    # Some models return (logits, aux...) in train mode; the first element is the class logits.
    return output[0] if isinstance(output, (tuple, list)) else output


def make_step(
    model: nn.Module,
    *,
    batch_size: int,
    resolution: int | tuple[int, int],
    device: torch.device | str = "cpu",
    train: bool = False,
    amp: str | None = None,
    channels_last: bool = False,
    in_chans: int | None = None,
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> Callable[[], Any]:
    """A zero-argument function running one inference batch or one training step.

    Inference: ``torch.inference_mode`` around ``forward(x)``. Training: AdamW step on the
    cross-entropy of the class logits against random labels (with a gradient scaler under
    fp16). ``model`` must already be prepared (:func:`prepare_model`); ``forward`` (default:
    the model itself) lets a compiled wrapper run while ``model`` supplies the parameters.
    ``in_chans`` defaults to the channels of the model's first convolution.
    """
    device = torch.device(device)
    forward = model if forward is None else forward
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    in_chans = input_channels(model) if in_chans is None else in_chans
    inputs = torch.randn(batch_size, in_chans, height, width, device=device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    check_amp(amp)

    if not train:

        def infer() -> Any:
            with torch.inference_mode(), _autocast(device, amp):
                return forward(inputs)

        return infer

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    labels: list[torch.Tensor] = []  # drawn on the first step, once the class count is known

    def train_step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            logits = _logits(forward(inputs))
        if not labels:
            labels.append(torch.randint(logits.shape[-1], (logits.shape[0],), device=device))
        loss = F.cross_entropy(logits.float(), labels[0])
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return train_step
