"""The fidelity benchmark: how far can a search's accuracy axis be trusted?

``calibrate`` samples K valid candidates from a space (Optuna's random sampler, seeded) and
measures, for each, every cheap signal a search could rank it by, against the accuracy after
the longest schedule (the target):

- every training-free proxy of :mod:`dvbench.proxies`, and ``params_m``/``gflops``;
- the rungs of one run along a ladder of budgets (e.g. 1, 3, 9, 15 epochs): the candidate is
  trained ONCE on the schedule of the last rung, stopped and evaluated at each rung, and
  continued from its checkpoint. A rung's accuracy is therefore that of the first e epochs of
  the long schedule (learning rate still high), exactly what successive halving sees -- not
  that of a separate e-epoch run;
- short schedules of their own (e.g. a whole 3-epoch run, warm-up and cosine to the end): what
  a plain search with that budget trains;
- the noise ceiling: the last rung trained again with another seed (``repeats`` candidates).
  Tau between the two seeds is the most any signal can reach against one seed; signals are
  also scored against the mean of the two seeds.

Every finished unit (a candidate's proxies, a rung, a schedule, a repeat) is appended to
``records.jsonl`` in the calibration's folder as soon as it is done (and a ladder run keeps
its checkpoint), so a killed run re-run with the same command recomputes nothing it had
finished. :func:`summarize_calibration` turns the records into the tables.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from dvbench.errors import UsageError
from dvbench.evaluate import EvaluationFailure, Evaluator
from dvbench.search._fidelity import accuracy_standard_error, rank_agreement
from dvbench.search.space import SearchSpace
from dvbench.search.tables import write_atomic
from dvbench.train import Budget, DataSpec, TrainSettings

RECORDS_FILE = "records.jsonl"


@dataclass(frozen=True)
class CalibrationPlan:
    """What to measure: ``candidates`` from the space, the ``ladder`` of rung budgets (epochs,
    increasing; the last is the target), standalone short ``schedules`` (epochs), the
    ``proxies`` (None: all, with params_m and gflops), ``repeats`` candidates trained again
    at the last rung with seed ``seed + 1``."""

    candidates: int = 20
    ladder: tuple[float, ...] = (1.0, 3.0, 9.0, 15.0)
    schedules: tuple[float, ...] = (1.0, 3.0)
    proxies: tuple[str, ...] | None = None
    repeats: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.candidates < 3:
            raise UsageError(f"candidates: need at least 3 to rank, got {self.candidates}")
        ladder = tuple(float(e) for e in self.ladder)
        if not ladder or any(e <= 0 for e in ladder) or list(ladder) != sorted(set(ladder)):
            raise UsageError(f"ladder: increasing positive epochs, e.g. 1,3,9,15; got {ladder}")
        object.__setattr__(self, "ladder", ladder)
        object.__setattr__(self, "schedules", tuple(float(e) for e in self.schedules))
        if any(e <= 0 for e in self.schedules):
            raise UsageError(f"schedules: positive epochs, got {self.schedules}")
        if not 0 <= self.repeats <= self.candidates:
            raise UsageError(f"repeats: between 0 and candidates, got {self.repeats}")
        if self.proxies is not None:
            from dvbench.proxies import resolve_proxies

            try:
                names = tuple(p.name for p in resolve_proxies(self.proxies))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            object.__setattr__(self, "proxies", names)

    @property
    def target(self) -> float:
        return self.ladder[-1]


@dataclass(frozen=True)
class Calibration:
    """The measured signals (one row each), the candidates (one row each) and a summary."""

    signals: pd.DataFrame
    candidates: pd.DataFrame
    summary: dict[str, Any]


def sample_candidates(
    space: SearchSpace, count: int, *, num_classes: int, img_size: int, seed: int
) -> list[tuple[dict[str, Any], Any]]:
    """``count`` distinct, valid (knobs, config) pairs drawn at random from the space."""
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=seed), directions=["maximize"]
    )
    out: list[tuple[dict[str, Any], Any]] = []
    seen: set[str] = set()
    for _ in range(count * 50):
        trial = study.ask()
        knobs = space.sample(trial)
        study.tell(trial, 0.0)
        key = json.dumps(knobs, sort_keys=True)
        if key in seen:
            continue
        try:
            cfg = space.config(knobs, num_classes=num_classes, img_size=img_size)
        except ValueError:
            continue
        seen.add(key)
        out.append((knobs, cfg))
        if len(out) == count:
            return out
    raise UsageError(f"space {space.name}: found only {len(out)} distinct valid candidates")


class _Records:
    """The calibration's durable record: one JSON object per line, appended and fsynced."""

    def __init__(self, folder: Path, header: dict[str, Any]):
        self.path = folder / RECORDS_FILE
        folder.mkdir(parents=True, exist_ok=True)
        self.done: dict[tuple, dict[str, Any]] = {}
        if self.path.exists():
            lines = [line for line in self.path.read_text().splitlines() if line.strip()]
            first = json.loads(lines[0]) if lines else None
            if first is not None and first != header:
                raise UsageError(
                    f"{self.path} was made with other settings; give another --name, or "
                    "delete the folder to start over"
                )
            for line in lines[1:]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: that unit runs again
                    continue
                self.done[self.key(record)] = record
            if not lines:
                self._append(header)
        else:
            self._append(header)

    @staticmethod
    def key(record: Mapping[str, Any]) -> tuple:
        return (record["unit"], record["candidate"], record.get("epochs"))

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        self._append(record)
        self.done[self.key(record)] = record
        return record

    def _append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(record, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())


def calibrate(
    space: SearchSpace,
    plan: CalibrationPlan,
    *,
    data: DataSpec,
    train: TrainSettings,
    folder: Path,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    on_unit: Callable[[str], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> Calibration | None:
    """Measure every signal of ``plan`` on ``space``'s candidates, trained on ``data`` with
    ``train`` (its budget replaced by the plan's), recording into ``folder``.

    Resumable: re-running with the same arguments and folder reads what is recorded and only
    measures the rest. ``on_unit`` is told the kind of each unit measured (tests count them).

    ``shard=(i, n)`` measures only the candidates whose index is ``i`` modulo ``n`` and
    returns None: n processes (one core each) then share one folder, each appending whole
    lines to the record, and a last run without ``shard`` measures nothing new and returns
    the summary.
    """
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise UsageError(f"shard: want I/N with 0 <= I < N, got {shard[0]}/{shard[1]}")
    from dvbench.proxies import ProxySettings, score_model

    log = log or (lambda message: None)
    header = {
        "unit": "plan",
        "candidate": None,
        "space": space.name,
        "data": dataclasses.asdict(data),
        "train": dataclasses.asdict(train),
        "plan": dataclasses.asdict(plan),
    }
    records = _Records(folder, json.loads(json.dumps(header)))
    evaluator = Evaluator(profile=space.profile, data=data, train=train, device=device)
    dataset = evaluator.data
    pairs = sample_candidates(
        space, plan.candidates, num_classes=dataset.num_classes, img_size=dataset.resolution,
        seed=plan.seed,
    )  # fmt: skip
    flat = {"max_steps": None, "time_limit_s": None}
    ladder = evaluator.with_train(dataclasses.replace(train, epochs=plan.target, **flat))
    proxy_settings = ProxySettings(proxies=plan.proxies)

    def measured(unit: str, index: int, epochs: float | None = None) -> bool:
        return (unit, index, epochs) in records.done

    def finish(record: dict[str, Any]) -> None:
        records.add(record)
        if on_unit is not None:
            on_unit(record["unit"])

    for index, (knobs, cfg) in enumerate(pairs):
        if shard is not None and index % shard[1] != shard[0]:
            continue
        where = f"candidate {index + 1}/{len(pairs)}"
        if not measured("proxies", index):
            log(f"{where}: training-free proxies")
            scores = score_model(cfg, dataset, proxy_settings, seed=plan.seed, device=device)
            finish({
                "unit": "proxies", "candidate": index, "knobs": knobs,
                "config": cfg.to_dict(),
                "values": scores.values,
                "seconds": {n: s.seconds for n, s in scores.scores.items()},
                "failures": scores.failures,
            })  # fmt: skip
        checkpoint = folder / "checkpoints" / f"candidate_{index}.pt"
        for epochs in plan.ladder:
            if measured("rung", index, epochs):
                continue
            log(f"{where}: rung {epochs:g} of {plan.target:g} epochs")
            finish(_train_unit("rung", index, epochs, ladder, cfg, plan.seed, checkpoint))
        checkpoint.unlink(missing_ok=True)
        for epochs in plan.schedules:
            if not measured("schedule", index, epochs):
                log(f"{where}: a {epochs:g}-epoch schedule of its own")
                own = evaluator.with_train(dataclasses.replace(train, epochs=epochs, **flat))
                finish(_train_unit("schedule", index, epochs, own, cfg, plan.seed))
        if index < plan.repeats and not measured("repeat", index, plan.target):
            log(f"{where}: {plan.target:g} epochs again, seed {plan.seed + 1}")
            finish(_train_unit("repeat", index, plan.target, ladder, cfg, plan.seed + 1))
    if shard is not None:
        return None
    return summarize_calibration(
        list(records.done.values()), plan, space=space.name, data=dataset.describe(),
        test_images=dataset.num_test,
    )  # fmt: skip


def _train_unit(
    unit: str,
    index: int,
    epochs: float,
    evaluator: Evaluator,
    cfg: Any,
    seed: int,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {"unit": unit, "candidate": index, "epochs": epochs}
    try:
        result = evaluator.train(
            cfg,
            seed=seed,
            budget=Budget(epochs=epochs) if checkpoint is not None else None,
            checkpoint=checkpoint,
        )
    except EvaluationFailure as exc:
        return {**record, "top1": None, "seconds": None, "failure": str(exc)}
    # a rung costs everything trained up to it, plus its evaluation
    return {**record, "top1": result.top1, "seconds": result.train_time_s + result.eval_time_s}


def summarize_calibration(
    records: Sequence[Mapping[str, Any]],
    plan: CalibrationPlan,
    *,
    space: str,
    data: str,
    test_images: int,
) -> Calibration:
    """Score every signal against the last rung (and the seed mean), from the records."""
    by_unit: dict[str, dict[tuple, Mapping[str, Any]]] = {}
    for record in records:
        if record.get("unit") != "plan":
            by_unit.setdefault(record["unit"], {})[(record["candidate"], record.get("epochs"))] = (
                record
            )
    n = plan.candidates
    rows = []
    for index in range(n):
        proxies = by_unit.get("proxies", {}).get((index, None), {})
        row: dict[str, Any] = {"candidate": index}
        row.update({f"knob.{k}": v for k, v in (proxies.get("knobs") or {}).items()})
        row.update({f"proxy.{k}": v for k, v in (proxies.get("values") or {}).items()})
        for unit, epochs_list in (("rung", plan.ladder), ("schedule", plan.schedules)):
            for epochs in epochs_list:
                done = by_unit.get(unit, {}).get((index, epochs), {})
                row[f"{unit}.{epochs:g}"] = done.get("top1")
        repeat = by_unit.get("repeat", {}).get((index, plan.target), {})
        row[f"repeat.{plan.target:g}"] = repeat.get("top1")
        row["config"] = json.dumps(proxies.get("config"), sort_keys=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    target_column = f"rung.{plan.target:g}"
    target = pd.to_numeric(table[target_column], errors="coerce").to_numpy(dtype=float)
    repeat = pd.to_numeric(table[f"repeat.{plan.target:g}"], errors="coerce").to_numpy(dtype=float)
    both = np.isfinite(target) & np.isfinite(repeat)
    seed_mean = np.where(both, (target + repeat) / 2, np.nan)
    target_seconds = _mean_seconds(by_unit.get("rung", {}), plan.target)

    signals = []

    def add(name: str, kind: str, values: np.ndarray, seconds: float) -> None:
        agreement = rank_agreement(values, target, seed=plan.seed)
        versus_mean = rank_agreement(values, seed_mean, seed=plan.seed)
        signals.append({
            "signal": name, "kind": kind, **dataclasses.asdict(agreement),
            "tau_vs_seed_mean": versus_mean.kendall_tau,
            "tau_vs_seed_mean_low": versus_mean.kendall_low,
            "tau_vs_seed_mean_high": versus_mean.kendall_high,
            "seconds_per_candidate": seconds,
            "compute_fraction": seconds / target_seconds if target_seconds else math.nan,
        })  # fmt: skip

    proxy_seconds: dict[str, list[float]] = {}
    for record in by_unit.get("proxies", {}).values():
        for name, seconds in (record.get("seconds") or {}).items():
            proxy_seconds.setdefault(name, []).append(seconds)
    for column in [c for c in table.columns if c.startswith("proxy.")]:
        name = column.removeprefix("proxy.")
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        kind = "baseline" if name in ("params_m", "gflops") else "proxy"
        add(name, kind, values, float(np.mean(proxy_seconds.get(name, [math.nan]))))
    for epochs in plan.ladder[:-1]:
        values = pd.to_numeric(table[f"rung.{epochs:g}"], errors="coerce").to_numpy(dtype=float)
        add(f"rung {epochs:g} ep", "rung", values, _mean_seconds(by_unit.get("rung", {}), epochs))
    for epochs in plan.schedules:
        column = table[f"schedule.{epochs:g}"]
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        seconds = _mean_seconds(by_unit.get("schedule", {}), epochs)
        add(f"{epochs:g}-epoch schedule", "schedule", values, seconds)
    add(f"seed {plan.seed + 1} at {plan.target:g} ep", "ceiling", repeat, target_seconds)
    frame = pd.DataFrame(signals)
    mean_accuracy = float(np.nanmean(target)) if np.isfinite(target).any() else math.nan
    ceiling = frame[frame["kind"] == "ceiling"].iloc[0]
    summary = {
        "space": space,
        "data": data,
        "candidates": n,
        "measured": int(np.isfinite(target).sum()),
        "repeats": int(both.sum()),
        "ladder": list(plan.ladder),
        "schedules": list(plan.schedules),
        "target_epochs": plan.target,
        "target_seconds_per_candidate": target_seconds,
        "target_top1_mean": mean_accuracy,
        "target_top1_range": [float(np.nanmin(target)), float(np.nanmax(target))]
        if np.isfinite(target).any()
        else None,
        "test_images": test_images,
        "test_standard_error": accuracy_standard_error(mean_accuracy, test_images)
        if math.isfinite(mean_accuracy)
        else math.nan,
        "seed_to_seed_tau": float(ceiling["kendall_tau"]),
        "seed_to_seed_tau_interval": [
            float(ceiling["kendall_low"]),
            float(ceiling["kendall_high"]),
        ],
    }
    return Calibration(signals=frame, candidates=table, summary=summary)


def _mean_seconds(units: Mapping[tuple, Mapping[str, Any]], epochs: float) -> float:
    values = [r["seconds"] for (_, e), r in units.items() if e == epochs and r.get("seconds")]
    return float(np.mean(values)) if values else math.nan


def save_calibration(result: Calibration, folder: Path) -> dict[str, Path]:
    """``signals.csv``/``.parquet``, ``candidates.csv``/``.parquet`` and ``summary.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stem, frame in (("signals", result.signals), ("candidates", result.candidates)):
        paths[f"{stem}.csv"] = write_atomic(frame, folder / f"{stem}.csv")
        paths[f"{stem}.parquet"] = write_atomic(frame, folder / f"{stem}.parquet")
    summary = folder / "summary.json"
    summary.write_text(json.dumps(result.summary, indent=2, default=float) + "\n")
    paths["summary.json"] = summary
    return paths
