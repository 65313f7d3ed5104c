"""Profile models by name: cost, latency, throughput and memory per model and batch size.

:func:`profile_models` is the one function the CLI, the search and the comparison call. It
returns :class:`ProfileResult` values (the cost report, the raw timing samples, settings);
:func:`results_to_frame` and :func:`write_results` are views of them.
"""

from __future__ import annotations

import gc
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import timm
import torch
import torch.nn as nn

from dvbench.errors import UsageError
from dvbench.profile.flops import CostReport, count_flops
from dvbench.profile.memory import (
    PeakMemory,
    cpu_peak_memory,
    cuda_peak_memory,
    is_out_of_memory,
)
from dvbench.profile.timing import (
    AMP_DTYPES,
    Measurement,
    input_channels,
    make_step,
    measure,
    prepare_model,
    synchronizer,
)
from dvbench.runtime import num_threads, resolve_device

if TYPE_CHECKING:
    import os

    from dvbench.models.config import DualViTConfig

    #: What :func:`profile_models` accepts as a model.
    ModelSpec = str | Path | DualViTConfig | nn.Module

__all__ = [
    "COLUMNS",
    "ProfileResult",
    "ProfileSettings",
    "parse_batch_sizes",
    "profile_models",
    "results_to_frame",
    "write_results",
]

#: Columns of :func:`results_to_frame`, in order: the required ones, then the extras.
COLUMNS: tuple[str, ...] = (
    "model",
    "resolution",
    "batch_size",
    "device",
    "params_m",
    "gflops",
    "latency_ms_median",
    "latency_ms_p10",
    "latency_ms_p90",
    "throughput_img_s",
    "peak_mem_mb",
    "status",
    "mode",
    "threads",
    "runs",
    "warmup",
    "amp",
    "channels_last",
    "compile_s",
    "mem_method",
    "unsupported_ops",
    "uncounted_ops",
    "device_name",
    "torch",
    "timm",
)

STATUS_OK = "ok"
STATUS_OOM = "oom"


@dataclass(frozen=True)
class ProfileSettings:
    """How to profile, validated once: the settings of a run, shared by all its results.

    ``memory=None`` means "on where it is free": CUDA (``max_memory_allocated``); on the CPU
    it needs a child process per row, so it is off unless asked for. ``threads=None`` uses
    every core the process may use; the results carry the resolved values. Bad values raise
    :class:`~dvbench.errors.UsageError` naming the field.
    """

    resolution: int = 224
    batch_sizes: tuple[int, ...] = (1,)
    device: str = "cpu"
    latency: bool = True
    memory: bool | None = None
    train: bool = False
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    threads: int | None = None
    warmup: int = 2
    min_runs: int = 10
    min_time_s: float = 1.0
    max_runs: int | None = None

    def __post_init__(self) -> None:
        res = self.resolution
        if isinstance(res, bool) or not isinstance(res, int) or res < 1:
            raise UsageError(f"resolution: must be a positive integer, got {res!r}")
        object.__setattr__(self, "batch_sizes", parse_batch_sizes(self.batch_sizes))
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise UsageError(f"amp: must be one of {', '.join(AMP_DTYPES)}, got {self.amp!r}")
        for name, lowest in (("threads", 1), ("warmup", 0), ("min_runs", 1), ("max_runs", 1)):
            value = getattr(self, name)
            if value is None and name in ("threads", "max_runs"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise UsageError(f"{name}: must be an integer >= {lowest}, got {value!r}")
        if isinstance(self.min_time_s, bool) or not (
            isinstance(self.min_time_s, (int, float)) and self.min_time_s >= 0
        ):
            raise UsageError(f"min_time_s: must not be negative, got {self.min_time_s!r}")
        for name in ("latency", "train", "channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name}: must be true or false, got {getattr(self, name)!r}")
        if self.memory is not None and not isinstance(self.memory, bool):
            raise UsageError(f"memory: must be true or false, got {self.memory!r}")

    @property
    def measuring(self) -> bool:
        """Whether anything beyond the FLOP count is measured."""
        return bool(self.latency or self.memory or self.compile)


@dataclass(frozen=True)
class ProfileResult:
    """One model at one batch size. Cost is per image; timing and memory per batch."""

    model: str
    batch_size: int
    settings: ProfileSettings
    cost: CostReport
    measurement: Measurement | None = None
    compile_s: float | None = None
    memory: PeakMemory | None = None
    status: str = STATUS_OK
    environment: Mapping[str, str] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The result as one table row (keys: :data:`COLUMNS`; None where not measured)."""
        m, s = self.measurement, self.settings
        return {
            "model": self.model,
            "resolution": s.resolution,
            "batch_size": self.batch_size,
            "device": s.device,
            "params_m": self.cost.params_m,
            "gflops": self.cost.gflops,
            "latency_ms_median": m.median_s * 1e3 if m else None,
            "latency_ms_p10": m.p10_s * 1e3 if m else None,
            "latency_ms_p90": m.p90_s * 1e3 if m else None,
            "throughput_img_s": m.throughput if m else None,
            "peak_mem_mb": self.memory.mib if self.memory else None,
            "status": self.status,
            "mode": "train" if s.train else "inference",
            "threads": s.threads,
            "runs": m.runs if m else None,
            "warmup": s.warmup if m else None,
            "amp": s.amp,
            "channels_last": s.channels_last,
            "compile_s": self.compile_s,
            "mem_method": self.memory.method if self.memory else None,
            "unsupported_ops": _format_ops(self.cost.unsupported_ops),
            "uncounted_ops": _format_ops(self.cost.uncounted_ops),
            **self.environment,
        }


def _format_ops(ops: Mapping[str, int]) -> str:
    return ";".join(f"{op}={count}" for op, count in ops.items())


def parse_batch_sizes(text: str | Iterable[int]) -> tuple[int, ...]:
    """``"1,8,64"`` (or a sequence) -> (1, 8, 64); UsageError for anything but positive ints."""
    items = text.split(",") if isinstance(text, str) else list(text)
    sizes = []
    for item in items:
        try:
            size = int(str(item).strip())
        except ValueError:
            size = 0
        if size < 1 or str(item).strip() != str(size):
            raise UsageError(f"batch size: expected positive integers like 1,8,64, got {text!r}")
        sizes.append(size)
    if not sizes:
        raise UsageError("batch size: give at least one")
    return tuple(dict.fromkeys(sizes))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _model_name(spec: ModelSpec) -> str:
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    from dvbench.models.registry import display_name

    return display_name(spec)


def _build(spec: ModelSpec, resolution: int) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    from dvbench.models.registry import create_model

    return create_model(spec, img_size=resolution)


def _count(model: nn.Module, name: str, resolution: int) -> CostReport:
    """The cost at batch 1; a model that cannot take this input size is the user's error.

    A failed trace is only blamed on the input size when a plain forward at that size fails
    too; a failure of tracing alone is a bug and propagates.
    """
    try:
        return count_flops(model, resolution)
    except UsageError:
        raise
    except (RuntimeError, ValueError, AssertionError) as exc:
        if is_out_of_memory(exc):
            raise
        reason = _forward_failure(model, resolution)
        if reason is None:
            raise
    raise UsageError(f"{name} cannot take a {resolution} px input: {reason}")


def _forward_failure(model: nn.Module, resolution: int) -> str | None:
    """Why one plain eval forward at ``resolution`` fails (first line), or None if it runs."""
    was_training = model.training
    device = next(model.parameters(), torch.empty(0)).device
    try:
        with torch.inference_mode():
            inputs = torch.zeros(1, input_channels(model), resolution, resolution, device=device)
            model.eval()(inputs)
    except (RuntimeError, ValueError, AssertionError) as exc:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    finally:
        model.train(was_training)
    return None


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _time_first_call(step: Callable[[], Any], device: torch.device) -> float:
    sync = synchronizer(device)
    sync()
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


class _BatchProfiler:
    """Times and measures one prepared model at each batch size of the settings."""

    def __init__(self, settings: ProfileSettings, spec: ModelSpec, model: nn.Module):
        self.settings = settings
        self.spec = spec
        self.device = torch.device(settings.device)
        self.model = prepare_model(
            model, device=self.device, train=settings.train, channels_last=settings.channels_last
        )
        # dynamic=False: one static graph per batch size, as an inference server would use.
        self.forward = torch.compile(self.model, dynamic=False) if settings.compile else None

    def run(self, batch_size: int) -> tuple[Measurement | None, float | None, PeakMemory | None]:
        s = self.settings
        step = make_step(
            self.model,
            batch_size=batch_size,
            resolution=s.resolution,
            device=self.device,
            train=s.train,
            amp=s.amp,
            channels_last=s.channels_last,
            forward=self.forward,
        )
        try:
            compile_s = _time_first_call(step, self.device) if s.compile else None
            measurement = None
            if s.latency:
                measurement = measure(
                    step,
                    batch_size=batch_size,
                    warmup=s.warmup,
                    min_runs=s.min_runs,
                    min_time_s=s.min_time_s,
                    max_runs=s.max_runs,
                    device=self.device,
                    threads=s.threads,
                )
            memory = self._memory(step, batch_size, warmed_up=s.compile or s.latency)
        finally:
            if s.train:
                self.model.zero_grad(set_to_none=True)
        return measurement, compile_s, memory

    def _memory(
        self, step: Callable[[], Any], batch_size: int, *, warmed_up: bool
    ) -> PeakMemory | None:
        s = self.settings
        if not s.memory:
            return None
        if self.device.type == "cuda":
            if not warmed_up:
                step()  # first-call work (kernel selection, optimizer state) is not the peak
            return cuda_peak_memory(step, self.device)
        model = self.model if isinstance(self.spec, nn.Module) else self.spec
        return cpu_peak_memory(
            model,
            resolution=s.resolution,
            batch_size=batch_size,
            train=s.train,
            amp=s.amp,
            channels_last=s.channels_last,
            threads=s.threads,
        )


def profile_models(
    specs: Sequence[ModelSpec],
    settings: ProfileSettings | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[ProfileResult]:
    """Profile each model (``create_model`` spec or module) at each batch size of ``settings``.

    FLOPs and parameters are counted once per model (batch 1, eval mode, on the CPU).
    Latency and peak memory are measured per batch size. A batch size that runs out of
    memory gives a row with status ``"oom"`` and the run goes on. The threads are set for the
    whole run and recorded. User errors (unknown model, unusable resolution, CUDA missing)
    raise :class:`~dvbench.errors.UsageError`.
    """
    if not specs:
        raise UsageError("models: give at least one model")
    settings = settings or ProfileSettings()
    resolved = resolve_device(settings.device)
    report = progress or (lambda message: None)
    environment = {
        "device_name": _device_name(resolved),
        "torch": torch.__version__,
        "timm": timm.__version__,
    }
    results: list[ProfileResult] = []
    with num_threads(settings.threads) as used_threads:
        settings = replace(
            settings,
            device=str(resolved),
            memory=resolved.type == "cuda" if settings.memory is None else settings.memory,
            threads=used_threads,
        )
        for spec in specs:
            name = _model_name(spec)
            report(f"{name}: counting FLOPs")
            model = _build(spec, settings.resolution)
            cost = _count(model, name, settings.resolution)
            profiler = _BatchProfiler(settings, spec, model) if settings.measuring else None
            for batch_size in settings.batch_sizes:
                result = ProfileResult(name, batch_size, settings, cost, environment=environment)
                if profiler is not None:
                    report(f"{name}: batch {batch_size}")
                    result = _profile_batch(profiler, result)
                results.append(result)
            del model, profiler
            _release(resolved)
    return results


def _profile_batch(profiler: _BatchProfiler, result: ProfileResult) -> ProfileResult:
    try:
        measurement, compile_s, memory = profiler.run(result.batch_size)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
    else:
        return replace(result, measurement=measurement, compile_s=compile_s, memory=memory)
    # Outside the except block, so the traceback and the tensors it holds are gone.
    _release(profiler.device)
    return replace(result, status=STATUS_OOM)


def results_to_frame(results: Iterable[ProfileResult]) -> pd.DataFrame:
    """One row per model and batch size, columns :data:`COLUMNS` (NaN/None where not measured)."""
    return pd.DataFrame([r.row() for r in results], columns=list(COLUMNS))


def write_results(results: Iterable[ProfileResult] | pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the table as JSON (``.json``: a list of records), Parquet (``.parquet``) or CSV."""
    frame = results if isinstance(results, pd.DataFrame) else results_to_frame(results)
    path = Path(path)
    suffix = path.suffix.lower()
    if path.parent and not path.parent.exists():
        raise UsageError(f"out: directory {path.parent} does not exist")
    if suffix == ".json":
        frame.to_json(path, orient="records", indent=2)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
