"""The fidelity benchmark's plot: rank agreement with the long schedule against the compute
each signal costs per candidate (one point per signal, bootstrap 95 % intervals drawn).

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
    "schedule": "tab:green",
    "ceiling": "tab:red",
}
_LEGEND = {
    "baseline": "params / FLOPs",
    "proxy": "training-free proxy",
    "rung": "rung of the long run",
    "schedule": "short schedule of its own",
    "ceiling": "another seed (noise ceiling)",
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
    ceiling: float | None


def get_fidelity_info(signals: pd.DataFrame, summary: Mapping[str, Any]) -> FidelityInfo:
    """One point per signal with a finite tau (negative ones too) and a known cost; the
    seed-to-seed tau as a line."""
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
    ceiling = summary.get("seed_to_seed_tau")
    return FidelityInfo(
        title=f"{summary.get('space')}: which signal ranks like {summary.get('target_epochs'):g} "
        "epochs?",
        subtitle=f"{summary.get('measured')} candidates, {summary.get('data')}; "
        f"test-set SE {summary.get('test_standard_error', math.nan):.2f} points",
        points=points,
        ceiling=float(ceiling) if ceiling is not None and math.isfinite(ceiling) else None,
    )


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
        ax.annotate(p.label, (p.seconds, p.tau), xytext=(4, 4), textcoords="offset points",
                    fontsize=7)  # fmt: skip
    if info.ceiling is not None:
        ax.axhline(info.ceiling, color="tab:red", linestyle="--", linewidth=1)
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_xlabel("seconds per candidate (this machine)")
    ax.set_ylabel("Kendall's tau vs the long schedule (95 % bootstrap interval)")
    ax.set_ylim(-1.05, 1.05)
    ax.grid(True, alpha=0.3)
    if info.points:
        ax.legend(fontsize=8, loc="lower right")
    _titles(figure, ax, info.title, info.subtitle)
    return _save(figure, path)
