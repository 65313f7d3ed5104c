"""Training-free ("zero-cost") proxies: score an untrained candidate from a few real batches.

Each proxy is one function of a network and data, from its paper (:mod:`._scores`), with one
entry in :data:`PROXIES` saying how to call it, which way is better and whom to cite.
:func:`score_model` scores a model or spec on seeded batches of a :class:`ProxyData` and
records a NaN/infinite score or an impossible one as a failure with its reason, never an
exception. ``params_m`` and ``gflops`` are in the table as the baselines to beat.

    from dvbench.proxies import ProxySettings, score_model
    from dvbench.train import load_data

    data = load_data("digits", resolution=32)
    settings = ProxySettings(proxies=("synflow", "naswot"), batch_size=64)
    scores = score_model("pvt_v2_b0", data, settings, seed=0)
    scores.values  # {"synflow": 628.9, "naswot": 602.0}
"""

from dvbench.proxies._display import failure_lines, scores_table
from dvbench.proxies._registry import BASELINES, PROXIES, Batch, Proxy, resolve_proxies
from dvbench.proxies._runner import (
    OUTPUT_SUFFIXES,
    ProxyScore,
    ProxyScores,
    ProxySettings,
    proxy_batches,
    score_model,
    score_models,
    scores_to_frame,
    write_scores,
)
from dvbench.proxies._scores import (
    ACTIVATION_TYPES,
    ProxyFailure,
    grad_norm,
    jacob_cov,
    meco,
    naswot,
    snip,
    synflow,
    weight_layers,
    zico,
)

__all__ = [
    "ACTIVATION_TYPES",
    "BASELINES",
    "OUTPUT_SUFFIXES",
    "PROXIES",
    "Batch",
    "Proxy",
    "ProxyFailure",
    "ProxyScore",
    "ProxyScores",
    "ProxySettings",
    "failure_lines",
    "grad_norm",
    "jacob_cov",
    "meco",
    "naswot",
    "proxy_batches",
    "resolve_proxies",
    "score_model",
    "score_models",
    "scores_table",
    "scores_to_frame",
    "snip",
    "synflow",
    "weight_layers",
    "write_scores",
    "zico",
]
