"""Per-image outcomes of one evaluation: which test images a run got right, and its loss on
each, kept compactly so that any two runs scored on the same images can be compared *paired*.

Two candidates evaluated on one fixed test set share that set's sampling error: an image that
is hard for one network is usually hard for the other. The variance of the difference of
their accuracies is therefore the variance of the per-image differences (McNemar's), not the
sum of two binomial variances; see :mod:`dvbench.stats.noise`.

Stored form (:meth:`ImageOutcomes.pack`, JSON-ready): the number of images, the right/wrong
bits packed eight to a byte, and the losses as float16, both base64. 8,000 test images take
1 kB of bits and 16 kB of losses.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: version of the packed layout; a record with another is refused, not misread
PACK_FORMAT = 1


@dataclass(frozen=True, eq=False)
class ImageOutcomes:
    """``correct[i]``: image i's top-1 prediction was right; ``loss[i]``: its cross-entropy."""

    correct: np.ndarray  # bool, one per test image, in the test set's order
    loss: np.ndarray  # float32, same order

    def __post_init__(self) -> None:
        correct = np.asarray(self.correct, dtype=bool).reshape(-1)
        loss = np.asarray(self.loss, dtype=np.float32).reshape(-1)
        if correct.shape != loss.shape:
            raise ValueError(f"outcomes: {correct.size} correct flags but {loss.size} losses")
        object.__setattr__(self, "correct", correct)
        object.__setattr__(self, "loss", loss)

    def __len__(self) -> int:
        return int(self.correct.size)

    @property
    def top1(self) -> float:
        """Top-1 accuracy in percent."""
        return 100.0 * float(self.correct.mean()) if len(self) else float("nan")

    @property
    def mean_loss(self) -> float:
        return float(self.loss.astype(np.float64).mean()) if len(self) else float("nan")

    def metric(self, name: str) -> np.ndarray:
        """Per-image values whose mean is metric ``name``: ``top1`` (percent, 0 or 100 per
        image) or ``test_loss``."""
        if name == "top1":
            return self.correct.astype(np.float64) * 100.0
        if name == "test_loss":
            return self.loss.astype(np.float64)
        raise KeyError(f"no per-image values for metric {name!r} (top1, test_loss)")

    def pack(self) -> dict[str, Any]:
        """JSON-ready compact form (see the module docstring)."""
        bits = np.packbits(self.correct)
        return {
            "format": PACK_FORMAT,
            "images": len(self),
            "correct": base64.b64encode(bits.tobytes()).decode("ascii"),
            "loss": base64.b64encode(self.loss.astype("<f2").tobytes()).decode("ascii"),
        }

    @classmethod
    def unpack(cls, packed: Mapping[str, Any]) -> ImageOutcomes:
        """The outcomes :meth:`pack` wrote; ValueError for anything else."""
        try:
            if packed.get("format") != PACK_FORMAT:
                raise ValueError(f"format {packed.get('format')!r}, not {PACK_FORMAT}")
            n = int(packed["images"])
            bits = np.frombuffer(base64.b64decode(packed["correct"], validate=True), np.uint8)
            loss = np.frombuffer(base64.b64decode(packed["loss"], validate=True), "<f2")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"outcomes: not a packed record ({exc})") from None
        if n < 0 or bits.size != (n + 7) // 8 or loss.size != n:
            raise ValueError(f"outcomes: {n} images do not match the packed sizes")
        return cls(np.unpackbits(bits)[:n].astype(bool), loss.astype(np.float32))

    @classmethod
    def interleave(cls, even: ImageOutcomes, odd: ImageOutcomes) -> ImageOutcomes:
        """The whole test set's outcomes from its even-position half and its odd half (the
        order :func:`dvbench.calibrate.split_test` splits it in)."""
        if len(even) - len(odd) not in (0, 1):
            raise ValueError(f"halves of {len(even)} and {len(odd)} images do not interleave")
        n = len(even) + len(odd)
        correct, loss = np.zeros(n, bool), np.zeros(n, np.float32)
        correct[0::2], correct[1::2] = even.correct, odd.correct
        loss[0::2], loss[1::2] = even.loss, odd.loss
        return cls(correct, loss)

    def half(self, which: str) -> ImageOutcomes:
        """Half ``"a"`` (even positions) or ``"b"`` (odd) of the test set."""
        start = {"a": 0, "b": 1}[which]
        return ImageOutcomes(self.correct[start::2], self.loss[start::2])
