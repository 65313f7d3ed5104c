"""The one table of proxies: name -> how to score, which way is better, what it needs, the paper.

Every proxy is scored as ``proxy.score(model, batches)``: ``batches`` are normalised
``(images, labels)`` pairs at the proxy resolution, at least ``proxy.num_batches`` of them.
``params_m`` and ``gflops`` are here as the baselines a training-free proxy has to beat: as
predictors of accuracy, bigger is better, so their ``direction`` here is ``"maximize"`` even
though a search minimises them as costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from dvbench.metrics import METRICS

if TYPE_CHECKING:  # the table itself imports no torch: `dvbench proxies --help` lists it
    import torch
    import torch.nn as nn

__all__ = ["BASELINES", "PROXIES", "Batch", "Proxy", "resolve_proxies"]

DIRECTIONS = ("maximize", "minimize")


class Batch(NamedTuple):
    """One mini-batch: normalised float images ``(B, C, H, W)`` and class labels ``(B,)``."""

    images: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class Proxy:
    """A training-free score of an untrained network.

    ``name`` is its metric in :mod:`dvbench.metrics`, which also gives its :attr:`label`;
    ``direction`` is the way the score points to higher accuracy; ``num_batches`` how many
    batches ``score`` reads (the runner draws the largest number any selected proxy needs);
    ``needs_labels`` whether it reads labels; ``uses_data`` whether it reads images at all.
    """

    name: str
    score: Callable[[nn.Module, Sequence[Batch]], float]
    citation: str
    direction: str = "maximize"
    num_batches: int = 1
    needs_labels: bool = False
    uses_data: bool = True
    baseline: bool = False

    def __post_init__(self) -> None:
        if self.name not in METRICS:
            raise ValueError(f"name: {self.name!r} is not a metric of dvbench.metrics")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction: must be maximize or minimize, got {self.direction!r}")
        if self.num_batches < 1:
            raise ValueError(f"num_batches: must be at least 1, got {self.num_batches}")

    @property
    def label(self) -> str:
        """What tables call it: its metric's label (:mod:`dvbench.metrics`)."""
        return METRICS[self.name].label


# Adapters from the uniform (model, batches) call to each paper's natural arguments.
def _params_m(model: nn.Module, batches: Sequence[Batch]) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6  # as count_cost counts them


def _gflops(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.profile import count_cost

    return count_cost(model, tuple(batches[0].images.shape[-2:])).gflops


def _synflow(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import synflow

    return synflow(model, batches[0].images.shape[1:])


def _naswot(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import naswot

    return naswot(model, batches[0].images)


def _grad_norm(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import grad_norm

    return grad_norm(model, *batches[0])


def _snip(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import snip

    return snip(model, *batches[0])


def _jacob_cov(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import jacob_cov

    return jacob_cov(model, batches[0].images)


def _zico(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import zico

    return zico(model, batches)


def _meco(model: nn.Module, batches: Sequence[Batch]) -> float:
    from dvbench.proxies._scores import meco

    return meco(model, batches[0].images)


_TABLE = (
    Proxy(
        "params_m",
        _params_m,
        "baseline: parameter count (millions)",
        uses_data=False,
        baseline=True,
    ),
    Proxy(
        "gflops",
        _gflops,
        "baseline: fvcore multiply-accumulates per image at the proxy resolution",
        uses_data=False,
        baseline=True,
    ),
    Proxy(
        "synflow",
        _synflow,
        "Tanaka et al., NeurIPS 2020, arXiv:2006.05467",
        uses_data=False,
    ),
    Proxy("naswot", _naswot, "Mellor et al., ICML 2021, arXiv:2006.04647"),
    Proxy(
        "grad_norm",
        _grad_norm,
        "Abdelfattah et al., ICLR 2021, arXiv:2101.08134",
        needs_labels=True,
    ),
    Proxy(
        "snip",
        _snip,
        "Lee et al., ICLR 2019, arXiv:1810.02340; Abdelfattah et al., ICLR 2021",
        needs_labels=True,
    ),
    Proxy(
        "jacob_cov",
        _jacob_cov,
        "Mellor et al., arXiv:2006.04647v1; Abdelfattah et al., ICLR 2021",
    ),
    Proxy(
        "zico",
        _zico,
        "Li et al., ICLR 2023, arXiv:2301.11300",
        num_batches=2,
        needs_labels=True,
    ),
    Proxy("meco", _meco, "Jiang et al., NeurIPS 2023, openreview KFm2lZiI7n"),
)

#: Every proxy by name, in the order tables show them (baselines first).
PROXIES: dict[str, Proxy] = {proxy.name: proxy for proxy in _TABLE}
#: The cost baselines among :data:`PROXIES`.
BASELINES: tuple[str, ...] = tuple(proxy.name for proxy in _TABLE if proxy.baseline)


def resolve_proxies(names: str | Sequence[str] | None = None) -> tuple[Proxy, ...]:
    """The proxies named (a comma-separated string or a list; None: all), each once.

    ``ValueError`` naming ``proxies`` and the unknown name otherwise.
    """
    if names is None:
        return _TABLE
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    chosen: dict[str, Proxy] = {}
    for name in names:
        if name not in PROXIES:
            raise ValueError(f"proxies: unknown {name!r} (known: {', '.join(PROXIES)})")
        chosen.setdefault(name, PROXIES[name])
    if not chosen:
        raise ValueError("proxies: name at least one proxy")
    return tuple(chosen.values())
