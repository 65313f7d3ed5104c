"""Completed trials the front leaves off because an objective is not a finite number.

A completed, feasible trial of the front's space version is a candidate for the front only
when every objective is finite; one recorded with NaN or infinity (an old study, a storage
written by hand, a metric that overflowed) is left off, and the report says which and why
rather than showing fewer rows than it counts. :func:`get_left_off_info` computes the rows
(what the tests check), :func:`left_off_text` writes the sentence.

A completed trial that proposed a candidate already measured copied that trial's result
instead of training (``duplicate_of``); it is one candidate, shown once, and
:func:`copies_text` says which trials were copies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

from dvbench.report.escape import markdown_text
from dvbench.search import candidates
from dvbench.search.record import DUPLICATE_OF

__all__ = ["LeftOff", "copies_text", "get_left_off_info", "left_off_text"]


class LeftOff(NamedTuple):
    """A completed trial left off the front: its number, and the first objective that is
    not finite with its value."""

    number: int
    metric: str
    value: Any


def get_left_off_info(trials: pd.DataFrame, metrics: Sequence[str]) -> list[LeftOff]:
    """The completed, feasible trials of the front's version (``trials``: the report's
    frame) that are left off the front because an objective in ``metrics`` is NaN, infinite
    or missing; in trial order."""
    if trials.empty:
        return []
    eligible = candidates(trials, [])
    kept = candidates(trials, list(metrics))
    out = []
    for _, row in eligible.drop(index=kept.index).sort_values("number").iterrows():
        for metric in metrics:
            value = pd.to_numeric(pd.Series([row.get(metric)]), errors="coerce").iloc[0]
            if pd.isna(value) or not math.isfinite(float(value)):
                out.append(LeftOff(int(row["number"]), metric, row.get(metric)))
                break
    return out


def left_off_text(rows: Sequence[LeftOff], *, shown: int = 5) -> str:
    """One markdown sentence naming the trials left off the front and why ('' for none)."""
    if not rows:
        return ""
    named = "; ".join(
        f"trial {r.number}: {markdown_text(r.metric)} is {_value(r.value)}" for r in rows[:shown]
    )
    more = f"; and {len(rows) - shown} more" if len(rows) > shown else ""
    count = f"{len(rows)} completed trial{'s' if len(rows) != 1 else ''}"
    return (
        f"{count} left off the front: an objective is not a finite number ({named}{more})."
    )


def _value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing or NaN"
    return markdown_text(value)


def copies_text(trials: pd.DataFrame, *, shown: int = 5) -> str:
    """One markdown sentence naming the completed trials that copied an earlier candidate's
    result (``trial 7 = trial 3``) instead of training it again ('' for none)."""
    if trials.empty or DUPLICATE_OF not in trials.columns:
        return ""
    copies = trials[(trials["state"] == "COMPLETE") & trials[DUPLICATE_OF].notna()]
    if copies.empty:
        return ""
    copies = copies.sort_values("number")
    pairs = [
        f"trial {int(n)} = trial {int(of)}"
        for n, of in zip(copies["number"][:shown], copies[DUPLICATE_OF][:shown])
    ]
    more = f", and {len(copies) - shown} more" if len(copies) > shown else ""
    count = f"{len(copies)} completed trial{'s' if len(copies) != 1 else ''}"
    return (
        f"{count} proposed a candidate already measured at the same fidelity and copied its "
        f"result instead of training it again; each is shown once ({', '.join(pairs)}{more})."
    )
