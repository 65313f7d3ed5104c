"""Search policies replayed on a calibration's records and judged, with the measures of
``_measures``, against the controls at the same compute (issue 36).

The pool (:func:`read_pool`): every candidate of the calibration folders (``cli.py
calibrate``; candidate numbers are shared between folders of one plan, e.g. the cifar
yardstick's 0-7 and its extension's 8-13) that has every training seed's top-1 at each epoch
the policy needs; its cost is GFLOPs at the search's profile resolution (224 px), its
training-free scores are the ``proxies`` records'. The pool's table (every candidate's GFLOPs
and top-epoch seeds) is kept in ``results/benchmarks/policies_pool.csv``, whose GFLOPs later
runs read back instead of counting again.

A replay (:class:`Replay`) shows a policy one training seed ``s`` of every candidate -- what a
search that trains each candidate once would measure, at any epoch of the same run -- and
judges it against the truth: the mean top-1, at the top epoch, of the *other* seeds, so that
what the policy saw is not what it is judged by. A policy (:data:`Policy`) returns its chosen
candidates (trained to the top epoch) and its compute in full trainings; the pick within a
cost budget goes by its seed-``s`` top-1 at the top epoch.

:func:`judge` replays every policy for every seed and averages the measures over the seeds;
its intervals are a bootstrap over candidates (``scipy.stats.bootstrap``, percentile, 95 %):
each resample is a pool of the same size drawn with replacement, every policy replayed on it
(its decisions change with the pool) with its controls -- ``cheapest-k`` (k = the policy's
full trainings, rounded), ``random-k`` and ``permuted`` (``_measures``) -- so the differences
between a policy and its controls are paired. A policy **beats** a control when the interval
of the control's regret minus the policy's is above 0.

The check (``_measures.MeasureCheck``): ``full training`` (every candidate trained once, the
front of what it measured kept) is the policy that reads accuracy; a measure is used to judge
only where its permuted control is worse by more than the interval. The ``oracle`` (the true
front) is checked too: where it passes and full training fails, the measure could judge but
one seed's accuracies do not resolve the pool.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import _measures as measures
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CALIBRATE = REPO / "results" / "benchmarks" / "calibrate"
#: The cifar yardstick (8 candidates, epochs 3/13/14/15) and its extension with every epoch
#: (candidates 8-13), read when present.
YARDSTICK = (
    CALIBRATE / "yardstick_cifar-300-32-15",
    CALIBRATE / "yardstick_cifar-300-32-15_curves",
)
#: The pool's table (candidate, GFLOPs at 224 px, the top epoch's seeds), written by
#: :func:`read_pool` and read back for the GFLOPs (counting them traces every network).
POOL_TABLE = REPO / "results" / "benchmarks" / "policies_pool.csv"
RESAMPLES = 500
DRAWS = 10
READER = "full training (reads accuracy)"
ORACLE = "oracle (reads the truth)"
CONTROLS = ("cheapest-k", "random-k", "permuted")


@dataclass(frozen=True)
class Pool:
    """Candidates with their cost, per-epoch top-1 (candidates x seeds) and scores."""

    candidates: np.ndarray
    gflops: np.ndarray
    top1: Mapping[float, np.ndarray]
    proxies: Mapping[str, np.ndarray]
    top_epoch: float
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def seeds(self) -> int:
        return self.top1[self.top_epoch].shape[1]

    def take(self, index: np.ndarray) -> Pool:
        """The pool of the candidates at ``index`` (repeats allowed: a bootstrap resample)."""
        return Pool(
            self.candidates[index], self.gflops[index],
            {e: v[index] for e, v in self.top1.items()},
            {k: v[index] for k, v in self.proxies.items()}, self.top_epoch, self.sources,
        )  # fmt: skip


def _gflops(config: Mapping, resolution: int) -> float:
    from dvbench.models import DualViTConfig
    from dvbench.profile import count_cost
    from dvbench.train import build_candidate

    cfg = DualViTConfig.from_dict(dict(config)).replace(img_size=resolution)
    model = build_candidate(cfg, num_classes=cfg.num_classes, resolution=resolution)
    return float(count_cost(model, resolution).gflops)


def read_pool(
    folders: Sequence[Path] = YARDSTICK,
    *,
    epochs: Sequence[float] = (),
    resolution: int = 224,
    table: Path | None = POOL_TABLE,
) -> Pool:
    """The candidates of the calibration ``folders`` that exist (the first one must) with every
    seed's top-1 at the top epoch and at each of ``epochs``; GFLOPs at ``resolution``, taken
    from ``table`` for a network it lists at that resolution and counted otherwise; the pool
    of every candidate with the top epoch's seeds is written back to ``table``."""
    from dvbench.calibrate import read_records
    from dvbench.files import write_atomic

    runs: dict[int, dict[tuple[float, int], float]] = {}
    configs: dict[int, Mapping] = {}
    scores: dict[int, Mapping[str, float]] = {}
    plans, sources = [], []
    for folder in folders:
        if folder != folders[0] and not (folder / "records.jsonl").is_file():
            continue
        records = read_records(folder)
        sources.append(folder.name)
        for record in records:
            unit, candidate = record.get("unit"), record.get("candidate")
            if unit == "plan":
                plans.append(record)
            elif unit == "rung":
                runs.setdefault(candidate, {})[(float(record["epochs"]), int(record["seed"]))] = (
                    float(record["top1"])
                )
            elif unit == "proxies":
                configs[candidate], scores[candidate] = record["config"], record["values"]
    top = float(plans[0]["train"]["epochs"])
    seeds = int(plans[0]["plan"]["seeds"])

    def complete(at: Sequence[float]) -> list[int]:
        return sorted(
            c for c, measured in runs.items()
            if c in configs and all((e, s) in measured for e in at for s in range(seeds))
        )  # fmt: skip

    known: dict[tuple[str, int], float] = {}
    if table is not None and table.is_file():
        cached = pd.read_csv(table)
        known = {(k, int(r)): float(g) for k, r, g in
                 zip(cached["network"], cached["resolution"], cached["gflops"])}  # fmt: skip
    counted = {}
    for c in complete([top]):
        key = config_key(configs[c])
        counted[c] = known.get((key, resolution)) or _gflops(configs[c], resolution)
    if table is not None:
        write_atomic(pd.DataFrame([
            {"candidate": c, "resolution": resolution, "gflops": counted[c],
             **{f"top1.{top:g}.seed{s}": runs[c][(top, s)] for s in range(seeds)},
             "network": config_key(configs[c])}
            for c in counted
        ]), table)  # fmt: skip
    needed = sorted({top, *map(float, epochs)})
    keep = complete(needed)
    if len(keep) < 3:
        raise ValueError(f"epochs: {len(keep)} candidates have every seed at {needed}")
    top1 = {e: np.array([[runs[c][(e, s)] for s in range(seeds)] for c in keep])
            for e in needed}  # fmt: skip
    names = sorted(set.intersection(*(set(scores[c]) for c in keep)))
    proxies = {n: np.array([float(scores[c][n]) for c in keep]) for n in names}
    gflops = np.array([counted[c] for c in keep])
    return Pool(np.array(keep), gflops, top1, proxies, top, tuple(sources))


@dataclass(frozen=True)
class Replay:
    """What a policy sees of ``pool`` (training seed ``seed``) and the truth it is judged by
    (the other seeds' mean at the top epoch)."""

    pool: Pool
    seed: int

    def seen(self, epochs: float) -> np.ndarray:
        """Every candidate's top-1 after ``epochs`` of its seed-``seed`` run."""
        return self.pool.top1[float(epochs)][:, self.seed]

    @property
    def estimate(self) -> np.ndarray:
        return self.seen(self.pool.top_epoch)

    @property
    def truth(self) -> np.ndarray:
        table = self.pool.top1[self.pool.top_epoch]
        others = [s for s in range(table.shape[1]) if s != self.seed]
        return table[:, others].mean(axis=1)

    @property
    def cost(self) -> np.ndarray:
        return self.pool.gflops


class Choice(NamedTuple):
    """A policy's chosen candidates (trained to the top epoch) and its compute in full
    trainings; ``estimate`` replaces the replay's seed-``s`` top-1 as what the policy and its
    controls pick by (the oracle's: the truth)."""

    chosen: np.ndarray
    trainings: float
    estimate: np.ndarray | None = None


Policy = Callable[[Replay], Choice]


def full_training(replay: Replay) -> Choice:
    """Every candidate trained once; the front of what it measured kept (reads accuracy)."""
    return Choice(measures.true_front(replay.estimate, replay.cost), float(len(replay.pool)))


def oracle(replay: Replay) -> Choice:
    """The true front, picked by the truth, charged one training a member: no policy does
    better; its check says whether a measure can tell accuracy from its permutation on this
    pool at all."""
    front = measures.true_front(replay.truth, replay.cost)
    return Choice(front, float(len(front)), replay.truth)


def _scores(replay: Replay, policy: Policy, *, draws: int, seed: int) -> dict[str, dict]:
    """The measures of ``policy`` and its controls on one replay."""
    choice = policy(replay)
    estimate = replay.estimate if choice.estimate is None else choice.estimate
    score = measures.Scorer(replay.truth, replay.cost, estimate=estimate)
    k = max(1, min(len(replay.pool), round(choice.trainings)))
    rng = np.random.default_rng(seed)
    return {
        "policy": {**score(choice.chosen), "trainings": choice.trainings, "kept": len(
            set(choice.chosen.tolist()))},
        "cheapest-k": score(measures.cheapest_k(replay.cost, k)),
        "random-k": measures.random_control(
            replay.truth, replay.cost, k, estimate=estimate, draws=draws, rng=rng
        ),
        "permuted": measures.permuted_control(
            choice.chosen, replay.truth, replay.cost, estimate=estimate, draws=draws, rng=rng,
        ),
    }  # fmt: skip


def _flat(pool: Pool, policies: Mapping[str, Policy], *, draws: int, seed: int) -> dict:
    """Every (policy, row, measure) value and every paired difference, averaged over seeds."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for s in range(pool.seeds):
        replay = Replay(pool, s)
        for name, policy in policies.items():
            rows = _scores(replay, policy, draws=draws, seed=seed + s)
            for row, values in rows.items():
                for measure, value in values.items():
                    out.setdefault((name, row, measure), []).append(value)
            for control in CONTROLS:
                for measure in measures.MEASURES:
                    sign = 1.0 if measures.HIGHER_IS_BETTER[measure] else -1.0
                    gain = sign * (rows["policy"][measure] - rows[control][measure])
                    out.setdefault((name, f"gain over {control}", measure), []).append(gain)
    return {key: float(np.nanmean(values)) for key, values in out.items()}


def judge(
    pool: Pool,
    policies: Mapping[str, Policy],
    *,
    resamples: int = RESAMPLES,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, list[measures.MeasureCheck]]]:
    """The table of every policy (with ``full training``, the reader, and the oracle added)
    and its controls, and each reader's check of every measure (see the module docstring);
    the verdicts follow the reader's check."""
    from scipy.stats import bootstrap

    policies = {READER: full_training, ORACLE: oracle, **policies}
    point = _flat(pool, policies, draws=draws, seed=seed)
    keys = list(point)

    def statistic(index: np.ndarray) -> np.ndarray:
        values = _flat(pool.take(index), policies, draws=draws, seed=seed)
        return np.array([values.get(k, math.nan) for k in keys])

    result = bootstrap(
        (np.arange(len(pool)),), statistic, vectorized=False, n_resamples=resamples,
        method="percentile", random_state=np.random.default_rng(seed),
    )  # fmt: skip
    low, high = result.confidence_interval
    cell = {k: (point[k], lo, hi) for k, lo, hi in zip(keys, low, high)}
    checks = {
        reader: [
            measures.MeasureCheck(
                measure, point[(reader, "policy", measure)], point[(reader, "permuted", measure)],
                *cell[(reader, "gain over permuted", measure)],
            )
            for measure in measures.MEASURES
        ]
        for reader in (READER, ORACLE)
    }  # fmt: skip
    rows = []
    for name in policies:
        for row in ("policy", *CONTROLS):
            out = {"policy": name, "row": name if row == "policy" else row}
            if row == "policy":
                out["trainings"] = point[(name, "policy", "trainings")]
                out["kept"] = point[(name, "policy", "kept")]
            for measure in measures.MEASURES:
                value, lo, hi = cell[(name, row, measure)]
                out.update({measure: value, f"{measure}_low": lo, f"{measure}_high": hi})
                if row != "policy":  # the policy's gain over this control, paired
                    gain, g_lo, g_hi = cell[(name, f"gain over {row}", measure)]
                    out.update({f"{measure}_gain": gain, f"{measure}_gain_low": g_lo,
                                f"{measure}_gain_high": g_hi})  # fmt: skip
            rows.append(out)
    table = pd.DataFrame(rows)
    table.insert(2, "candidates", len(pool))
    table.insert(3, "seeds", pool.seeds)
    return _with_verdicts(table, checks[READER]), checks


def verdict(gain: float, low: float, high: float, *, checked: bool, control: str) -> str:
    """How a policy fares against ``control`` from the control's regret minus the policy's
    (``gain``, its interval ``low``-``high``), and whether regret passed the check."""
    if low > 0:
        text = f"beats {control} by more than its interval"
    elif high < 0:
        text = f"loses to {control} by more than its interval"
    else:
        text = f"not distinguished from {control}"
    if low > 0 and not checked:
        text = f"not shown to beat {control}"
    return text if checked else f"{text} (regret fails the check on this pool)"


def _with_verdicts(table: pd.DataFrame, checks: Sequence[measures.MeasureCheck]) -> pd.DataFrame:
    """A ``verdict`` on each policy's row: how it fares against cheapest-k on regret."""
    checked = any(c.passes for c in checks if c.measure == "regret")
    verdicts = []
    for _, row in table.iterrows():
        if row["row"] != row["policy"]:
            verdicts.append("")
            continue
        mine = table[(table["policy"] == row["policy"]) & (table["row"] == "cheapest-k")]
        gain = mine.iloc[0]
        verdicts.append(verdict(gain["regret_gain"], gain["regret_gain_low"],
                                gain["regret_gain_high"], checked=checked,
                                control="cheapest-k"))  # fmt: skip
    return table.assign(verdict=verdicts, regret_passes_check=checked)


def checks_frame(checks: Mapping[str, Sequence[measures.MeasureCheck]], **columns):
    """The checks as a table (one row a reader and measure), with ``columns`` in front."""
    return pd.DataFrame([
        {**columns, "reader": reader, "measure": c.measure, "value": c.reader,
         "permuted": c.permuted, "worse_by": c.worse_by, "worse_by_low": c.worse_by_low,
         "worse_by_high": c.worse_by_high, "passes": c.passes}
        for reader, rows in checks.items() for c in rows
    ])  # fmt: skip


def publish(table: pd.DataFrame, checks: pd.DataFrame, out: Path, shown: Sequence[str]) -> None:
    """Write a policy benchmark's table (``OUT.csv``) and its measure checks
    (``OUT_checks.csv``), then print both for people: the ``shown`` columns, three decimals."""
    from dvbench.files import write_atomic

    write_atomic(table, out.with_suffix(".csv"))
    write_atomic(checks, out.with_name(out.name + "_checks.csv"))
    pd.set_option("display.width", 220)
    pd.set_option("display.max_colwidth", 60)
    print(table[list(shown)].to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""))
    print(checks.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def describe(pool: Pool) -> str:
    """One line naming the pool (for the benchmarks' output)."""
    ids = ", ".join(str(c) for c in pool.candidates)
    return (f"{len(pool)} candidates ({ids}) x {pool.seeds} seeds from "
            f"{' + '.join(pool.sources)}; epochs {sorted(pool.top1)}")  # fmt: skip


def config_key(config: str | Mapping) -> str:
    """A network's identity: its config without the name (JSON text or a mapping)."""
    fields = dict(json.loads(config) if isinstance(config, str) else config)
    fields.pop("name", None)
    return json.dumps(fields, sort_keys=True)
