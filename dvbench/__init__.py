"""dvbench: architecture search and efficiency benchmarking for the Dual Vision Transformer.

``import dvbench`` is light: it imports neither torch nor timm, so that the command line
answers ``--help`` at once. The models are loaded, and ``dualvit_s``, ``dualvit_b`` and
``dualvit_l`` registered in timm, by ``import dvbench.models`` or on first use of
:class:`DualViT`, :class:`DualViTConfig` or :func:`create_model` from here::

    import timm
    import dvbench.models  # registers dualvit_s/b/l in timm

    model = timm.create_model("dualvit_s")

Every model name dvbench takes (:func:`create_model`, every command) also accepts
``study:NAME:TRIAL``, a trial of a finished search; it is declared below and imports the
search room only when such a name is resolved.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dvbench._references import register_spec_resolver

if TYPE_CHECKING:
    from dvbench.models import DualViT, DualViTConfig, create_model

__version__ = "0.1.0"
__all__ = ["DualViT", "DualViTConfig", "create_model", "__version__"]

# attribute -> module holding it, imported on first access (PEP 562)
_LAZY = {
    "DualViT": "dvbench.models",
    "DualViTConfig": "dvbench.models",
    "create_model": "dvbench.models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dvbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _resolve_study_reference(reference: str):
    from dvbench.search.storage import resolve_study_reference

    return resolve_study_reference(reference)


register_spec_resolver("study", _resolve_study_reference)
