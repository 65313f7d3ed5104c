"""The tiny Dual-ViT the tests build (about 0.24 M parameters): the default network shrunk
to widths 16-64, one head per 16 channels, one block a stage and an 8-channel stem, for 10
classes at 32 px. Tests derive their variants with ``TINY_DUALVIT.replace(...)``; a test
function can take it as conftest's ``tiny_dualvit`` fixture."""

from dvbench.models import DualViTConfig

TINY_DUALVIT = DualViTConfig(
    embed_dims=(16, 32, 48, 64),
    num_heads=(1, 2, 3, 4),
    depths=(1, 1, 1, 1),
    stem_hidden_dim=8,
    num_classes=10,
    img_size=32,
)
