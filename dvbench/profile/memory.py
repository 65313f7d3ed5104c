"""Peak memory of one inference batch or one training step.

CUDA (``MEM_CUDA_PEAK``): ``torch.cuda.max_memory_allocated`` over one step, after
``reset_peak_memory_stats``: every tensor the caching allocator handed out at the peak,
weights included (and for training gradients and AdamW state), not the cache it reserves.

CPU (``MEM_CPU_RSS``): the step runs once in a fresh child process (``multiprocessing``
spawn). After the imports, the model, the input batch and the optimizer exist, the kernel's
peak-RSS mark is reset (``/proc/self/clear_refs``); the figure is the peak RSS during the
step (``VmHWM``) minus the RSS before it: what the step needs on top of the weights
(activations, workspaces; for training also gradients and AdamW state), including one-off
costs of a first call such as thread pools. Where the mark cannot be reset (not Linux), the
increase of ``ru_maxrss`` is used (``MEM_CPU_MAXRSS``), a lower bound when building the
model peaked higher than the step.
"""

from __future__ import annotations

import gc
import multiprocessing
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from dvbench.profile.timing import make_step, prepare_model, synchronizer
from dvbench.runtime import num_threads

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from dvbench.models.config import DualViTConfig

__all__ = [
    "MEM_CPU_MAXRSS",
    "MEM_CPU_RSS",
    "MEM_CUDA_PEAK",
    "PeakMemory",
    "cpu_peak_memory",
    "cuda_peak_memory",
    "is_out_of_memory",
]

MEM_CUDA_PEAK = "cuda-max-allocated"
MEM_CPU_RSS = "cpu-peak-rss-increase"
MEM_CPU_MAXRSS = "cpu-maxrss-increase"


@dataclass(frozen=True)
class PeakMemory:
    """A peak-memory figure in bytes and how it was taken (one of the ``MEM_*`` names)."""

    bytes: int
    method: str

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure on any device (CUDA raises its own type, CPU a message)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def cuda_peak_memory(step: Any, device: torch.device | str) -> PeakMemory:
    """Peak allocated CUDA memory while ``step()`` runs once (call after a warm-up step)."""
    device = torch.device(device)
    sync = synchronizer(device)
    sync()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    step()
    sync()
    return PeakMemory(torch.cuda.max_memory_allocated(device), MEM_CUDA_PEAK)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def _reset_peak_rss() -> bool:
    """Set the kernel's peak-RSS mark to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


def _maxrss_bytes() -> int:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@dataclass(frozen=True)
class _Job:
    """What the child builds and runs; everything in it pickles."""

    model: str | Path | DualViTConfig | nn.Module
    resolution: int
    batch_size: int
    train: bool
    amp: str | None
    channels_last: bool
    threads: int | None


def _measure_in_child(job: _Job) -> PeakMemory:
    with num_threads(job.threads):
        if isinstance(job.model, nn.Module):
            model = job.model
        else:
            from dvbench.models.registry import create_model

            model = create_model(job.model, img_size=job.resolution)
        model = prepare_model(model, train=job.train, channels_last=job.channels_last)
        step = make_step(
            model,
            batch_size=job.batch_size,
            resolution=job.resolution,
            train=job.train,
            amp=job.amp,
            channels_last=job.channels_last,
        )
        gc.collect()
        if _reset_peak_rss():
            before = _status_kib("VmRSS") * 1024
            step()
            return PeakMemory(_status_kib("VmHWM") * 1024 - before, MEM_CPU_RSS)
        before = _maxrss_bytes()
        step()
        return PeakMemory(_maxrss_bytes() - before, MEM_CPU_MAXRSS)


def _child_main(job: _Job, conn: Connection) -> None:
    try:
        conn.send(("ok", _measure_in_child(job)))
    except BaseException as exc:  # reported to the parent, which decides what it means
        kind = "oom" if is_out_of_memory(exc) else "error"
        conn.send((kind, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def cpu_peak_memory(
    model: str | Path | DualViTConfig | nn.Module,
    *,
    resolution: int,
    batch_size: int,
    train: bool = False,
    amp: str | None = None,
    channels_last: bool = False,
    threads: int | None = None,
    timeout_s: float = 600.0,
) -> PeakMemory:
    """Peak host memory of one step on a fresh process (see the module docstring).

    ``model`` is a ``create_model`` spec (rebuilt in the child) or a module (pickled to it).
    Raises ``torch.OutOfMemoryError`` when the step, or the child as a whole, ran out of
    memory, and RuntimeError for any other failure in the child.
    """
    job = _Job(model, resolution, batch_size, train, amp, channels_last, threads)
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(job, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            child.kill()
            child.join()
            raise RuntimeError(f"memory measurement: no answer from the child in {timeout_s} s")
        kind, payload = receiver.recv()
    except EOFError:
        child.join()
        if child.exitcode == -9:  # SIGKILL, most likely the kernel's OOM killer
            raise torch.OutOfMemoryError("memory measurement: the child was killed") from None
        raise RuntimeError(f"memory measurement: the child died (exit {child.exitcode})") from None
    finally:
        receiver.close()
    child.join()
    if kind == "oom":
        raise torch.OutOfMemoryError(payload)
    if kind == "error":
        raise RuntimeError(f"memory measurement failed in the child: {payload}")
    return payload
