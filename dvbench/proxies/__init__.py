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

from typing import TYPE_CHECKING

from dvbench._lazy import lazy_names

# Names resolve on first use (PEP 562): the table of proxies (``._registry``) imports no torch,
# so ``dvbench proxies --help`` lists it without importing torch; scoring imports it.
_WHERE = {
    "failure_lines": "_display", "scores_table": "_display",
    "BASELINES": "_registry", "PROXIES": "_registry", "Batch": "_registry", "Proxy": "_registry",
    "resolve_proxies": "_registry",
    "OUTPUT_SUFFIXES": "_runner", "ProxyScore": "_runner", "ProxyScores": "_runner",
    "ProxySettings": "_runner", "proxy_batches": "_runner", "score_model": "_runner",
    "score_models": "_runner", "scores_to_frame": "_runner", "write_scores": "_runner",
    "ACTIVATION_TYPES": "_scores", "ProxyFailure": "_scores", "grad_norm": "_scores",
    "jacob_cov": "_scores", "meco": "_scores", "naswot": "_scores", "snip": "_scores",
    "synflow": "_scores", "weight_layers": "_scores", "zico": "_scores",
}  # fmt: skip

if TYPE_CHECKING:
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
assert sorted(__all__) == sorted(_WHERE)


__getattr__, __dir__ = lazy_names("dvbench.proxies", _WHERE, globals())
