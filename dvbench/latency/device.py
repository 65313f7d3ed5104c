"""Device profiles: N candidates of a space measured on one machine, and the fitted model.

A profile is a small JSON file that says where and how it was measured (device name, torch
version, device type, batch size, threads, resolution, the timing statistics of ``profile``),
every measurement (the candidate's config, features and latency percentiles) and the fit
with its leave-one-out errors. It is made on the machine to be predicted
(``dvbench profile --calibrate-device FILE --space small``) and read anywhere: the features a
prediction needs are traced on the CPU of whoever asks.

A profile predicts for the settings it was measured at. :meth:`DeviceProfile.check` refuses
another batch size, resolution or torch release with one line naming both values.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dvbench.errors import UsageError
from dvbench.latency._schema import check_profile, read_json_file
from dvbench.latency.features import Features, cost_features
from dvbench.latency.predictor import LatencyFit, fit_latency

__all__ = [
    "FORMAT",
    "VERSION",
    "DeviceProfile",
    "Sample",
    "calibrate_device",
    "fit_profile",
    "load_device_profile",
    "measure_samples",
    "round_latency",
]

FORMAT = "dvbench-device-profile"
#: Bumped when the file's meaning changes; older files are refused with the reason.
VERSION = 1


@dataclass(frozen=True)
class Sample:
    """One measured candidate: its config, features (with ``gflops``) and latency (ms)."""

    name: str
    features: Mapping[str, float]
    latency_ms_median: float
    latency_ms_p10: float
    latency_ms_p90: float
    runs: int
    config: Mapping[str, Any] = field(default_factory=dict)
    rounds: tuple[float, ...] = ()  # each round's median (ms); latency_ms_median is theirs

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "features": dict(self.features),
            "latency_ms_median": self.latency_ms_median,
            "latency_ms_p10": self.latency_ms_p10,
            "latency_ms_p90": self.latency_ms_p90,
            "runs": self.runs,
            "rounds": list(self.rounds),
            "config": dict(self.config),
        }


def _release(version: str) -> str:
    """``2.14.1+cu128`` -> ``2.14``: kernels change between releases, not between patches."""
    return ".".join(version.split("+")[0].split(".")[:2])


@dataclass(frozen=True)
class DeviceProfile:
    """Where and how latencies were measured, the measurements, and the fitted model."""

    device: str
    device_name: str
    torch: str
    batch_size: int
    threads: int | None
    resolution: int
    space: str
    samples: tuple[Sample, ...]
    fit: LatencyFit
    timing: Mapping[str, Any] = field(default_factory=dict)
    created: str = ""
    path: Path | None = None

    @property
    def label(self) -> str:
        """``Intel Xeon ... (cpu, 1 thread, batch 1, 224 px, torch 2.14)``."""
        threads = (
            f"{self.threads} thread{'s' if self.threads != 1 else ''}, " if self.threads else ""
        )
        return (
            f"{self.device_name} ({self.device}, {threads}batch {self.batch_size}, "
            f"{self.resolution} px, torch {_release(self.torch)})"
        )

    @property
    def held_out(self) -> Mapping[str, float]:
        """The chosen model's leave-one-out figures (``mdape`` %, ``spearman``)."""
        return self.fit.loo[self.fit.model]

    def check(
        self,
        *,
        batch_size: int | None = None,
        resolution: int | None = None,
        torch_version: str | None = None,
    ) -> None:
        """UsageError (one line, both values named) when asked for other settings than the
        measured ones. ``torch_version`` defaults to the running torch."""
        import torch

        where = self.path or "the device profile"
        wanted = torch_version or torch.__version__
        if _release(wanted) != _release(self.torch):
            raise UsageError(
                f"{where}: measured with torch {self.torch}, this is torch {wanted}; kernels "
                "change between torch releases, so re-run `dvbench profile --calibrate-device` "
                "with this torch"
            )
        if batch_size is not None and batch_size != self.batch_size:
            raise UsageError(
                f"{where}: measured at batch {self.batch_size}, asked for batch {batch_size}; "
                f"calibrate at --batch-size {batch_size}"
            )
        if resolution is not None and resolution != self.resolution:
            raise UsageError(
                f"{where}: measured at {self.resolution} px, asked for {resolution} px; "
                f"calibrate at --res {resolution}"
            )

    def predict(self, features: Features | Mapping[str, float]) -> float:
        """Predicted latency (ms, per batch) of a candidate's features."""
        return self.fit.predict(_row(features))

    def outside(self, features: Features | Mapping[str, float]) -> list[str]:
        """The inputs of the chosen model for which ``features`` lie outside the measured
        range (widened by 10 %): the prediction is an extrapolation there."""
        row = _row(features)
        return [
            text for text in self.fit.outside(row, margin=0.1) if text.split()[0] in self.fit.inputs
        ]

    def as_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "device": self.device,
            "device_name": self.device_name,
            "torch": self.torch,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "resolution": self.resolution,
            "space": self.space,
            "timing": dict(self.timing),
            "samples": [s.as_dict() for s in self.samples],
            "fit": self.fit.as_dict(),
        }

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        # strict JSON: an undefined figure (a constant rank order's Spearman) is null
        tmp.write_text(json.dumps(_nulls(self.as_dict()), indent=1, allow_nan=False) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: Mapping, *, path: Path | None = None) -> DeviceProfile:
        return cls(
            device=str(data["device"]),
            device_name=str(data["device_name"]),
            torch=str(data["torch"]),
            batch_size=int(data["batch_size"]),
            threads=None if data.get("threads") is None else int(data["threads"]),
            resolution=int(data["resolution"]),
            space=str(data.get("space") or ""),
            samples=tuple(
                Sample(
                    name=str(s["name"]),
                    features={k: float(v) for k, v in s["features"].items()},
                    latency_ms_median=float(s["latency_ms_median"]),
                    latency_ms_p10=float(s["latency_ms_p10"]),
                    latency_ms_p90=float(s["latency_ms_p90"]),
                    runs=int(s["runs"]),
                    config=dict(s.get("config") or {}),
                    rounds=tuple(float(x) for x in s.get("rounds") or ()),
                )
                for s in data["samples"]
            ),
            fit=LatencyFit.from_dict(data["fit"]),
            timing=dict(data.get("timing") or {}),
            created=str(data.get("created") or ""),
            path=path,
        )


def _nulls(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (``null`` in the file)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls(v) for v in value]
    return value


def _row(features: Features | Mapping[str, float]) -> dict[str, float]:
    if isinstance(features, Features):
        return {**features.as_dict(), "gflops": features.gflops}
    return dict(features)


def load_device_profile(path: str | os.PathLike) -> DeviceProfile:
    """Read a device profile; UsageError (one line naming the file and the field) for a
    missing, foreign, oversized, non-regular, non-strict or out-of-schema file
    (:mod:`dvbench.latency._schema`)."""
    path = Path(path)
    try:
        data = read_json_file(path)
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such device profile (make one: dvbench profile --calibrate-device "
            f"{path} --space small)"
        ) from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a readable device profile ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path}: not a dvbench device profile (no format: {FORMAT})")
    if data.get("version") != VERSION:
        raise UsageError(
            f"{path}: device profile version {data.get('version')!r}, this dvbench reads "
            f"version {VERSION}; re-run `dvbench profile --calibrate-device`"
        )
    try:
        check_profile(data)
        return DeviceProfile.from_dict(data, path=path)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: broken device profile: {exc}") from None


def measure_samples(
    candidates: Sequence[tuple[str, Any]],
    settings: Any,
    *,
    rounds: int = 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Sample], dict[str, str]]:
    """Features and measured latency of each (name, config or model); the environment of
    the measurement (device name, torch) comes back beside them.

    With ``rounds`` > 1 every candidate is timed once per round, the rounds one after the
    other over all candidates (interleaved: a slow spell of a shared machine then falls on
    different candidates in different rounds); a candidate's latency is its fastest round's
    median (:func:`round_latency`: interference only ever adds time), and ``Sample.rounds``
    keeps each round's."""
    from dvbench.profile import profile_models

    if len(settings.batch_sizes) != 1:
        raise UsageError("calibrate-device: give one batch size (a profile is for one)")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise UsageError(f"rounds: must be an integer >= 1, got {rounds!r}")
    features: list[Features] = []
    timed: list[list[Any]] = [[] for _ in candidates]
    environment: dict[str, Any] = {}
    for round_ in range(rounds):
        for index, (name, spec) in enumerate(candidates):
            if progress is not None:
                where = f"round {round_ + 1}/{rounds}, " if rounds > 1 else ""
                progress(f"{name} ({where}{index + 1}/{len(candidates)})")
            model = _model(spec, settings.resolution)  # rebuilt a round: memory stays one model
            if round_ == 0:
                features.append(cost_features(model, settings.resolution))
            result = profile_models([model], settings)[0]
            del model
            if result.status != "ok" or result.measurement is None:
                raise UsageError(f"calibrate-device: {name} could not be timed ({result.status})")
            environment = dict(result.environment) | {
                "device": result.settings.device,
                "threads": result.settings.threads,
            }
            timed[index].append(result.measurement)
    samples = []
    for (name, spec), feats, measurements in zip(candidates, features, timed):
        samples.append(
            Sample(
                name=name,
                features={**feats.as_dict(), "gflops": feats.gflops},
                latency_ms_median=round_latency([m.median_s for m in measurements]) * 1e3,
                latency_ms_p10=round_latency([m.p10_s for m in measurements]) * 1e3,
                latency_ms_p90=round_latency([m.p90_s for m in measurements]) * 1e3,
                runs=sum(m.runs for m in measurements),
                config=spec.to_dict() if hasattr(spec, "to_dict") else {},
                rounds=tuple(m.median_s * 1e3 for m in measurements) if rounds > 1 else (),
            )
        )
    return samples, environment


def _model(spec: Any, resolution: int):
    if not hasattr(spec, "to_dict") and not isinstance(spec, (str, os.PathLike)):
        return spec  # a module
    from dvbench.models.registry import create_model

    return create_model(spec, img_size=resolution)


def round_latency(round_medians: Sequence[float]) -> float:
    """A candidate's latency from its rounds' medians: the lowest. A busy neighbour, a
    page-cache miss or a frequency dip only ever slows a round down, so the fastest round is
    the one least disturbed (the same reason ``timeit`` reports a minimum)."""
    return float(min(round_medians))


def fit_profile(
    samples: Sequence[Sample], environment: Mapping[str, Any], settings: Any, *, space: str
) -> DeviceProfile:
    """The device profile of measured ``samples`` (the fit chosen by leave-one-out error)."""
    fit = fit_latency([s.features for s in samples], [s.latency_ms_median for s in samples])
    return DeviceProfile(
        device=str(environment["device"]),
        device_name=str(environment["device_name"]),
        torch=str(environment["torch"]),
        batch_size=settings.batch_sizes[0],
        threads=environment.get("threads"),
        resolution=settings.resolution,
        space=space,
        samples=tuple(samples),
        fit=fit,
        timing={
            "warmup": settings.warmup,
            "min_runs": settings.min_runs,
            "min_time_s": settings.min_time_s,
            "rounds": max([len(s.rounds) for s in samples] + [1]),
            "statistic": "median" if all(not s.rounds for s in samples) else "lowest round median",
        },
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def calibrate_device(
    configs: Sequence[Any],
    settings: Any,
    *,
    space: str,
    rounds: int = 3,
    progress: Callable[[str], None] | None = None,
) -> DeviceProfile:
    """Measure ``configs`` (candidates of the space named ``space``, e.g. its
    :meth:`~dvbench.space.SearchSpace.random_candidates`) under ``settings`` (a
    :class:`~dvbench.profile.ProfileSettings` with one batch size) in ``rounds`` interleaved
    rounds and fit the profile."""
    from dvbench.latency.predictor import MIN_SAMPLES

    settings = replace(settings, latency=True, memory=False)
    candidates = [(f"{space}_{i:03d}", cfg) for i, cfg in enumerate(configs)]
    if len(candidates) < MIN_SAMPLES:
        raise UsageError(
            f"calibrate-device: {space} has {len(candidates)} distinct buildable "
            f"candidates; a fit needs at least {MIN_SAMPLES}"
        )
    measured, environment = measure_samples(candidates, settings, rounds=rounds, progress=progress)
    return fit_profile(measured, environment, settings, space=space)
