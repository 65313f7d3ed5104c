"""Short-schedule ("proxy") training: data sources and a fast, seeded training loop.

``load_data`` turns a built-in set (``digits``, ``cifar10``, ``cifar100``) or an ImageFolder
folder into in-memory tensors; ``train_candidate`` trains one model spec on them under
``TrainSettings`` and returns a ``TrainResult``.
"""

from dvbench.train.candidate import build_candidate, parse_overrides, scale_width, swin_window_for
from dvbench.train.data import BUILTIN_SOURCES, ProxyData, load_data, random_crop_flip
from dvbench.train.loop import (
    TrainProgress,
    TrainResult,
    TrainSettings,
    evaluate,
    resolve_device,
    train_candidate,
)
from dvbench.train.progress import rich_progress

__all__ = [
    "BUILTIN_SOURCES",
    "ProxyData",
    "TrainProgress",
    "TrainResult",
    "TrainSettings",
    "build_candidate",
    "evaluate",
    "load_data",
    "parse_overrides",
    "random_crop_flip",
    "resolve_device",
    "rich_progress",
    "scale_width",
    "swin_window_for",
    "train_candidate",
]
