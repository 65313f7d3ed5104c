"""A space's device profile (``device: FILE``): where the file is looked for, what a space
that predicts ``latency_pred_ms`` requires of it, and what a study records of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dvbench.errors import UsageError

__all__ = ["PREDICTED_LATENCY", "check_device", "device_record", "load_device"]

#: The metric a device profile predicts.
PREDICTED_LATENCY = "latency_pred_ms"


def load_device(value: Any, path: Path | None):
    """The device profile a space's ``device:`` names: relative to the space file's folder
    when it is there, else to the working directory."""
    from dvbench.latency import load_device_profile

    if not isinstance(value, (str, Path)) or not str(value):
        raise ValueError(f"device: a device profile file, got {value!r}")
    file = Path(value).expanduser()
    if not file.is_absolute() and path is not None and (path.parent / file).is_file():
        file = path.parent / file
    return load_device_profile(file)


def check_device(space: Any) -> None:
    """``latency_pred_ms`` needs a device profile measured at the space's profiling
    resolution and batch size, on this torch release."""
    if not space.predicts_latency:
        return
    if space.device is None:
        raise UsageError(
            f"{PREDICTED_LATENCY}: predicted from a device profile; add device: FILE to the "
            "space (or --device-profile FILE); make one with dvbench profile "
            f"--calibrate-device FILE --space {space.name}"
        )
    space.device.check(batch_size=space.profile.batch_sizes[0], resolution=space.profile.resolution)


def device_record(profile: Any) -> dict[str, Any]:
    """What a study records of its device profile: where and how it was measured, the fit
    (its coefficients give predictions their meaning) and its leave-one-out error."""
    fit = profile.fit
    return {
        "label": profile.label,
        "device": profile.device,
        "device_name": profile.device_name,
        "torch": profile.torch,
        "batch_size": profile.batch_size,
        "threads": profile.threads,
        "resolution": profile.resolution,
        "space": profile.space,
        "samples": len(profile.samples),
        "created": profile.created,
        "model": fit.model,
        "coef": dict(zip(fit.inputs, fit.coef)),
        "intercept": fit.intercept,
        "loo_mdape": profile.held_out["mdape"],
        "loo_spearman": profile.held_out["spearman"],
    }
