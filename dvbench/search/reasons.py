"""Why a trial failed or was pruned: the one wording of each reason a trial records as its
``fail_reason`` (:data:`dvbench.search.record.FAIL_REASON`) and the tables, the display and
the report show."""

from __future__ import annotations

__all__ = [
    "interrupted_reason",
    "invalid_config_reason",
    "prefilter_reason",
    "stale_reason",
    "study_full_reason",
    "unexpected_reason",
]


def invalid_config_reason(error: Exception) -> str:
    return f"invalid config: {error}"


def unexpected_reason(error: BaseException) -> str:
    """An error no step of the trial expected (a bug, a library's failure): its type and its
    first line, so the trial says why it failed."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"[:500]


def interrupted_reason() -> str:
    return "interrupted (Ctrl-C / SIGINT)"


def study_full_reason(ahead: int, total: int) -> str:
    return f"not run: {ahead} earlier trials were complete or running (n_trials {total})"


def prefilter_reason(signal: str, score: float, place: int, scored: int, places: int) -> str:
    return (
        f"pre-filter: {signal} {score:.4g} places {place} of {scored} on the predicted front; "
        f"the first {places} train"
    )


def stale_reason(worker: str | None, retry: int | None) -> str:
    """A FAIL without a reason of its own: its worker died (another worker failed it)."""
    who = f"worker {worker}" if worker else "its worker"
    reason = f"{who} stopped heartbeating (died or hung)"
    if worker is None:
        reason = "worker died before the trial started"
    return f"{reason}; retried as trial {retry}" if retry is not None else reason
