"""Repeats where the front is unsure: more training seeds for the candidates whose place on
the front the noise does not settle (racing, in the spirit of F-race / Hoeffding races).

A space's ``repeats: {seeds: 3}`` allows at most 3 seeds per candidate. (``rule: uniform``
gives every candidate all its seeds instead: the usual practice, and racing's yardstick in
``benchmarks/bench_racing.py``.) With the default ``rule: racing``, once every candidate
of the study has its first run (and, multi-fidelity, every promotion the rule allows has
run), a candidate at the top budget gets its next seed when its probability of being on the
front (``_pareto.front_probability`` with the current standard errors) is neither near 0 nor
near 1 -- ``1 - confidence < p < confidence``, the study's confidence -- it has fewer than
``seeds`` runs at the top budget (any state: a failed repeat is not tried again), and no run of
it is waiting or running. The most uncertain candidates (``p`` nearest 0.5) are enqueued
first. As repeats complete, the pooled seed variance and the candidates' means change, and the
rule is applied again, until every candidate is resolved or has its ``seeds``.

A repeat is a WAITING trial with the candidate's parameters and the mark ``{candidate, rung:
top, repeat: k}``, enqueued under the study's lock like a promotion (``_ladder``): a worker that
dies in one leaves a stale trial, retried once. It trains from scratch, to the top budget,
with its own seed (``training_seed(..., repeat=k)``); its seconds count in the candidate's
``train_s``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dvbench.space.sections import refuse_unknown
from dvbench.stats.pareto import front_probability

RULES = ("racing", "uniform")


@dataclass(frozen=True)
class Repeats:
    """At most ``seeds`` training seeds per candidate (the first run included), given where
    the front is unsure (``racing``) or to every candidate (``uniform``)."""

    seeds: int = 3
    rule: str = "racing"

    def __post_init__(self) -> None:
        value = self.seeds
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 20:
            raise ValueError(f"repeats.seeds: an integer from 2 to 20, got {value!r}")
        if self.rule not in RULES:
            raise ValueError(f"repeats.rule: one of {', '.join(RULES)}, got {self.rule!r}")

    @classmethod
    def parse(cls, raw: Mapping) -> Repeats:
        refuse_unknown("repeats", raw, ("seeds", "rule"))
        return cls(**raw)


def uncertain(probability: float, confidence: float) -> bool:
    """Whether a front probability leaves the candidate's membership unsettled."""
    return 1 - confidence < probability < confidence


def repeats_due(
    pool: pd.DataFrame,
    metrics: Sequence[str],
    directions: Sequence[str],
    errors: np.ndarray,
    *,
    confidence: float,
    repeats: Repeats,
    runs_at_top: Mapping[int, int],
    live: set[int],
    chance: Sequence[float] | None = None,
) -> list[tuple[int, int]]:
    """The (candidate, repeat index) runs to enqueue now.

    ``pool``: the candidates at the top budget (rows with ``candidate`` and the objectives),
    ``errors`` their standard errors; ``runs_at_top[c]``: runs of candidate c at the top
    budget in any state; ``live``: candidates with a run waiting or running; ``chance``:
    their front probabilities when already drawn (the study's analysis), else drawn here.
    """
    if pool.empty:
        return []
    if chance is None:
        values = pool[list(metrics)].astype(float).to_numpy()
        chance = front_probability(values, directions, errors)
    due = []
    for p, candidate in zip(chance, pool["candidate"].astype(int)):
        have = runs_at_top.get(candidate, 1)
        if candidate in live or have >= repeats.seeds:
            continue
        if repeats.rule == "racing" and not uncertain(p, confidence):
            continue
        due.append((abs(p - 0.5), candidate, have))
    return [(candidate, have) for _, candidate, have in sorted(due)]
