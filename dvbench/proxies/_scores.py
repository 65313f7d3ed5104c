"""The training-free proxies, one function per paper, each scoring an untrained network.

Every function works on a private deep copy of the model it is given, so the caller's
network (its weights, mode, dtype, BatchNorm statistics and gradients) is never changed and
one proxy cannot leak into the next. Networks are read generically:

- *weight layers* are the ``nn.Linear`` and ``nn.Conv*`` modules (timm's and Dual-ViT's
  fused linears are subclasses); their ``weight`` is what the gradient proxies score, as in
  the reference implementations;
- *activations* are the modules in :data:`ACTIVATION_TYPES` (ReLU and GELU families).

Data-driven proxies run the network in training mode, as the reference code does (batch
statistics in BatchNorm; dropout and drop-path are zero in candidates built for proxies), and
always with autograd on: some models take a fused inference path under ``torch.no_grad`` that
skips their activation modules (Dual-ViT's ``PixelFFN`` calls ``gelu_`` directly there).

A proxy that cannot score a network raises :class:`ProxyFailure` with the reason; a score
that comes out NaN or infinite is returned as it is. The runner records both as failures.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import activations as timm_activations

__all__ = [
    "ACTIVATION_TYPES",
    "JACOB_COV_EPSILON",
    "ProxyFailure",
    "grad_norm",
    "jacob_cov",
    "meco",
    "naswot",
    "snip",
    "synflow",
    "weight_layers",
    "zico",
]

#: Activation modules whose input NASWOT reads (the sign of the pre-activation).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    # timm's own GELU modules (not nn.GELU subclasses); older timm releases lack some
    *(
        getattr(timm_activations, name)
        for name in ("GELU", "GELUTanh", "QuickGELU")
        if hasattr(timm_activations, name)
    ),
)

#: The ``k`` that keeps jacob_cov's ``log`` and ``1/x`` finite at zero eigenvalues
#: (Abdelfattah et al. 2021, as in Mellor et al.'s first version).
JACOB_COV_EPSILON = 1e-5


class ProxyFailure(Exception):
    """A proxy cannot score this network; the runner records the message as the reason."""


# ---------------------------------------------------------------------------------- helpers
def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs whose weights the gradient proxies score."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))
        and isinstance(getattr(module, "weight", None), nn.Parameter)
    ]


def _private_copy(model: nn.Module, *, train: bool) -> nn.Module:
    net = copy.deepcopy(model)
    net.train(train)
    net.zero_grad(set_to_none=True)
    return net


def _scored_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = weight_layers(net)
    if not layers:
        raise ProxyFailure("no nn.Linear or nn.Conv layers to score")
    return layers


@contextlib.contextmanager
def _removing(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _batch_size(images: torch.Tensor, *, at_least: int, proxy: str) -> int:
    size = int(images.shape[0])
    if size < at_least:
        raise ValueError(f"images: {proxy} needs a batch of at least {at_least}, got {size}")
    return size


def _backward_loss(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Cross-entropy gradients of one batch in the weights (the zero-cost-nas convention)."""
    net.zero_grad(set_to_none=True)
    with torch.enable_grad():
        F.cross_entropy(net(images), labels).backward()


def _total(values: list[torch.Tensor]) -> float:
    return float(torch.stack([v.detach().double() for v in values]).sum()) if values else 0.0


# ---------------------------------------------------------------------------------- proxies
def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow: ``sum |theta * dR/dtheta|`` with ``R`` the summed output of the network whose
    parameters are made positive, fed one all-ones input (no data).

    Tanaka et al., "Pruning neural networks without any data by iteratively conserving
    synaptic flow", NeurIPS 2020 (https://arxiv.org/abs/2006.05467); as a NAS proxy,
    Abdelfattah et al., ICLR 2021. Every parameter is replaced by its absolute value, the
    network runs in double precision (products of many weights overflow float32) and in eval
    mode, so normalisation layers use no data statistics; the score sums over the weights of
    :func:`weight_layers`. ``input_shape`` is one input's ``(C, H, W)``.
    """
    net = _private_copy(model, train=False).double()
    layers = _scored_layers(net)
    with torch.no_grad():
        for param in net.parameters():
            param.abs_()
    device = next(net.parameters()).device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    with torch.enable_grad():
        net(ones).sum().backward()
    return _total(
        [(m.weight * m.weight.grad).abs().sum() for _, m in layers if m.weight.grad is not None]
    )


def naswot(model: nn.Module, images: torch.Tensor) -> float:
    """NASWOT: ``log |K|`` of the Hamming kernel of the images' binary activation codes.

    Mellor et al., "Neural Architecture Search without Training", ICML 2021
    (https://arxiv.org/abs/2006.04647). Each activation module contributes, per image, the
    code ``c = [x > 0]`` of its input ``x`` (for ReLU that is which units fire; for GELU and
    SiLU, which have no hard zero, the sign of the pre-activation is the same gate), and
    ``K += c c^T + (1 - c)(1 - c)^T``: the number of units on which two images agree. The
    score is ``slogdet(K)``, summed over all activations as in the authors' code. Activations
    whose input does not lead with the batch dimension (windows folded into the batch) are
    skipped. A singular ``K`` (two images with one code) is a :class:`ProxyFailure`.
    """
    batch = _batch_size(images, at_least=2, proxy="naswot")
    net = _private_copy(model, train=True)
    kernel = torch.zeros(batch, batch, dtype=torch.float64, device=images.device)
    read = 0

    def record(module: nn.Module, args: tuple) -> None:
        nonlocal kernel, read
        x = args[0]
        if x.ndim == 0 or x.shape[0] != batch:
            return
        codes = (x.detach().reshape(batch, -1) > 0).double()
        active = codes.sum(dim=1)
        # c c^T + (1-c)(1-c)^T = 2 c c^T - |c_i| - |c_j| + units: one matmul instead of two
        kernel += 2 * codes @ codes.T - active[:, None] - active[None, :] + codes.shape[1]
        read += 1

    # a pre-hook sees the input before an in-place activation (ReLU(inplace=True)) overwrites it
    handles = [
        m.register_forward_pre_hook(record)
        for m in net.modules()
        if isinstance(m, ACTIVATION_TYPES)
    ]
    with _removing(handles), torch.enable_grad():
        net(images)
    if not read:
        raise ProxyFailure("no ReLU/GELU activations with a per-image input to read codes from")
    sign, logdet = torch.linalg.slogdet(kernel)
    if sign <= 0:
        raise ProxyFailure("the activation-code kernel is singular (images share one code)")
    return float(logdet)


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """grad_norm: the sum over weight layers of the L2 norm of ``dL/dW`` (cross-entropy).

    Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021
    (https://arxiv.org/abs/2101.08134). The paper writes the Euclidean norm of the whole
    gradient; like the authors' code (whose numbers the paper reports) this sums the
    per-layer norms ``sum_l ||dL/dW_l||_2`` instead.
    """
    net = _private_copy(model, train=True)
    layers = _scored_layers(net)
    _backward_loss(net, images, labels)
    return _total([m.weight.grad.norm() for _, m in layers if m.weight.grad is not None])


def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SNIP saliency summed over the weights: ``sum |W * dL/dW|`` (cross-entropy, one batch).

    Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR 2019
    (https://arxiv.org/abs/1810.02340); as a NAS proxy, Abdelfattah et al., ICLR 2021. The
    gradient of the loss in a connection mask at 1 is ``W * dL/dW``, so no mask is built.
    """
    net = _private_copy(model, train=True)
    layers = _scored_layers(net)
    _backward_loss(net, images, labels)
    return _total(
        [(m.weight * m.weight.grad).abs().sum() for _, m in layers if m.weight.grad is not None]
    )


def jacob_cov(model: nn.Module, images: torch.Tensor) -> float:
    """jacob_cov: ``-sum_i [log(l_i + k) + 1 / (l_i + k)]`` over the eigenvalues ``l_i`` of the
    correlation matrix of the images' input Jacobians, ``k`` = :data:`JACOB_COV_EPSILON`.

    Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020
    (https://arxiv.org/abs/2006.04647v1), named ``jacob_cov`` by Abdelfattah et al., ICLR
    2021. Each image's Jacobian is the gradient of its summed logits in its pixels, as in both
    reference codes. Less correlated Jacobians (eigenvalues nearer 1) score higher. A
    correlation matrix that is not finite (a constant Jacobian) is a :class:`ProxyFailure`.
    """
    batch = _batch_size(images, at_least=2, proxy="jacob_cov")
    net = _private_copy(model, train=True)
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = net(x)
        logits.backward(torch.ones_like(logits))
    jacobians = x.grad.reshape(batch, -1).double()
    corr = torch.corrcoef(jacobians)
    if not torch.isfinite(corr).all():
        raise ProxyFailure("the Jacobians' correlation matrix is not finite")
    eigenvalues = torch.linalg.eigvalsh(corr) + JACOB_COV_EPSILON
    return float(-(torch.log(eigenvalues) + 1.0 / eigenvalues).sum())


def zico(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """ZiCo: ``sum_l log( sum_theta mean|g_theta| / std(g_theta) )`` over weight layers ``l``,
    the statistics taken across the per-batch cross-entropy gradients ``g``.

    Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR
    2023 (https://arxiv.org/abs/2301.11300). As in the authors' code: population standard
    deviation, weights whose gradient has zero deviation are left out, and a layer whose sum
    is zero adds nothing. Unlike that code, which never clears gradients between batches (so
    it compares running sums), each batch's gradient is its own, as the paper defines them.
    ``batches`` are ``(images, labels)`` pairs, at least two.
    """
    if len(batches) < 2:
        raise ValueError(f"batches: zico needs at least 2 batches, got {len(batches)}")
    net = _private_copy(model, train=True)
    layers = _scored_layers(net)
    per_layer: list[list[torch.Tensor]] = [[] for _ in layers]
    for images, labels in batches:
        _backward_loss(net, images, labels)
        for grads, (_, module) in zip(per_layer, layers):
            grad = module.weight.grad
            grads.append(
                torch.zeros(module.weight.numel(), dtype=torch.float64, device=module.weight.device)
                if grad is None
                else grad.detach().reshape(-1).double()
            )
    score = 0.0
    for grads in per_layer:
        stacked = torch.stack(grads)
        std = stacked.std(dim=0, unbiased=False)
        varying = std != 0  # NaN counts as varying, so a NaN gradient shows in the score
        total = float((stacked.abs().mean(dim=0)[varying] / std[varying]).sum())
        if total != 0:
            score += math.log(total)
    return score


def meco(model: nn.Module, images: torch.Tensor) -> float:
    """MeCo: the sum over weight layers of the minimum eigenvalue of the Pearson correlation
    matrix between the channels of one image's feature map.

    Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
    Eigenvalue of Correlation", NeurIPS 2023 (https://openreview.net/forum?id=KFm2lZiI7n).
    The batch goes through the network once, as in the authors' code, and the first image's
    output of every weight layer (:func:`weight_layers`) is read as channels x positions:
    ``(C, H*W)`` for a convolution, ``(C, tokens)`` for a linear layer on ``(B, ..., C)``.
    As in that code, a constant channel's undefined correlations count as 0. With fewer
    positions than channels the matrix has rank below ``C``, so its minimum eigenvalue is 0
    and is taken as exactly that; a layer with one position, or whose output does not lead
    with the batch, adds nothing. Non-finite features are a :class:`ProxyFailure`.
    """
    batch = int(images.shape[0])
    net = _private_copy(model, train=True)
    minima: list[torch.Tensor] = []
    bad_layers: list[str] = []

    def record(name: str, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor) or output.ndim < 2 or output.shape[0] != batch:
            return
        first = output[0].detach()
        if isinstance(module, nn.modules.conv._ConvNd):
            features = first.reshape(first.shape[0], -1)
        else:
            features = first.reshape(-1, first.shape[-1]).T
        channels, positions = features.shape
        if positions < 2:
            return
        if not torch.isfinite(features).all():
            bad_layers.append(name)
            return
        if positions - 1 < channels:  # rank(corr) <= positions - 1 < channels
            minima.append(torch.zeros((), dtype=torch.float64))
            return
        corr = torch.nan_to_num(torch.corrcoef(features.double()), nan=0.0)
        minima.append(torch.linalg.eigvalsh(corr)[0].cpu())

    handles = [
        module.register_forward_hook(functools.partial(record, name))
        for name, module in weight_layers(net)
    ]
    with _removing(handles), torch.enable_grad():
        net(images)
    if bad_layers:
        raise ProxyFailure(f"non-finite features in {bad_layers[0]}")
    if not minima:
        raise ProxyFailure("no weight layer gives a feature map with 2 or more positions")
    return _total(minima)
