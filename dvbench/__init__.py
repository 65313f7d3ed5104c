"""dvbench: architecture search and efficiency benchmarking for the Dual Vision Transformer.

Importing the package registers ``dualvit_s``, ``dualvit_b`` and ``dualvit_l`` in timm, and
the ``study:NAME:TRIAL`` model reference (a trial of a finished search), so that every
command and :func:`create_model` accept it.
"""

from dvbench.models import DualViT, DualViTConfig, create_model, register_spec_resolver

__version__ = "0.1.0"
__all__ = ["DualViT", "DualViTConfig", "create_model", "__version__"]


def _resolve_study_reference(reference: str):
    # imported on first use: resolving a study needs Optuna, naming a model does not
    from dvbench.search.storage import resolve_study_reference

    return resolve_study_reference(reference)


register_spec_resolver("study", _resolve_study_reference)
