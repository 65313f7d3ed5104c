"""Score candidates with several proxies: seeded batches, one record per proxy, failures kept.

:func:`score_model` is what a search or a calibration calls per candidate; it never raises on
a bad score: a NaN or infinite value, or a :class:`ProxyFailure`, becomes a
:class:`ProxyScore` with ``value=None`` and the reason. Bugs still raise.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn as nn

from dvbench.models import display_name
from dvbench.profile import write_results
from dvbench.proxies._registry import PROXIES, Batch, Proxy, resolve_proxies
from dvbench.proxies._scores import ProxyFailure
from dvbench.runtime import resolve_device
from dvbench.train import ProxyData, build_candidate
from dvbench.train.candidate import ModelSpec
from dvbench.train.data import Normalizer

__all__ = [
    "OUTPUT_SUFFIXES",
    "ProxyScore",
    "ProxyScores",
    "ProxySettings",
    "proxy_batches",
    "score_model",
    "score_models",
    "scores_to_frame",
    "write_scores",
]

#: File types :func:`write_scores` writes.
OUTPUT_SUFFIXES = (".csv", ".json", ".parquet")
_SETTINGS_COLUMNS = ("model", "data", "resolution", "batch_size", "num_batches", "seed", "device")


@dataclass(frozen=True)
class ProxyScore:
    """One proxy's result: the score, or ``None`` and why not; seconds it took."""

    name: str
    value: float | None
    seconds: float
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class ProxyScores:
    """Every proxy's result for one model, and the settings they were taken under."""

    model: str
    data: str
    resolution: int
    batch_size: int
    num_batches: int
    seed: int
    device: str
    scores: Mapping[str, ProxyScore]

    @property
    def values(self) -> dict[str, float | None]:
        """Proxy name -> score (``None`` where it failed): what a search reads as metrics."""
        return {name: score.value for name, score in self.scores.items()}

    @property
    def failures(self) -> dict[str, str]:
        return {name: s.failure for name, s in self.scores.items() if s.failure is not None}

    @property
    def seconds(self) -> float:
        return sum(score.seconds for score in self.scores.values())

    def row(self) -> dict[str, Any]:
        """A flat record: settings, one column per score, ``<name>_s`` per timing."""
        record: dict[str, Any] = {column: getattr(self, column) for column in _SETTINGS_COLUMNS}
        record.update(self.values)
        record.update({f"{name}_s": score.seconds for name, score in self.scores.items()})
        record["seconds"] = self.seconds
        record["failures"] = "; ".join(self.failures.values()) or None
        return record


@dataclass(frozen=True)
class ProxySettings:
    """How candidates are scored: which proxies, on how many batches of how many images.

    ``proxies`` are names from :data:`PROXIES` (a comma-separated string is split; None: all
    of them); after validation the field holds the names as a tuple. ``num_batches``
    defaults to the most any chosen proxy needs (``zico``: 2). Invalid values raise
    ``ValueError`` naming the field.
    """

    proxies: tuple[str, ...] | str | None = None
    batch_size: int = 64
    num_batches: int | None = None

    def __post_init__(self) -> None:
        chosen = resolve_proxies(self.proxies)
        object.__setattr__(self, "proxies", tuple(proxy.name for proxy in chosen))
        _check_positive_int("batch_size", self.batch_size)
        needed = max(proxy.num_batches for proxy in chosen)
        if self.num_batches is None:
            object.__setattr__(self, "num_batches", needed)
        else:
            _check_positive_int("num_batches", self.num_batches)
            if self.num_batches < needed:
                names = ", ".join(p.name for p in chosen if p.num_batches > self.num_batches)
                raise ValueError(
                    f"num_batches: {names} needs at least {needed}, got {self.num_batches}"
                )

    def images_per_batch(self, data: ProxyData) -> int:
        """The batch size ``data`` allows: ``batch_size``, or fewer when the training split
        cannot fill ``num_batches`` disjoint batches; ``ValueError`` below two images."""
        size = min(self.batch_size, data.num_train // self.num_batches)
        if size < 2:
            raise ValueError(
                f"num_batches: {data.name} has {data.num_train} training images, too few for "
                f"{self.num_batches} batches of two or more"
            )
        return size


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")


def proxy_batches(
    data: ProxyData,
    settings: ProxySettings | None = None,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[Batch]:
    """``settings.num_batches`` disjoint batches of training images, drawn by a generator
    seeded with ``seed`` and normalised as the training loop normalises them (the batch size
    is :meth:`ProxySettings.images_per_batch`)."""
    settings = settings or ProxySettings()
    size = settings.images_per_batch(data)
    order = torch.randperm(data.num_train, generator=torch.Generator().manual_seed(seed))
    normalize = Normalizer(data.mean, data.std, device=device)
    batches = []
    for part in order[: size * settings.num_batches].split(size):
        images = data.train_images[part].to(device)
        batches.append(Batch(normalize(images), data.train_labels[part].to(device)))
    return batches


def score_model(
    model_or_spec: nn.Module | ModelSpec,
    data: ProxyData,
    settings: ProxySettings | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    width_mult: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProxyScores:
    """Score one untrained model with the proxies of ``settings`` (default: all of them).

    A spec (name, config file, :class:`DualViTConfig`) is built for ``data``'s classes and
    resolution by :func:`dvbench.train.build_candidate` (with ``overrides``/``width_mult``),
    initialised from ``seed``; a module is scored as given (never changed: every proxy works
    on its own copy). The batches come from :func:`proxy_batches` with the same ``seed``.
    Torch is reseeded before each proxy and the caller's random state is restored
    afterwards, so the same arguments give the same scores. ``device`` defaults to the
    module's device, or the CPU for a spec. ``progress`` is told ``"MODEL: PROXY"`` before
    each proxy runs.
    """
    settings = settings or ProxySettings()
    settings.images_per_batch(data)  # fail before building anything
    if isinstance(model_or_spec, nn.Module):
        if overrides or width_mult is not None:
            raise ValueError("overrides: only apply when the model is given as a spec")
        name = _module_name(model_or_spec)
        home = next(model_or_spec.parameters(), torch.empty(0)).device
        target = home if device is None else resolve_device(str(device))
    else:
        name = display_name(model_or_spec)
        target = resolve_device("cpu" if device is None else str(device))
    rng_devices = [target.index or 0] if target.type == "cuda" else []

    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        if isinstance(model_or_spec, nn.Module):
            model = model_or_spec
        else:
            model = build_candidate(
                model_or_spec,
                num_classes=data.num_classes,
                resolution=data.resolution,
                overrides=overrides,
                width_mult=width_mult,
            )
        if next(model.parameters(), torch.empty(0)).device != target:
            model = _moved_copy(model, target)
        batches = proxy_batches(data, settings, seed=seed, device=target)
        scores = {}
        for proxy in resolve_proxies(settings.proxies):
            if progress is not None:
                progress(f"{name}: {proxy.name}")
            torch.manual_seed(seed)
            scores[proxy.name] = _run(proxy, model, batches, target)
    return ProxyScores(
        model=name,
        data=data.name,
        resolution=data.resolution,
        batch_size=int(batches[0].labels.numel()),
        num_batches=len(batches),
        seed=seed,
        device=str(target),
        scores=scores,
    )


def score_models(
    models: Iterable[nn.Module | ModelSpec],
    data: ProxyData,
    settings: ProxySettings | None = None,
    **kwargs: Any,
) -> list[ProxyScores]:
    """:func:`score_model` for each model, with the same data, settings and keywords."""
    return [score_model(model, data, settings, **kwargs) for model in models]


def _run(proxy: Proxy, model: nn.Module, batches: Sequence[Batch], device: torch.device):
    start = time.perf_counter()
    failure = None
    try:
        value: float | None = float(proxy.score(model, batches))
        if not math.isfinite(value):
            failure = f"score is {value}"
    except (ProxyFailure, torch.linalg.LinAlgError) as exc:
        failure = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    except torch.cuda.OutOfMemoryError:
        failure = "out of memory"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if failure is not None:
        return ProxyScore(proxy.name, None, seconds, f"{proxy.name}: {failure}")
    return ProxyScore(proxy.name, value, seconds)


def _module_name(model: nn.Module) -> str:
    cfg = getattr(model, "cfg", None)
    pretrained = getattr(model, "pretrained_cfg", None) or {}
    return getattr(cfg, "name", None) or pretrained.get("architecture") or type(model).__name__


def _moved_copy(model: nn.Module, device: torch.device) -> nn.Module:
    return copy.deepcopy(model).to(device)


def scores_to_frame(scores: Sequence[ProxyScores]) -> pd.DataFrame:
    """One row per model; proxy columns in :data:`PROXIES` order, then their timings."""
    present = [name for name in PROXIES if any(name in s.scores for s in scores)]
    columns = [
        *_SETTINGS_COLUMNS,
        *present,
        *(f"{name}_s" for name in present),
        "seconds",
        "failures",
    ]
    return pd.DataFrame([s.row() for s in scores], columns=columns)


def write_scores(scores: Sequence[ProxyScores], path: str | os.PathLike) -> Path:
    """Write the table as ``.csv``, ``.json`` (a list of records) or ``.parquet``."""
    return write_results(scores_to_frame(scores), path)
