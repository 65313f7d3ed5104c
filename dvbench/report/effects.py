"""The report's *What the knobs do at equal cost* section, and ``effects.csv`` beside it.

:func:`get_effects_info` fits :func:`dvbench.stats.effects.knob_effects` to a study's
candidates (the accuracy objective, at equal cost of the first cost objective, clustered by
candidate over its seeds; baselines as families of their own); :func:`effects_section` writes
the section from it (a table, one sentence per knob the interval resolves, the rest "not
distinguished"); :func:`write_effects_table` writes ``effects.csv``. Parameter importance,
elsewhere in the report, answers another question (how much a knob moves an objective, its
effect on cost included) and the section says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dvbench.files import write_atomic
from dvbench.report.data import ACCURACY_METRICS, ReportData, metric_name, metric_unit
from dvbench.report.markdown import markdown_table
from dvbench.search import candidates
from dvbench.stats import DEFAULT_CONFIDENCE
from dvbench.stats.effects import NOT_DISTINGUISHED, PER_DOUBLING, KnobEffects, knob_effects

__all__ = ["EFFECTS_FILE", "effects_section", "get_effects_info", "write_effects_table"]

EFFECTS_FILE = "effects.csv"
# the section's intervals: dvbench's default, not the study's dominance rule's (0: strict)
CONFIDENCE = DEFAULT_CONFIDENCE
KNOB_PREFIX = "knob."
DUALVIT = "dualvit"  # the family of the study's own candidates


def _axes(data: ReportData) -> tuple[str, str] | None:
    accuracy = next((m for m in data.metrics if m in ACCURACY_METRICS), None)
    cost = next(
        (m for m, d in zip(data.metrics, data.directions, strict=True)
         if d == "minimize" and m not in ACCURACY_METRICS),
        None,
    )  # fmt: skip
    return (accuracy, cost) if accuracy and cost else None


def _seeds(frame: pd.DataFrame, metric: str) -> pd.Series:
    seeds = pd.to_numeric(frame.get(f"{metric}_seeds"), errors="coerce")
    return pd.Series(seeds, index=frame.index).fillna(1).clip(lower=1)


def get_effects_info(data: ReportData) -> KnobEffects | None:
    """The knob effects on the study's accuracy objective at equal cost (its first minimised
    non-accuracy objective); None for a study without both. Candidates are the front's pool
    (completed, feasible, top rung, newest space version); each is one cluster of its seeds
    (``<metric>_seeds`` runs behind its mean). Baselines compared in the report join as
    families of their own name (a ``family`` column, where a study has one, wins)."""
    axes = _axes(data)
    if axes is None:
        return None
    accuracy, cost = axes
    pool = candidates(data.trials, data.metrics) if not data.trials.empty else data.trials
    knobs = [str(c) for c in pool.columns if str(c).startswith(KNOB_PREFIX)]
    rows = pd.DataFrame({
        "candidate": [f"trial {n}" for n in pool.get("number", [])],
        accuracy: pd.to_numeric(pool.get(accuracy), errors="coerce"),
        cost: pd.to_numeric(pool.get(cost), errors="coerce"),
        "runs": _seeds(pool, accuracy),
        "family": DUALVIT,
        **{k.removeprefix(KNOB_PREFIX): pool[k] for k in knobs},
    })  # fmt: skip
    base = data.baseline_rows
    if not base.empty:
        base = base[base["name"].isin(list(data.dominance))]
        names = base["family"].fillna(base["name"]) if "family" in base else base["name"]
        rows = pd.concat([rows, pd.DataFrame({
            "candidate": [f"baseline {n}" for n in base["name"]],
            accuracy: pd.to_numeric(base[accuracy], errors="coerce"),
            cost: pd.to_numeric(base[cost], errors="coerce"),
            "runs": _seeds(base, accuracy),
            "family": names.astype(str),
        })], ignore_index=True)  # fmt: skip
    return knob_effects(
        rows,
        objective=accuracy,
        direction=data.direction(accuracy),
        cost=cost,
        knobs=[k.removeprefix(KNOB_PREFIX) for k in knobs],
        runs="runs",
        family="family",
        family_reference=DUALVIT,
        confidence=CONFIDENCE,
    )


def write_effects_table(effects: KnobEffects | None, out_dir: Path) -> Path | None:
    """``effects.csv`` in ``out_dir`` (one row per term, see
    :data:`dvbench.stats.effects.EFFECT_COLUMNS`); None when nothing was fitted."""
    if effects is None or effects.table.empty:
        return None
    return write_atomic(effects.frame(), Path(out_dir) / EFFECTS_FILE)


# --------------------------------------------------------------------------------- drawing
def _decimals(se: float) -> int:
    # the precision rule of dvbench.metrics.format_with_error: the SE to two significant digits
    return max(0, 1 - math.floor(math.log10(se))) if math.isfinite(se) and se > 0 else 2


def _signed(value: float, decimals: int) -> str:
    return f"{value:+.{decimals}f}" if math.isfinite(value) else "?"


def _interval(row: dict) -> str:
    d = _decimals(row["se"])
    return f"[{_signed(row['ci_low'], d)}, {_signed(row['ci_high'], d)}]"


def _units(metric: str) -> str:
    unit = metric_unit(metric)
    return "points" if unit == "%" else ("" if unit == metric_name(metric) else unit)


def _what(row: dict) -> str:
    """``width per doubling``, ``semantic_grid 4 rather than 1``, ``family pvt_v2_b0 rather
    than dualvit``."""
    if not row["reference"]:
        return f"{row['knob']} {row['level']}"
    return f"{row['knob']} {row['level']} rather than {row['reference']}"


def _sentence(row: dict, effects: KnobEffects) -> str:
    d = _decimals(row["se"])
    units = _units(effects.objective)
    amount = f"{_signed(row['effect'], d)}{' ' + units if units else ''}"
    return (
        f"- **{_what(row)}**: {amount} {_interval(row)} of {metric_name(effects.objective)} "
        f"at equal {metric_name(effects.cost)} ({row['verdict']})."
    )


def _cost_line(effects: KnobEffects) -> str:
    trend = effects.table[effects.table["model"] == "cost"]
    share = (
        f"cost alone explains adjusted R² = {effects.r2_adj_cost:.2f} of the candidates' mean "
        f"{metric_name(effects.objective)}"
    )
    if math.isfinite(effects.r2_adj_model):
        share += f", cost and every knob {effects.r2_adj_model:.2f}"
    if trend.empty:
        return f"Cost: {share}."
    row = trend.iloc[0].to_dict()
    d = _decimals(row["se"])
    units = _units(effects.objective)
    return (
        f"Cost: {metric_name(effects.objective)} changes by {_signed(row['effect'], d)}"
        f"{' ' + units if units else ''} {_interval(row)} per doubling of "
        f"{metric_name(effects.cost)}; {share}."
    )


def effects_section(effects: KnobEffects | None) -> list[str]:
    """The section's markdown lines (heading included); none for a study without an accuracy
    and a cost objective."""
    if effects is None:
        return []
    lines = ["## What the knobs do at equal cost", ""]
    importance = (
        "The *Parameter importance* above ranks knobs by how much they move each objective, "
        "their effect on cost included, with no interval; this section holds cost equal."
    )
    if effects.skipped or effects.knob_rows().empty:
        reason = effects.skipped or "; ".join(effects.notes) or "no knob could be fitted"
        return [*lines, f"Not computed: {reason}.", "", importance, ""]
    objective, cost = metric_name(effects.objective), metric_name(effects.cost)
    how = (
        "each effect holds cost and the other knobs fixed (one model of every knob)"
        if effects.model == "joint"
        else "each knob is fitted alone beside cost (too few candidates for every knob at "
        "once), so an effect includes what the other knobs do at equal cost as the search "
        "drew them"
    )
    rows = effects.knob_rows().to_dict("records")
    fitted = [row for row in rows if row["model"] != "family"] or rows
    candidates, runs = max(r["n_candidates"] for r in fitted), max(r["n_runs"] for r in fitted)
    lines += [
        f"What each knob's level changes in {objective} among candidates of the same {cost}, "
        f"from a linear model of {candidates} candidates' {runs} runs "
        f"against log {cost}; {how}. Intervals are {effects.confidence:.0%}, cluster-robust by "
        f"candidate (its seeds are one cluster, {effects.covariance}); a knob whose interval "
        f"holds 0 is *not distinguished*. Rows: `{EFFECTS_FILE}`.",
        "",
        _cost_line(effects),
        "",
    ]
    header = ["knob", "level", "vs", f"effect ({_units(effects.objective) or objective})",
              f"{effects.confidence:.0%} interval", "p", "verdict"]  # fmt: skip
    table = [
        [row["knob"], row["level"], row["reference"],
         _signed(row["effect"], _decimals(row["se"])), _interval(row),
         f"{row['p_value']:.2g}", row["verdict"]]
        for row in rows
    ]  # fmt: skip
    lines += [markdown_table(header, table, right=[False, False, False, True, True, True, False])]
    lines.append("")
    told = [row for row in rows if row["verdict"] != NOT_DISTINGUISHED]
    lines += [_sentence(row, effects) for row in told]
    quiet = [
        name for name in dict.fromkeys(row["knob"] for row in rows)
        if not any(r["knob"] == name for r in told)
    ]  # fmt: skip
    if quiet:
        lines.append(f"- Not distinguished at {effects.confidence:.0%}: {', '.join(quiet)}.")
    lines += [
        "",
        f"Each interval is {effects.confidence:.0%} on its own: were none of these {len(rows)} "
        f"terms to do anything, about {len(rows) * (1 - effects.confidence):.1f} of them would "
        "still look distinguished by chance. " + importance,
        "",
    ]
    if any(row["level"] == PER_DOUBLING for row in rows):
        lines[-2] += " A *per doubling* knob is a line in log2 of its value."
    if effects.notes:
        lines += ["Notes:", "", *(f"- {note}" for note in effects.notes), ""]
    return lines
