"""What a proxy run is told to do, and the names the command line shows: no torch here, so
``dvbench train --help`` and the search-space parser answer without importing it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AMP_MODES",
    "BUILTIN_SOURCES",
    "DEFAULT_DATA_DIR",
    "NORMALIZATIONS",
    "OUTPUT_SUFFIXES",
    "Budget",
    "TrainSettings",
]

AMP_MODES = ("auto", "bf16", "fp16", "off")
OUTPUT_SUFFIXES = (".json", ".csv")
BUILTIN_SOURCES = ("digits", "cifar10", "cifar100")
NORMALIZATIONS = ("dataset", "imagenet")
#: Where ``cifar10``/``cifar100`` are looked for (and downloaded to) without ``data_dir``.
DEFAULT_DATA_DIR = Path.home() / ".cache" / "dvbench" / "data"


@dataclass(frozen=True)
class TrainSettings:
    """How to train a candidate. The run stops at whichever budget is reached first.

    ``epochs`` may be fractional; ``time_limit_s`` counts training steps only (with it the
    schedule follows elapsed time, so such runs depend on the machine and are not
    reproducible). The learning rate warms up linearly over ``warmup_fraction`` of the budget,
    then decays on a cosine to ``min_lr_ratio * lr``. On CPU, results are reproducible for a
    given thread count (reductions split differently across threads). ``crop_padding``
    defaults to ``res // 8`` (4 px at 32 px).
    ``amp="auto"`` means bf16 autocast on GPUs that support it, fp16 (with loss scaling) on
    other GPUs, and full precision on CPU. ``num_threads`` defaults to every usable core.
    """

    epochs: float | None = 3.0
    max_steps: int | None = None
    time_limit_s: float | None = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    drop_path_rate: float = 0.0
    grad_clip: float | None = 1.0
    augment: bool = True
    crop_padding: int | None = None
    amp: str = "auto"
    channels_last: bool = False
    eval_batch_size: int = 500
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.max_steps is None and self.time_limit_s is None:
            raise ValueError("epochs: give a budget (epochs, max_steps or time_limit_s)")
        for name in ("epochs", "time_limit_s", "lr", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        for name in ("max_steps", "batch_size", "eval_batch_size", "num_threads"):
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and value > 0):
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if self.crop_padding is not None and not (
            _is_int(self.crop_padding) and (self.crop_padding >= 0)
        ):
            raise ValueError(
                f"crop_padding: must be a non-negative integer, got {self.crop_padding!r}"
            )
        for name in ("weight_decay", "label_smoothing", "drop_path_rate"):
            value = getattr(self, name)
            if not (_is_number(value) and value >= 0):
                raise ValueError(f"{name}: must be a non-negative number, got {value!r}")
        for name in ("warmup_fraction", "min_lr_ratio", "label_smoothing", "drop_path_rate"):
            value = getattr(self, name)
            if not (_is_number(value) and 0 <= value < 1):
                raise ValueError(f"{name}: must be in [0, 1), got {value!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp: must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")

    def lr_factor(self, progress: float) -> float:
        """Multiplier of ``lr`` at ``progress`` (0..1) through the budget: warm-up, then cosine."""
        progress = min(max(progress, 0.0), 1.0)
        if progress < self.warmup_fraction:
            return max(progress / self.warmup_fraction, self.min_lr_ratio)
        span = 1.0 - self.warmup_fraction
        cosine = 0.5 * (1.0 + math.cos(math.pi * (progress - self.warmup_fraction) / span))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


@dataclass(frozen=True)
class Budget:
    """Where a call of :func:`train_candidate` stops: after ``epochs``, ``steps`` or ``seconds``
    of training (whichever comes first), counted from the start of the run, not of the call.

    The learning-rate schedule is always the one of :class:`TrainSettings`' full budget (its
    horizon), so stopping at a budget and continuing from the checkpoint later gives the same
    network, step for step, as training to the later budget in one go (successive halving and
    rung ladders rely on this). A stop past the horizon is the horizon.
    """

    epochs: float | None = None
    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.steps is None and self.seconds is None:
            raise ValueError("budget: give epochs, steps or seconds")
        for name in ("epochs", "seconds"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value > 0):
                raise ValueError(f"budget.{name}: must be a positive number, got {value!r}")
        if self.steps is not None and not (_is_int(self.steps) and self.steps > 0):
            raise ValueError(f"budget.steps: must be a positive integer, got {self.steps!r}")

    def describe(self) -> str:
        parts = [
            f"{value:g} {unit}"
            for value, unit in ((self.epochs, "epochs"), (self.steps, "steps"), (self.seconds, "s"))
            if value is not None
        ]
        return " or ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
