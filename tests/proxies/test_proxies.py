"""Training-free proxies: each pinned on a case small enough to check by hand, then the runner
(seeded batches, determinism, failures recorded rather than raised) on a tiny Dual-ViT."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn as nn

from dvbench.models import DualViTConfig, create_model
from dvbench.profile import count_cost
from dvbench.proxies import (
    BASELINES,
    PROXIES,
    Batch,
    ProxyFailure,
    ProxySettings,
    grad_norm,
    jacob_cov,
    meco,
    naswot,
    proxy_batches,
    resolve_proxies,
    score_model,
    scores_to_frame,
    snip,
    synflow,
    write_scores,
    zico,
)
from dvbench.proxies._scores import JACOB_COV_EPSILON
from dvbench.runtime import num_threads
from dvbench.train import load_data

TINY = DualViTConfig(
    embed_dims=(16, 32, 64, 80),
    num_heads=(1, 2, 4, 5),
    depths=(1, 1, 1, 1),
    mlp_ratios=(4, 4, 4, 4),
    stem_hidden_dim=8,
    semantic_pool="grid",
    semantic_grid=2,
    num_classes=10,
    img_size=32,
    name="tiny",
)
SMALL_BATCHES = ProxySettings(batch_size=16)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", resolution=32)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks are overhead-bound: a second thread only adds contention."""
    with num_threads(1):
        yield


def _linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return layer


def _identity(n: int) -> nn.Linear:
    return _linear(torch.eye(n).tolist())


# ------------------------------------------------------------------------------ synflow
def test_synflow_of_a_two_layer_linear_net_by_hand():
    # |W1| 1 = [6, 2.5]; R = |W2| |W1| 1 = 2*6 + 1*2.5 = 14.5. For a linear chain every layer's
    # sum |theta * dR/dtheta| is R itself, so two layers score 2R = 29.
    w1 = [[1.0, -2.0, 3.0], [0.5, 1.0, -1.0]]
    w2 = [[2.0, -1.0]]
    net = nn.Sequential(_linear(w1), nn.ReLU(), _linear(w2))
    assert synflow(net, (3,)) == pytest.approx(29.0, rel=1e-12)
    # the caller's network is untouched: signs, dtype, no gradients
    assert net[0].weight.tolist() == w1 and net[2].weight.tolist() == w2
    assert net[0].weight.dtype == torch.float32 and net[0].weight.grad is None


# ------------------------------------------------------------------------------- naswot
def test_naswot_on_a_designed_activation_pattern():
    # Codes of the three images at both activations: 111, 100, 001. Units on which two
    # images agree: 1 for every pair, so each layer adds K = [[3,1,1],[1,3,1],[1,1,3]]
    # (eigenvalues 5, 2, 2); two layers give 2K with det 8 * 20 = 160.
    images = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    net = nn.Sequential(_identity(3), nn.ReLU(inplace=True), _identity(3), nn.GELU())
    assert naswot(net, images) == pytest.approx(math.log(160.0), rel=1e-12)


def test_naswot_fails_on_a_singular_kernel():
    images = torch.tensor([[1.0, -1.0], [1.0, -1.0]])  # two images, one code
    with pytest.raises(ProxyFailure, match="singular"):
        naswot(nn.Sequential(_identity(2), nn.ReLU()), images)


def test_naswot_needs_an_activation():
    with pytest.raises(ProxyFailure, match="no ReLU/GELU"):
        naswot(_identity(2), torch.eye(2))


# -------------------------------------------------------------------- grad_norm and snip
def _two_layer_net() -> nn.Sequential:
    # logits = W2 W1 x with W1 = I, W2 = [[ln 3, 0], [0, 0]]
    return nn.Sequential(_identity(2), _linear([[math.log(3.0), 0.0], [0.0, 0.0]]))


def test_grad_norm_and_snip_against_hand_gradients():
    # x = [1, 0], label 0: logits [ln 3, 0], softmax [3/4, 1/4], dL/dlogits = [-1/4, 1/4].
    # dL/dW2 = [[-1/4, 0], [1/4, 0]] (norm sqrt(2)/4); dL/dW1 = W2^T [-1/4, 1/4] x^T
    # = [[-ln3/4, 0], [0, 0]] (norm ln3/4).
    images, labels = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    ln3 = math.log(3.0)
    assert grad_norm(_two_layer_net(), images, labels) == pytest.approx(
        math.sqrt(2) / 4 + ln3 / 4, rel=1e-6
    )
    # |W1 * g1| + |W2 * g2| = 1 * ln3/4 + ln3 * 1/4
    assert snip(_two_layer_net(), images, labels) == pytest.approx(ln3 / 2, rel=1e-6)


# ------------------------------------------------------------------------------ jacob_cov
class HalfSquare(nn.Module):
    """y = |x|^2 / 2, so each image's input Jacobian is the image itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.pow(2).sum(dim=1, keepdim=True)


def test_jacob_cov_with_a_known_correlation_matrix():
    # Centred rows; x1.x2 = 0, x1.x3 = x2.x3 = 2, norms sqrt2, sqrt2, 2: correlations 0,
    # 1/sqrt2, 1/sqrt2, whose matrix has eigenvalues 0, 1 and 2.
    images = torch.tensor(
        [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [1.0, -1.0, 1.0, -1.0]],
        dtype=torch.float64,
    )
    k = JACOB_COV_EPSILON
    expected = -sum(math.log(v + k) + 1 / (v + k) for v in (0.0, 1.0, 2.0))
    assert jacob_cov(HalfSquare(), images) == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_fails_on_a_constant_jacobian():
    images = torch.tensor([[1.0, 1.0], [2.0, 2.0]])  # each Jacobian is constant across pixels
    with pytest.raises(ProxyFailure, match="not finite"):
        jacob_cov(HalfSquare(), images)


# ---------------------------------------------------------------------------------- zico
class WithUnusedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2, bias=False)
        nn.init.zeros_(self.fc.weight)
        self.unused = nn.Linear(3, 2)  # no gradient: zero deviation, adds nothing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_zico_by_hand():
    # W = 0, so softmax is [1/2, 1/2] and dL/dW = ([1/2, 1/2] - onehot) x^T.
    # batch 1: x = [1, 0, 0], y = 0 -> g1 = [[-1/2, 0, 0], [1/2, 0, 0]]
    # batch 2: x = [3, 1, 0], y = 0 -> g2 = [[-3/2, -1/2, 0], [3/2, 1/2, 0]]
    # mean|g| / std per weight: (1/2 + 3/2)/2 / 1/2 = 2 (twice), (1/4) / (1/4) = 1 (twice);
    # the third column never varies and is left out: log(2 + 2 + 1 + 1) = log 6.
    batches = [
        (torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0])),
        (torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([0])),
    ]
    assert zico(WithUnusedLayer(), batches) == pytest.approx(math.log(6.0), rel=1e-9)
    with pytest.raises(ValueError, match="batches: zico needs at least 2"):
        zico(WithUnusedLayer(), batches[:1])


# ---------------------------------------------------------------------------------- meco
def test_meco_by_hand():
    # The identity 1x1 convolution passes image 0 through: channels [1,2,3,4] and [2,1,4,3]
    # have deviations [-1.5,-.5,.5,1.5] and [-.5,-1.5,1.5,.5]: covariance 3, variances 5,
    # correlation 0.6, eigenvalues 1.6 and 0.4. The second convolution has 4 channels over
    # 4 positions (rank <= 3, minimum exactly 0); the linear head has one position (skipped).
    identity = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    net = nn.Sequential(identity, nn.Conv2d(2, 4, 1), nn.Flatten(), nn.Linear(16, 3))
    first = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[2.0, 1.0], [4.0, 3.0]]])
    images = torch.stack([first, torch.randn(2, 2, 2)])  # only the first image is read
    assert meco(net, images) == pytest.approx(0.4, rel=1e-9)


# -------------------------------------------------------------------------------- registry
def test_registry_is_complete_and_cited():
    assert set(PROXIES) >= {"synflow", "naswot", "grad_norm", "snip", "jacob_cov", "zico"}
    assert BASELINES == ("params_m", "gflops")
    for proxy in PROXIES.values():
        assert proxy.direction in ("maximize", "minimize") and proxy.citation


def test_resolve_proxies_names_the_field():
    assert [p.name for p in resolve_proxies("naswot, synflow,naswot")] == ["naswot", "synflow"]
    with pytest.raises(ValueError, match="proxies: unknown 'nope'"):
        resolve_proxies(["synflow", "nope"])
    with pytest.raises(ValueError, match="num_batches: zico needs at least 2, got 1"):
        ProxySettings(proxies="zico,snip", num_batches=1)
    with pytest.raises(ValueError, match="batch_size: must be a positive integer"):
        ProxySettings(batch_size=0)


# ---------------------------------------------------------------------------------- runner
def test_batches_are_seeded_disjoint_and_fit_small_splits(digits):
    settings = ProxySettings(batch_size=8, num_batches=2)
    first = proxy_batches(digits, settings, seed=1)
    again = proxy_batches(digits, settings, seed=1)
    other = proxy_batches(digits, settings, seed=2)
    assert [b.images.shape for b in first] == [torch.Size([8, 3, 32, 32])] * 2
    assert all(torch.equal(a.images, b.images) for a, b in zip(first, again))
    assert not torch.equal(first[0].images, other[0].images)
    assert not torch.equal(first[0].images, first[1].images)
    small = load_data("digits", resolution=32, train_samples=1)  # 10 images
    assert ProxySettings(batch_size=64, num_batches=2).images_per_batch(small) == 5
    with pytest.raises(ValueError, match="num_batches: digits has 10 training images"):
        ProxySettings(num_batches=6).images_per_batch(small)


def test_same_seed_same_scores_and_caller_state_untouched(digits):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = score_model(TINY, digits, SMALL_BATCHES, seed=0)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG is restored
    second = score_model(TINY, digits, SMALL_BATCHES, seed=0)
    other = score_model(TINY, digits, ProxySettings(proxies="naswot", batch_size=16), seed=1)
    assert list(first.scores) == list(PROXIES)
    assert first.failures == {}
    assert all(math.isfinite(v) for v in first.values.values())
    assert first.values == second.values
    assert first.values["naswot"] != other.values["naswot"]
    assert first.batch_size == 16 and first.num_batches == 2 and first.resolution == 32


def test_a_module_is_scored_on_copies_and_left_as_it_was(digits):
    torch.manual_seed(0)
    model = create_model(TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = ProxySettings(proxies="synflow,grad_norm,naswot,params_m", batch_size=16)
    scores = score_model(model, digits, settings)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())
    assert scores.model == "tiny"
    assert scores.values["params_m"] == pytest.approx(count_cost(model, 32).params / 1e6)


class NaNNet(nn.Module):
    """A small conv net whose first weights are NaN: every output is NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 10)
        with torch.no_grad():
            self.conv.weight.fill_(math.nan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)).mean(dim=(2, 3)))


def test_a_nan_network_is_a_recorded_failure_per_proxy(digits):
    scores = score_model(NaNNet(), digits, SMALL_BATCHES)
    for name in BASELINES:
        assert scores.scores[name].ok
    failed = [name for name in PROXIES if name not in BASELINES]
    assert set(scores.failures) == set(failed)
    for name in failed:
        assert scores.values[name] is None
        assert scores.failures[name].startswith(f"{name}: ")
    assert scores.failures["synflow"] == "synflow: score is nan"
    assert "singular" in scores.failures["naswot"]
    row = scores_to_frame([scores]).iloc[0]
    assert "synflow: score is nan" in row["failures"]


def test_table_file_has_one_row_per_model(digits, tmp_path):
    settings = ProxySettings(proxies="synflow,params_m", batch_size=8)
    scores = [score_model(TINY, digits, settings), score_model(NaNNet(), digits, settings)]
    frame = scores_to_frame(scores)
    assert list(frame.columns[7:]) == [
        "params_m",
        "synflow",
        "params_m_s",
        "synflow_s",
        "seconds",
        "failures",
    ]
    read = pd.read_json(write_scores(scores, tmp_path / "proxies.json"))
    assert list(read["model"]) == ["tiny", "NaNNet"] and read["synflow"].isna().tolist() == [
        False,
        True,
    ]


def test_batch_is_a_named_pair():
    batch = Batch(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long))
    images, labels = batch
    assert images.shape == (2, 3, 4, 4) and labels.shape == (2,)
