"""Proxy fidelity: does the short schedule rank candidates the way a longer one does?

``calibrate`` draws K valid candidates from a search space (Optuna's random sampler, seeded),
trains each with a short and a long schedule under otherwise identical settings (same data,
seed, batch size, learning rate), and reports Kendall's tau and Spearman's rho between the
two accuracy rankings (scipy.stats), with the table of candidates.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from scipy import stats

from dvbench.errors import UsageError
from dvbench.evaluate import EvaluationFailure, Evaluator
from dvbench.search.space import SearchSpace
from dvbench.search.tables import write_atomic
from dvbench.train import DataSpec, TrainSettings


@dataclass(frozen=True)
class Calibration:
    space: str
    data: str
    short_epochs: float
    long_epochs: float
    table: pd.DataFrame
    kendall_tau: float
    kendall_p: float
    spearman_rho: float
    spearman_p: float

    def summary(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "data": self.data,
            "candidates": len(self.table),
            "short_epochs": self.short_epochs,
            "long_epochs": self.long_epochs,
            "kendall_tau": self.kendall_tau,
            "kendall_p": self.kendall_p,
            "spearman_rho": self.spearman_rho,
            "spearman_p": self.spearman_p,
        }


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


def calibrate(
    space: SearchSpace,
    *,
    data: str | None = None,
    candidates: int = 8,
    short_epochs: float = 1.0,
    long_epochs: float = 5.0,
    seed: int = 0,
    resolution: int | None = None,
    train_samples: int | None = None,
    data_dir: str | None = None,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> Calibration:
    """Train ``candidates`` random candidates of ``space`` with a short and a long schedule
    (otherwise the space's training settings) and rank-correlate the two accuracies.

    ``data``, ``resolution``, ``train_samples`` and ``data_dir`` replace the space's.
    """
    if candidates < 3:
        raise UsageError(f"--candidates: need at least 3 to rank, got {candidates}")
    if not 0 < short_epochs < long_epochs:
        raise UsageError(f"--short {short_epochs} must be positive and below --long {long_epochs}")
    log = log or (lambda message: None)
    base_data = space.data or DataSpec()
    changes = {
        "source": data,
        "resolution": resolution,
        "train_samples": train_samples,
        "data_dir": data_dir,
    }
    data_spec = dataclasses.replace(
        base_data, **{k: v for k, v in changes.items() if v is not None}
    )
    base = space.train or TrainSettings()
    evaluator = Evaluator(
        profile=space.profile, data=data_spec, train=base, device=device, seed=seed
    )
    dataset = evaluator.data
    pairs = sample_candidates(
        space,
        candidates,
        num_classes=dataset.num_classes,
        img_size=dataset.resolution,
        seed=seed,
    )
    rows = []
    for index, (knobs, cfg) in enumerate(pairs):
        row: dict[str, Any] = {"candidate": index, **{f"knob.{k}": v for k, v in knobs.items()}}
        for label, epochs in (("short", short_epochs), ("long", long_epochs)):
            settings = dataclasses.replace(base, epochs=epochs, max_steps=None, time_limit_s=None)
            log(f"candidate {index + 1}/{len(pairs)}: {label} schedule ({epochs:g} epochs)")
            try:
                result = evaluator.with_train(settings).train(cfg, seed=seed)
            except EvaluationFailure as exc:
                row[f"top1_{label}"], row[f"train_s_{label}"] = math.nan, math.nan
                row[f"status_{label}"] = str(exc)
                continue
            row[f"top1_{label}"] = result.top1
            row[f"train_s_{label}"] = result.train_time_s
            row[f"status_{label}"] = result.status
            row["params_m"] = result.params / 1e6
        row["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    ok = table.dropna(subset=["top1_short", "top1_long"])
    if len(ok) < 3:
        raise UsageError(f"only {len(ok)} candidates trained successfully; cannot rank")
    tau = stats.kendalltau(ok["top1_short"], ok["top1_long"])
    rho = stats.spearmanr(ok["top1_short"], ok["top1_long"])
    table["rank_short"] = table["top1_short"].rank(ascending=False)
    table["rank_long"] = table["top1_long"].rank(ascending=False)
    return Calibration(
        space=space.name,
        data=dataset.name,
        short_epochs=short_epochs,
        long_epochs=long_epochs,
        table=table,
        kendall_tau=float(tau.statistic),
        kendall_p=float(tau.pvalue),
        spearman_rho=float(rho.statistic),
        spearman_p=float(rho.pvalue),
    )


def save_calibration(result: Calibration, out_dir: Path) -> dict[str, Path]:
    stem = f"calibrate_{result.space}_{Path(result.data).name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    table_path = write_atomic(result.table, out_dir / f"{stem}.csv")
    summary_path = out_dir / f"{stem}.json"
    summary_path.write_text(json.dumps(result.summary(), indent=2) + "\n")
    return {"table": table_path, "summary": summary_path}
