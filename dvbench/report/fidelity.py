"""The fidelity benchmark's plot: rank agreement with the long schedule against the compute
each signal costs per candidate (one point per signal, two-level bootstrap 95 % intervals
drawn), with the two references a signal is judged by: the expected tau of a perfect
predictor against the target (from the target's ICC) and the seed-to-seed tau.

Like the other plots: :func:`get_fidelity_info` computes what to draw from the calibration's
``signals`` table, :func:`draw_fidelity` only draws it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from dvbench.report.plots import _log_axis, _new_figure, _save, _titles

__all__ = ["FidelityInfo", "FidelityPoint", "draw_fidelity", "get_fidelity_info"]

_COLOURS = {
    "baseline": "tab:gray",
    "proxy": "tab:purple",
    "rung": "tab:blue",
    "tse": "tab:cyan",
    "schedule": "tab:green",
}
_LEGEND = {
    "baseline": "params / FLOPs",
    "proxy": "training-free proxy",
    "rung": "rung of the long run",
    "tse": "sum of training losses so far",
    "schedule": "short schedule of its own",
}


class FidelityPoint(NamedTuple):
    label: str
    kind: str
    seconds: float
    tau: float
    low: float
    high: float


class FidelityInfo(NamedTuple):
    title: str
    subtitle: str
    points: list[FidelityPoint]
    ceiling: float | None  # a perfect predictor's expected tau against the target
    seed_to_seed: float | None  # tau between two seeds of the target


def get_fidelity_info(signals: pd.DataFrame, summary: Mapping[str, Any]) -> FidelityInfo:
    """One point per signal with a finite tau (negative ones too) and a known cost; the
    expected-tau ceiling and the seed-to-seed tau as lines."""
    points = []
    for row in signals.to_dict("records"):
        seconds, tau = row["seconds_per_candidate"], row["kendall_tau"]
        finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (seconds, tau))
        if finite and seconds >= 0:
            points.append(
                FidelityPoint(
                    row["signal"],
                    row["kind"],
                    max(float(row["seconds_per_candidate"]), 1e-3),
                    float(row["kendall_tau"]),
                    float(row["kendall_low"]),
                    float(row["kendall_high"]),
                )
            )
    reliability = summary.get("icc")
    icc_text = f"; target ICC {reliability:.2f}" if _finite(reliability) else ""
    return FidelityInfo(
        title=f"{summary.get('space')}: which signal ranks like {summary.get('target_epochs'):g} "
        "epochs?",
        subtitle=f"{summary.get('measured')} candidates, {summary.get('data')}; "
        f"test-set SE {summary.get('test_standard_error', math.nan):.2f} points{icc_text}",
        points=points,
        ceiling=_number(summary.get("expected_tau_ceiling_seed_mean")),
        seed_to_seed=_number(summary.get("seed_to_seed_tau")),
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _number(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def draw_fidelity(info: FidelityInfo, path: str | Path) -> Path:
    """Draw a :class:`FidelityInfo` to a PNG file."""
    figure = _new_figure()
    ax = figure.add_subplot()
    seen = set()
    for p in info.points:
        colour = _COLOURS.get(p.kind, "black")
        ax.errorbar(
            p.seconds,
            p.tau,
            yerr=[[max(p.tau - p.low, 0) if math.isfinite(p.low) else 0],
                  [max(p.high - p.tau, 0) if math.isfinite(p.high) else 0]],
            fmt="o",
            color=colour,
            capsize=3,
            label=None if p.kind in seen else _LEGEND.get(p.kind, p.kind),
        )  # fmt: skip
        seen.add(p.kind)
    for k, p in enumerate(sorted(info.points, key=lambda q: (q.seconds, q.tau))):
        # neighbours alternate above and below their point, so close labels do not collide
        ax.annotate(p.label, (p.seconds, p.tau), xytext=(5, 6 if k % 2 == 0 else -11),
                    textcoords="offset points", fontsize=7)  # fmt: skip
    if info.ceiling is not None:
        ax.axhline(info.ceiling, color="tab:red", linestyle="--", linewidth=1,
                   label=f"perfect predictor's expected tau ({info.ceiling:.2f})")  # fmt: skip
    if info.seed_to_seed is not None:
        ax.axhline(info.seed_to_seed, color="tab:orange", linestyle=":", linewidth=1,
                   label=f"seed-to-seed tau ({info.seed_to_seed:.2f})")  # fmt: skip
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xscale("log")
    seconds = [p.seconds for p in info.points] or [1.0]
    _log_axis(ax.xaxis, decades=math.log10(max(seconds) / min(seconds)))
    ax.set_xlabel("seconds per candidate (this machine)")
    ax.set_ylabel("Kendall's tau vs the long schedule's seed mean (95 % interval)")
    ax.set_ylim(-1.05, 1.05)
    ax.grid(True, alpha=0.3)
    if info.points or info.ceiling is not None:
        ax.legend(fontsize=7, loc="lower right")
    _titles(figure, ax, info.title, info.subtitle)
    return _save(figure, path)
