"""The pre-filter: score every sampled candidate training-free, train only those that rank
high (issue: how far can the accuracy axis be trusted?).

A space's ``prefilter: {signal: synflow, keep: 1, sample: 4}`` trains a candidate when its
score ranks within the best ``keep/sample`` of every candidate the study has scored so far,
itself included (rank ``r`` of ``m``, ties sharing the better rank: trained when
``r <= ceil(m * keep / sample)``); the others are recorded as PRUNED trials with their score
and the reason. The rule needs no batch, so workers never wait for one: over a study it
trains about ``keep`` of every ``sample`` candidates, and the first candidate is always
trained. ``n_trials`` still counts trained (COMPLETE) candidates. Higher scores rank first:
the signals (any training-free proxy, or ``params_m``/``gflops``) all grow with accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFILTER_ATTR = "prefilter"  # trial attribute: {"signal": name, "score": value}


@dataclass(frozen=True)
class Prefilter:
    signal: str
    keep: int = 1
    sample: int = 4

    def __post_init__(self) -> None:
        from dvbench.proxies import PROXIES

        if self.signal not in PROXIES:
            raise ValueError(f"prefilter.signal: one of {', '.join(PROXIES)}, got {self.signal!r}")
        for name in ("keep", "sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"prefilter.{name}: a positive integer, got {value!r}")
        if self.keep >= self.sample:
            raise ValueError(f"prefilter.keep: below sample ({self.sample}), got {self.keep}")

    @classmethod
    def parse(cls, raw: Mapping) -> Prefilter:
        unknown = sorted(set(raw) - {"signal", "keep", "sample"})
        if unknown:
            raise ValueError(f"prefilter.{unknown[0]}: unknown setting (signal, keep, sample)")
        if "signal" not in raw:
            raise ValueError("prefilter.signal: name a training-free proxy, e.g. synflow")
        return cls(**raw)

    def rank(self, score: float, others: Sequence[float]) -> tuple[int, int, int]:
        """(rank of ``score``, candidates scored, places that train) among ``others`` and it."""
        rank = 1 + sum(other > score for other in others)
        scored = len(others) + 1
        return rank, scored, math.ceil(scored * self.keep / self.sample)

    def keeps(self, score: float, others: Sequence[float]) -> bool:
        rank, _, places = self.rank(score, others)
        return rank <= places
