"""Short-schedule ("proxy") training: data sources and a fast, seeded training loop.

A :class:`DataSpec` (or ``load_data``) turns a built-in set (``digits``, ``cifar10``,
``cifar100``) or an ImageFolder folder into in-memory tensors; ``train_candidate`` trains one
model spec on them under ``TrainSettings`` and returns a ``TrainResult``. A :class:`Budget`
stops a run early and a checkpoint file continues it later, on the same schedule.
"""

from dvbench.train.candidate import build_candidate, parse_overrides, scale_width, swin_window_for
from dvbench.train.data import BUILTIN_SOURCES, DataSpec, ProxyData, load_data, random_crop_flip
from dvbench.train.loop import (
    Budget,
    TrainProgress,
    TrainResult,
    TrainSettings,
    evaluate,
    make_optimizer,
    train_candidate,
)
from dvbench.train.progress import rich_progress

__all__ = [
    "BUILTIN_SOURCES",
    "Budget",
    "DataSpec",
    "ProxyData",
    "TrainProgress",
    "TrainResult",
    "TrainSettings",
    "build_candidate",
    "evaluate",
    "load_data",
    "make_optimizer",
    "parse_overrides",
    "random_crop_flip",
    "rich_progress",
    "scale_width",
    "swin_window_for",
    "train_candidate",
]
