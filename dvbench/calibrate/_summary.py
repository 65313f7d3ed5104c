"""The fidelity benchmark's tables, from its records: reliability, signals, candidates.

- ``reliability``: for each measurement of the target run (top-1 at the last rung, on the
  whole test set and on each half; test loss; TSE; the top-1 mean of the last rungs), the
  ICC(1,1) over the candidates trained with several seeds, its 95 % interval, the seed sd and
  the between-candidate sd (:func:`~dvbench.calibrate.icc`).
- ``signals``: for each cheap signal (proxies, params/GFLOPs, lower rungs, short schedules,
  TSE so far), Kendall tau and Spearman rho against the target -- top-1 at the last rung,
  averaged over a candidate's seeds where it has several -- with two-level bootstrap intervals
  (candidates and target seeds), and tau minus params_m's tau on the same resamples, with its
  95 % interval and one widened for the number of signals compared (Bonferroni).
- ``summary``: the target's reliability, the expected-tau ceiling a perfect predictor can
  reach against it (:func:`~dvbench.calibrate.expected_tau_ceiling`), seed-to-seed tau (the
  mean over pairs of seeds), the test set's standard error, seconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dvbench.calibrate._plan import CalibrationPlan, record_key
from dvbench.files import ensure_folder, write_atomic, write_text_atomic
from dvbench.metrics import accuracy_standard_error
from dvbench.stats.reliability import (
    RankAgreement,
    Reliability,
    expected_tau_ceiling,
    icc,
    paired_tau_difference,
    rank_agreement,
)

#: Rungs from this share of the target's epochs on make the "mean of the last rungs" signal.
LAST_RUNGS_FROM = 0.8


@dataclass(frozen=True)
class Calibration:
    """The measured signals (one row each), the candidates (one row each), the target's
    reliability (one row per measurement of it) and a summary."""

    signals: pd.DataFrame
    candidates: pd.DataFrame
    summary: dict[str, Any]
    reliability: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)


def _last_rungs(plan: CalibrationPlan) -> tuple[float, ...]:
    rungs = tuple(e for e in plan.ladder if e >= LAST_RUNGS_FROM * plan.target)
    return rungs if len(rungs) >= 2 else ()


def _seed_tables(
    units: Mapping[tuple, Mapping[str, Any]], plan: CalibrationPlan, field: str, epochs: float
) -> np.ndarray:
    """candidates x seeds of ``field`` at the rung of ``epochs`` (NaN where not measured)."""
    table = np.full((plan.candidates, plan.seeds), np.nan)
    for (unit, c, e, s), record in units.items():
        if unit == "rung" and e == epochs and c < plan.candidates and s < plan.seeds:
            value = record.get(field)
            table[c, s] = value if isinstance(value, (int, float)) else np.nan
    return table


def _mean_of_last(units, plan: CalibrationPlan, field: str = "top1") -> np.ndarray:
    tables = [_seed_tables(units, plan, field, e) for e in _last_rungs(plan)]
    return np.mean(tables, axis=0) if tables else np.full((plan.candidates, plan.seeds), np.nan)


def _mean_seconds(units: Mapping[tuple, Mapping[str, Any]], unit: str, epochs: float) -> float:
    values = [
        r["seconds"] for (u, _, e, s), r in units.items()
        if u == unit and e == epochs and s == 0 and r.get("seconds")
    ]  # fmt: skip
    return float(np.mean(values)) if values else math.nan


def reliability_table(units, plan: CalibrationPlan) -> pd.DataFrame:
    """One row per measurement of the target run: its ICC over the repeated candidates."""
    target = plan.target
    measures = [
        ("top1", _seed_tables(units, plan, "top1", target)),
        ("top1 (half A)", _seed_tables(units, plan, "top1_a", target)),
        ("top1 (half B)", _seed_tables(units, plan, "top1_b", target)),
        ("-test loss", -_seed_tables(units, plan, "test_loss", target)),
        ("-test loss (half A)", -_seed_tables(units, plan, "loss_a", target)),
        ("-test loss (half B)", -_seed_tables(units, plan, "loss_b", target)),
        ("-TSE", -_seed_tables(units, plan, "tse", target)),
    ]
    if _last_rungs(plan):
        label = f"top1 mean of rungs {_label(_last_rungs(plan))}"
        measures += [
            (label, _mean_of_last(units, plan)),
            (f"{label} (half A)", _mean_of_last(units, plan, "top1_a")),
            (f"{label} (half B)", _mean_of_last(units, plan, "top1_b")),
        ]
    rows = []
    for name, table in measures:
        result = icc(table)
        if result.candidates < 2:
            continue
        rows.append({"measurement": name, **dataclasses.asdict(result),
                     "seconds_per_candidate": _mean_seconds(units, "rung", target)})  # fmt: skip
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


#: The reliability table's columns: a calibration with one seed has none of its rows, and its
#: CSV is then this header alone (a table that always parses).
RELIABILITY_COLUMNS = (
    "measurement",
    *(f.name for f in dataclasses.fields(Reliability)),
    "seconds_per_candidate",
)
#: The signals table's columns (the ``tau_minus_params`` ones only with params_m measured).
SIGNAL_COLUMNS = (
    "signal",
    "kind",
    *(f.name for f in dataclasses.fields(RankAgreement)),
    "seconds_per_candidate",
    "compute_fraction",
)


def _label(epochs: Sequence[float]) -> str:
    return "/".join(f"{e:g}" for e in epochs)


def summarize_calibration(
    records: Sequence[Mapping[str, Any]],
    plan: CalibrationPlan,
    *,
    space: str,
    data: str,
    test_images: int,
) -> Calibration:
    """Score every signal against the target (the seed mean where seeds exist), from the
    records, and the target's reliability."""
    units = {record_key(r): r for r in records if r.get("unit") != "plan"}
    n, target_epochs = plan.candidates, plan.target
    target = _seed_tables(units, plan, "top1", target_epochs)
    rows = []
    for index in range(n):
        proxies = units.get(("proxies", index, None, 0), {})
        row: dict[str, Any] = {"candidate": index}
        row.update({f"knob.{k}": v for k, v in (proxies.get("knobs") or {}).items()})
        row.update({f"proxy.{k}": v for k, v in (proxies.get("values") or {}).items()})
        for epochs in plan.ladder:
            row[f"rung.{epochs:g}"] = units.get(("rung", index, epochs, 0), {}).get("top1")
            row[f"tse.{epochs:g}"] = units.get(("rung", index, epochs, 0), {}).get("tse")
        for epochs in plan.schedules:
            row[f"schedule.{epochs:g}"] = units.get(("schedule", index, epochs, 0), {}).get("top1")
        for s in range(plan.seeds):
            row[f"target.seed{s}"] = target[index, s]
        row["target.mean"] = np.nanmean(target[index]) if np.isfinite(target[index]).any() else None
        row["config"] = json.dumps(proxies.get("config"), sort_keys=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    target_seconds = _mean_seconds(units, "rung", target_epochs)
    cheap: list[tuple[str, str, np.ndarray, float]] = []
    proxy_seconds: dict[str, list[float]] = {}
    for record in (r for k, r in units.items() if k[0] == "proxies"):
        for name, seconds in (record.get("seconds") or {}).items():
            proxy_seconds.setdefault(name, []).append(seconds)
    for column in [c for c in table.columns if c.startswith("proxy.")]:
        name = column.removeprefix("proxy.")
        kind = "baseline" if name in ("params_m", "gflops") else "proxy"
        seconds = float(np.mean(proxy_seconds.get(name, [math.nan])))
        cheap.append((name, kind, _numbers(table[column]), seconds))
    for epochs in plan.ladder[:-1]:
        seconds = _mean_seconds(units, "rung", epochs)
        rung, tse = _numbers(table[f"rung.{epochs:g}"]), -_numbers(table[f"tse.{epochs:g}"])
        cheap.append((f"rung {epochs:g} ep", "rung", rung, seconds))
        cheap.append((f"-TSE at {epochs:g} ep", "tse", tse, seconds))
    for epochs in plan.schedules:
        seconds = _mean_seconds(units, "schedule", epochs)
        values = _numbers(table[f"schedule.{epochs:g}"])
        cheap.append((f"{epochs:g}-epoch schedule", "schedule", values, seconds))
    reference = _numbers(table["proxy.params_m"]) if "proxy.params_m" in table else None
    compared = sum(1 for _, kind, values, _ in cheap if np.isfinite(values).sum() >= 3)
    signals = []
    for name, kind, values, seconds in cheap:
        if np.isfinite(values).sum() < 3:
            continue
        agreement = rank_agreement(values, target, seed=plan.seed)
        fraction = seconds / target_seconds if target_seconds else math.nan
        row = {"signal": name, "kind": kind, **dataclasses.asdict(agreement),
               "seconds_per_candidate": seconds, "compute_fraction": fraction}  # fmt: skip
        if reference is not None and name != "params_m":
            diff, low, high = paired_tau_difference(values, reference, target, seed=plan.seed)
            adjusted = paired_tau_difference(
                values, reference, target, seed=plan.seed, level=1 - 0.05 / max(compared - 1, 1)
            )
            row.update(tau_minus_params=diff, tau_minus_params_low=low,
                       tau_minus_params_high=high, tau_minus_params_low_adj=adjusted[1],
                       tau_minus_params_high_adj=adjusted[2])  # fmt: skip
        signals.append(row)
    reliability = reliability_table(units, plan)
    return Calibration(
        signals=pd.DataFrame(signals) if signals else pd.DataFrame(columns=SIGNAL_COLUMNS),
        candidates=table,
        summary=_summary(
            units,
            plan,
            target,
            reliability,
            space=space,
            data=data,
            test_images=test_images,
            target_seconds=target_seconds,
            compared=compared,
        ),  # fmt: skip
        reliability=reliability,
    )


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def _summary(units, plan, target, reliability, *, space, data, test_images, target_seconds,
             compared) -> dict[str, Any]:  # fmt: skip
    seeds_measured = np.isfinite(target).sum(axis=1)
    repeated = target[seeds_measured >= 2]
    pair_taus = []
    for a, b in itertools.combinations(range(plan.seeds), 2):
        both = np.isfinite(repeated[:, a]) & np.isfinite(repeated[:, b])
        if both.sum() >= 3:
            pair_taus.append(rank_agreement(repeated[both, a], repeated[both, b]).kendall_tau)
    top1 = reliability[reliability["measurement"] == "top1"] if len(reliability) else None
    rel = top1.iloc[0] if top1 is not None and len(top1) else None
    mean_accuracy = float(np.nanmean(target)) if np.isfinite(target).any() else math.nan
    per_candidate = np.where(seeds_measured > 0, seeds_measured, np.nan)
    mean_seeds = float(np.nanmean(per_candidate)) if np.isfinite(per_candidate).any() else 1.0
    return {
        "space": space,
        "data": data,
        "candidates": plan.candidates,
        "measured": int((seeds_measured > 0).sum()),
        "repeats": int((seeds_measured >= 2).sum()),
        "seeds": plan.seeds,
        "ladder": list(plan.ladder),
        "schedules": list(plan.schedules),
        "target_epochs": plan.target,
        "target_seconds_per_candidate": target_seconds,
        "target_top1_mean": mean_accuracy,
        "target_top1_range": [float(np.nanmin(target)), float(np.nanmax(target))]
        if np.isfinite(target).any()
        else None,
        "test_images": test_images,
        "test_standard_error": accuracy_standard_error(mean_accuracy, test_images),
        "icc": None if rel is None else float(rel["icc"]),
        "icc_interval": None if rel is None else [float(rel["icc_low"]), float(rel["icc_high"])],
        "seed_sd": None if rel is None else float(rel["seed_sd"]),
        "between_sd": None if rel is None else float(rel["between_sd"]),
        "expected_tau_ceiling_one_seed": None
        if rel is None
        else expected_tau_ceiling(float(rel["icc"])),
        "expected_tau_ceiling_seed_mean": None
        if rel is None
        else expected_tau_ceiling(float(rel["icc"]), mean_seeds),
        "seed_to_seed_tau": float(np.mean(pair_taus)) if pair_taus else math.nan,
        "signals_compared": compared,
    }


def save_calibration(result: Calibration, folder: Path) -> dict[str, Path]:
    """``signals``, ``candidates`` and ``reliability`` as CSV and Parquet (a header alone
    when a table has no rows), and ``summary.json`` as strict JSON (``null`` for a figure
    that could not be computed)."""
    ensure_folder(folder, "calibration folder")
    paths = {}
    frames = (("signals", result.signals), ("candidates", result.candidates),
              ("reliability", result.reliability))  # fmt: skip
    for stem, frame in frames:
        paths[f"{stem}.csv"] = write_atomic(frame, folder / f"{stem}.csv")
        paths[f"{stem}.parquet"] = write_atomic(frame, folder / f"{stem}.parquet")
    text = json.dumps(strict_json_value(result.summary), indent=2, allow_nan=False) + "\n"
    paths["summary.json"] = write_text_atomic(text, folder / "summary.json")
    return paths


def strict_json_value(value: Any) -> Any:
    """``value`` as strict JSON can hold it: NumPy scalars as Python numbers, tuples as lists,
    and every NaN or infinity as None (``null``: a figure that could not be computed, such
    as seed-to-seed tau with one seed)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): strict_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [strict_json_value(v) for v in value]
    return value
