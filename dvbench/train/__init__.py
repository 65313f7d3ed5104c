"""Short-schedule ("proxy") training: data sources and a fast, seeded training loop.

A :class:`DataSpec` (or ``load_data``) turns a built-in set (``digits``, ``cifar10``,
``cifar100``) or an ImageFolder folder into in-memory tensors; ``train_candidate`` trains one
model spec on them under ``TrainSettings`` and returns a ``TrainResult``. A :class:`Budget`
stops a run early and a checkpoint file continues it later, on the same schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvbench._lazy import lazy_names

# Names resolve on first use (PEP 562), so importing a torch-free part (``.settings``: what
# ``dvbench train --help`` shows) does not import torch through this package.
_WHERE = {
    "build_candidate": "candidate", "parse_overrides": "candidate", "scale_width": "candidate",
    "swin_window_for": "candidate",
    "BUILTIN_SOURCES": "settings", "DataSpec": "data", "ProxyData": "data",
    "load_data": "data", "random_crop_flip": "data",
    "Budget": "settings", "TrainSettings": "settings",
    "TrainProgress": "loop", "TrainResult": "loop", "evaluate": "loop",
    "make_optimizer": "loop", "train_candidate": "loop",
    "rich_progress": "progress",
}  # fmt: skip
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
assert sorted(__all__) == sorted(_WHERE)

if TYPE_CHECKING:
    from dvbench.train.candidate import (
        build_candidate,
        parse_overrides,
        scale_width,
        swin_window_for,
    )
    from dvbench.train.data import DataSpec, ProxyData, load_data, random_crop_flip
    from dvbench.train.loop import (
        TrainProgress,
        TrainResult,
        evaluate,
        make_optimizer,
        train_candidate,
    )
    from dvbench.train.progress import rich_progress
    from dvbench.train.settings import BUILTIN_SOURCES, Budget, TrainSettings


__getattr__, __dir__ = lazy_names("dvbench.train", _WHERE, globals())
