"""The pre-filter: score every sampled candidate training-free, train only those that rank
high (issue: how far can the accuracy axis be trusted?).

A space's ``prefilter: {signal: synflow, keep: 1, sample: 4}`` stands the score in for the
accuracy objective and ranks each candidate, once its costs are measured, among every
candidate the study has scored so far, itself included, by the order successive halving uses
(the study's dominance rule, :mod:`dvbench.stats.pareto`, over the score, higher first, and
the space's other objectives: non-dominated rank, crowding distance, then the earlier
candidate). It is trained when its place ``r`` of ``m`` is within the best ``keep/sample``
(``r <= ceil(m * keep / sample)``); the others are recorded as PRUNED trials with their
score, costs and the reason. Ranking on the predicted front rather than on the score alone
keeps the cheap end of the front: a small network with a low score is still non-dominated
on cost. The rule needs no batch, so workers never wait: over a study about ``keep`` of every
``sample`` candidates train, the first always. ``n_trials`` still counts trained (COMPLETE)
candidates. The signals (any training-free proxy, or ``params_m``/``gflops``) all grow with
accuracy; over-budget candidates and seed trials (the official shapes, always trained) are not
scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dvbench.metrics import PROXY_METRICS
from dvbench.space.sections import refuse_unknown
from dvbench.stats.pareto import DominanceRule

#: What a pre-filter can rank by, from the metric table: the costs counted without training
#: and every training-free proxy (the proxies room scores the same list).
SIGNALS: tuple[str, ...] = ("params_m", "gflops", *PROXY_METRICS)


@dataclass(frozen=True)
class Prefilter:
    signal: str
    keep: int = 1
    sample: int = 4

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"prefilter.signal: one of {', '.join(SIGNALS)}, got {self.signal!r}")
        for name in ("keep", "sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"prefilter.{name}: a positive integer, got {value!r}")
        if self.keep >= self.sample:
            raise ValueError(f"prefilter.keep: below sample ({self.sample}), got {self.keep}")

    @classmethod
    def parse(cls, raw: Mapping) -> Prefilter:
        refuse_unknown("prefilter", raw, ("signal", "keep", "sample"))
        if "signal" not in raw:
            raise ValueError("prefilter.signal: name a training-free proxy, e.g. synflow")
        return cls(**raw)

    def rank(
        self,
        mine: Sequence[float],
        others: Sequence[Sequence[float]],
        directions: Sequence[str] = ("maximize",),
        *,
        confidence: float = 0.0,
    ) -> tuple[int, int, int]:
        """(place of ``mine``, candidates scored, places that train) among ``others`` (scored
        before it) and it; each is (score, cost objectives...) in ``directions``, ordered by
        the study's dominance rule (the score and the costs are exact, so at any confidence
        the rule compares them as they are)."""
        values = [list(v) for v in others] + [list(mine)]
        order = DominanceRule(confidence).order(values, directions, list(range(len(values))))
        scored = len(values)
        return order.index(scored - 1) + 1, scored, math.ceil(scored * self.keep / self.sample)

    def keeps(self, mine, others, directions=("maximize",), *, confidence: float = 0.0) -> bool:
        rank, _, places = self.rank(mine, others, directions, confidence=confidence)
        return rank <= places
