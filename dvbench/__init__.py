"""dvbench: architecture search and efficiency benchmarking for the Dual Vision Transformer.

Importing the package registers ``dualvit_s``, ``dualvit_b`` and ``dualvit_l`` in timm.
"""

from dvbench.models import DualViT, DualViTConfig, create_model

__version__ = "0.1.0"
__all__ = ["DualViT", "DualViTConfig", "create_model", "__version__"]
