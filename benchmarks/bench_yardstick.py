"""The yardstick experiment: the cheapest proxy-training setting at which two seeds of the same
Dual-ViT agree -- accuracy differences between candidates are signal, not seed noise.

PLAN (declared before any of it ran; the README repeats it)
-----------------------------------------------------------
Why: on the fidelity benchmark's setting (`small`, 300 training images a class, 32 px, 15
epochs, 8,000 test images) two seeds of the same network agree at r = 0.04 (ICC about 0).

Measure, per setting: 8 candidates sampled from the setting's space (seeded, the same for
every setting of a space), each trained with 3 seeds (seeds keyed to the network), with
`python cli.py calibrate` run as one-core shards (resumable: re-run the command after a kill).
Every run is evaluated on both halves of the 8,000 test images (alternate images): half A
chooses, half B confirms. Signals of a run: top-1 at the last epoch; the test loss; the mean top-1
of the last three epochs (the ladder stops at epochs E-2, E-1 and E; rung 3 is a cheap signal
for later); and the sum of training losses (TSE, Ru et al. 2021). The yardstick must read the
test set -- the axis is accuracy -- so TSE, which ranks how fast a network fits its training
images, is reported and later judged as a cheap signal, but cannot qualify a setting.

Reported per setting and signal (results/benchmarks/yardstick_signals.csv): ICC(1,1) with its
F-interval, the seed sd, the between-candidate sd, seconds per candidate (one seed, one core).
results/benchmarks/yardstick.csv: one row per setting, its best signal on half A and that
signal's ICC on half B (the figure that counts) and on the whole set.

Settings, cheapest first (predicted one-core seconds for 8 x 3 runs, from 3.6 ms per
image-epoch at 32 px measured on `small` before the speed work, 4x at 64 px, 1.4x for `cifar`'s
wider networks):

| setting | space | images/class | px | epochs | predicted |
|---|---|---|---|---|---|
| small-300-32-15 | small | 300 | 32 | 15 | measured before: 2 seeds, ICC about 0 |
| cifar-300-32-15 | cifar | 300 | 32 | 15 | 24 x 230 s = 1.5 h |
| cifar-1000-32-15 | cifar | 1000 | 32 | 15 | 24 x 760 s = 5.1 h |
| small-1000-32-15 | small | 1000 | 32 | 15 | 24 x 540 s = 3.6 h |
| cifar-300-64-15 | cifar | 300 | 64 | 15 | 24 x 910 s = 6.1 h |
| cifar-3000-32-8 | cifar | 3000 | 32 | 8 | 24 x 1210 s = 8.1 h |

Budget: at most 12 core-hours. A setting QUALIFIES when a signal's ICC on half A is at least 0.7;
the experiment stops at the first one that does (later settings cost more), and its half-B ICC
is the reported figure. `small-300-32-15` is not re-run: its 2-seed record (ICC -0.04) is the
baseline row. If none qualifies within the budget, the nearest setting and the seeds it would
take to reach 0.7 (Spearman-Brown: the reliability of a mean of k seeds) are reported.

EQUAL-COST EXTENSION (declared 2026-12-06, before any of its runs was read; issue #35)
-------------------------------------------------------------------------------------
Why: at cifar-300-32-15, log(params) explains R^2 = 0.91 of the 8 candidate means; the question is
whether a signal separates candidates *of the same cost*.

Runs: the next 6 candidates the same sampler draws (indices 8-13 of `--candidates 14`, seed 0;
indices 0-7 are the committed ones, checked identical), 3 seeds each (seeds keyed to the
network), the same setting, evaluated on both halves at EVERY epoch 1..15 (full learning curves)
with every test image's outcome kept (records.jsonl `outcomes`), folder
`calibrate/yardstick_cifar-300-32-15_curves`. Predicted: about 2.4 one-core hours (18 runs,
~290 s of training each plus 15 evaluations of 8,000 images). Regime check: candidate 4 of the
committed 8 re-run with today's code (all three seeds) must reproduce its committed top-1 exactly;
otherwise the two folders are different regimes and that is reported.

Measure, on the 14 candidates' epoch-15 runs: for top-1 and the test loss, the equal-cost ICC --
ICC(1,1) of the runs' residuals after an ordinary least-squares line of the candidate means on
log10 GFLOPs, between-candidate degrees of freedom k - 2 -- with its F-interval, the minimum over
leaving one candidate out, and the seeds n a mean needs to reach 0.7 (Spearman-Brown).

Criterion: on half A, for each signal, n_A = the fewest seeds (1, 2 or 3) whose mean reaches an
equal-cost ICC of 0.7; the signal with the smallest n_A is chosen (ties: the higher ICC). It
QUALIFIES AT EQUAL COST when the same signal's n_A-seed mean reaches 0.7 on half B. The `cifar`
space then optimises that signal with n_A seeds; if none qualifies, the space and the README say
that its front is decided by cost, and by how much (R^2 of the cost line).

    python benchmarks/bench_yardstick.py --extend              # the runs (resumable), then:
    python benchmarks/bench_yardstick.py --equal-cost          # re-reads both folders

    python benchmarks/bench_yardstick.py                       # the plan, stopping early
    python benchmarks/bench_yardstick.py --settings cifar-300-32-15 --device cuda
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10-large"
OUT = REPO / "results" / "benchmarks"
QUALIFIES = 0.7
CANDIDATES, SEEDS = 8, 3


@dataclass(frozen=True)
class Setting:
    name: str
    space: str
    per_class: int
    resolution: int
    epochs: int
    predicted_s: float  # one-core seconds for 8 x 3 runs (see the plan)

    @property
    def ladder(self) -> str:
        rungs = sorted({3, self.epochs - 2, self.epochs - 1, self.epochs} - {0})
        return ",".join(str(e) for e in rungs if e > 0)


SETTINGS = (
    Setting("cifar-300-32-15", "cifar", 300, 32, 15, 24 * 230),
    Setting("cifar-1000-32-15", "cifar", 1000, 32, 15, 24 * 760),
    Setting("small-1000-32-15", "small", 1000, 32, 15, 24 * 540),
    Setting("cifar-300-64-15", "cifar", 300, 64, 15, 24 * 910),
    Setting("cifar-3000-32-8", "cifar", 3000, 32, 8, 24 * 1210),
)
BASELINE = OUT / "calibrate" / "small_cifar10-large"  # the fidelity benchmark (2 seeds)


def folder(setting: Setting) -> Path:
    return OUT / "calibrate" / f"yardstick_{setting.name}"


def calibrate_command(setting: Setting, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, str(REPO / "cli.py"), "calibrate", "--space", setting.space,
        "--data", str(args.data), "--res", str(setting.resolution),
        "--train-samples", str(setting.per_class), "--candidates", str(CANDIDATES),
        "--repeats", str(CANDIDATES), "--seeds", str(SEEDS), "--ladder", setting.ladder,
        "--schedules", "", "--device", args.device, "--threads", "1",
        "--results-dir", str(OUT), "--name", folder(setting).name, "--quiet",
    ]  # fmt: skip


def measure(setting: Setting, args: argparse.Namespace) -> float:
    """Run the setting's shards side by side (one core each), then the summary; seconds."""
    start = time.monotonic()
    command = calibrate_command(setting, args)
    cores = sorted(os.sched_getaffinity(0))
    shards = []
    for index in range(args.workers):
        pin = ["taskset", "-c", str(cores[index % len(cores)])] if args.device == "cpu" else []
        shards.append(subprocess.Popen([*pin, *command, "--shard", f"{index}/{args.workers}"]))
    if any(shard.wait() != 0 for shard in shards):
        raise SystemExit(f"bench_yardstick: a shard of {setting.name} failed")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def signal_rows(name: str, setting: Setting | None, reliability: pd.DataFrame) -> list[dict]:
    rows = []
    for row in reliability.to_dict("records"):
        rows.append({
            "setting": name,
            "space": setting.space if setting else "small",
            "train_per_class": setting.per_class if setting else 300,
            "resolution": setting.resolution if setting else 32,
            "epochs": setting.epochs if setting else 15,
            "signal": row["measurement"],
            "seeds": row["seeds"],
            "candidates": row["candidates"],
            "icc": row["icc"], "icc_low": row["icc_low"], "icc_high": row["icc_high"],
            "seed_sd": row["seed_sd"], "between_sd": row["between_sd"],
            "seconds_per_candidate": row["seconds_per_candidate"],
        })  # fmt: skip
    return rows


def baseline_rows() -> list[dict]:
    """The fidelity benchmark's record, its two seeds per repeated candidate."""
    from dvbench.calibrate import CalibrationPlan, read_records, reliability_table
    from dvbench.calibrate._plan import record_key

    records = read_records(BASELINE)
    plan = CalibrationPlan(**{**records[0]["plan"], "seeds": 2})
    units = {record_key(r): r for r in records[1:]}
    return signal_rows("small-300-32-15", None, reliability_table(units, plan))


def _halves(signal: str) -> tuple[str, str]:
    """A half-A signal's half-B twin and its whole-test-set twin."""
    whole = signal.replace(" (half A)", "")
    return f"{whole} (half B)", whole


def setting_row(name: str, signals: pd.DataFrame) -> dict:
    """The setting's most reliable test-set signal on half A, and its confirmation: the same
    signal's ICC on half B (and on the whole test set). A setting measured without halves (the
    baseline) is judged on the whole set."""
    mine = signals[signals["setting"] == name].set_index("signal")
    choices = [s for s in mine.index if s.endswith("(half A)")]
    if not choices:
        choices = [s for s in mine.index if "TSE" not in s and "half" not in s]

    def reliability(signal: str) -> float:
        value = mine.loc[signal, "icc"]
        return value if pd.notna(value) else -9.0

    best = max(choices, key=reliability)
    confirm, whole = _halves(best) if best.endswith("(half A)") else (best, best)
    row = mine.loc[best].to_dict()
    out = {
        "setting": name, "space": row["space"], "train_per_class": row["train_per_class"],
        "resolution": row["resolution"], "epochs": row["epochs"], "signal": best,
        "seeds": row["seeds"], "icc_selection": row["icc"],
        "icc": mine.loc[confirm, "icc"] if confirm in mine.index else math.nan,
        "icc_low": mine.loc[confirm, "icc_low"] if confirm in mine.index else math.nan,
        "icc_high": mine.loc[confirm, "icc_high"] if confirm in mine.index else math.nan,
        "icc_whole_test_set": mine.loc[whole, "icc"] if whole in mine.index else math.nan,
        "seed_sd": row["seed_sd"], "between_sd": row["between_sd"],
        "seconds_per_candidate": row["seconds_per_candidate"],
        "qualifies": bool(row["icc"] >= QUALIFIES),
    }  # fmt: skip
    single = out["icc"]
    if math.isfinite(single) and 0 < single < QUALIFIES:
        out["seeds_to_reach_0.7"] = QUALIFIES * (1 - single) / (single * (1 - QUALIFIES))
    return out


# ------------------------------------------------------------------------- equal cost (#35)
CURVES = OUT / "calibrate" / "yardstick_cifar-300-32-15_curves"
EQUAL_COST_SETTING = "cifar-300-32-15"
#: (label, record field, sign): the signals judged at equal cost, larger is better
EQUAL_COST_SIGNALS = (
    ("top1", "top1", 1.0), ("top1 (half A)", "top1_a", 1.0), ("top1 (half B)", "top1_b", 1.0),
    ("-test loss", "test_loss", -1.0), ("-test loss (half A)", "loss_a", -1.0),
    ("-test loss (half B)", "loss_b", -1.0),
)  # fmt: skip


def pooled_records(folders: list[Path], epochs: float = 15.0) -> pd.DataFrame:
    """One row per (candidate, seed) at ``epochs`` from every folder (candidate indices are the
    shared sampler's, so folders of the same plan extend each other), with the candidate's
    GFLOPs and the folder it came from."""
    from dvbench.calibrate import read_records

    rows, gflops = [], {}
    for where in folders:
        if not (where / "records.jsonl").is_file():
            continue
        for record in read_records(where)[1:]:
            if record["unit"] == "proxies":
                gflops[record["candidate"]] = record["values"]["gflops"]
            elif record["unit"] == "rung" and record["epochs"] == epochs:
                row = {"candidate": record["candidate"], "seed": record["seed"],
                       "folder": where.name, "resumed": record.get("tse") is None}  # fmt: skip
                row.update({field: record.get(field) for _, field, _ in EQUAL_COST_SIGNALS})
                rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["gflops"] = frame["candidate"].map(gflops)
    return frame.sort_values(["candidate", "seed"]).reset_index(drop=True)


def _table(frame: pd.DataFrame, field: str, sign: float) -> tuple[list, list, list]:
    """candidates x seeds of the signal, each candidate's log10 GFLOPs and its folder's index
    (the folders were measured with different versions of the code)."""
    rows, cost, version = [], [], []
    folders = list(dict.fromkeys(frame["folder"]))
    for _, runs in frame.groupby("candidate"):
        rows.append((sign * runs[field].astype(float)).tolist())
        cost.append(math.log10(float(runs["gflops"].iloc[0])))
        version.append(folders.index(runs["folder"].iloc[0]))
    return rows, cost, version


def equal_cost_rows(frame: pd.DataFrame) -> list[dict]:
    """Per signal: the ICC, the ICC at equal cost (log10 GFLOPs) with its interval, the smallest
    over leaving one candidate out, the seeds a mean needs for 0.7 at equal cost, and the R^2 of
    the cost line on the candidate means."""
    from dvbench.stats.reliability import icc, leave_one_out_icc, mean_reliability, seeds_for

    out = []
    for label, field, sign in EQUAL_COST_SIGNALS:
        rows, cost, version = _table(frame, field, sign)
        plain, equal = icc(rows), icc(rows, covariate=cost)  # plain: over the pooled folders
        # a shift between the folders' code versions is absorbed by a term of its own
        both = np.column_stack([cost, version]) if len(set(version)) > 1 else None
        versioned = icc(rows, covariate=both) if both is not None else equal
        means = np.array([np.mean(r) for r in rows])
        r2 = float(np.corrcoef(cost, means)[0, 1] ** 2)
        out.append({
            "setting": EQUAL_COST_SETTING, "signal": label, "candidates": equal.candidates,
            "seeds": equal.seeds, "icc_pooled": plain.icc, "icc_pooled_low": plain.icc_low,
            "icc_pooled_high": plain.icc_high, "icc_equal_cost": equal.icc,
            "icc_equal_cost_low": equal.icc_low, "icc_equal_cost_high": equal.icc_high,
            "icc_equal_cost_loo_min": leave_one_out_icc(rows, covariate=cost),
            "icc_equal_cost_and_version": versioned.icc,
            "icc_equal_cost_and_version_low": versioned.icc_low,
            "icc_equal_cost_and_version_high": versioned.icc_high,
            "icc_equal_cost_2_seeds": mean_reliability(equal.icc, 2),
            "icc_equal_cost_3_seeds": mean_reliability(equal.icc, 3),
            "seeds_for_0.7_equal_cost": seeds_for(equal.icc, QUALIFIES),
            "seed_sd": equal.seed_sd, "between_sd_equal_cost": equal.between_sd,
            "cost_r2_of_means": r2,
        })  # fmt: skip
    return out


def equal_cost_verdict(rows: list[dict]) -> dict:
    """The declared criterion (module docstring): on half A the signal whose mean reaches 0.7
    at equal cost with the fewest seeds (1-3; ties: the higher ICC); it qualifies when the same
    mean reaches 0.7 on half B."""
    by = {r["signal"]: r for r in rows}
    choices = []
    for whole in ("top1", "-test loss"):
        a = by[f"{whole} (half A)"]
        needed = next((n for n in (1, 2, 3) if a[f"icc_equal_cost_{n}_seeds" if n > 1
                       else "icc_equal_cost"] >= QUALIFIES), None)  # fmt: skip
        choices.append((needed if needed is not None else 99, -a["icc_equal_cost"], whole))
    needed, _, chosen = min(choices)
    b = by[f"{chosen} (half B)"]
    seeds = needed if needed != 99 else 3
    confirm = b["icc_equal_cost"] if seeds == 1 else b[f"icc_equal_cost_{seeds}_seeds"]
    return {
        "setting": EQUAL_COST_SETTING, "signal": chosen,
        "seeds_needed_half_a": needed if needed != 99 else None,
        "icc_equal_cost_half_a": by[f"{chosen} (half A)"]["icc_equal_cost"],
        "icc_equal_cost_half_b": b["icc_equal_cost"],
        f"icc_equal_cost_half_b_{seeds}_seeds": confirm,
        "qualifies_equal_cost": bool(needed != 99 and confirm >= QUALIFIES),
    }  # fmt: skip


#: the extension's candidates, split in two one-core shards of about equal GFLOPs
EXTENSION_SHARDS = ("8,11,12", "9,10,13")
EXTENSION_SECOND_PASS = ("8,12,13", "9,10,11")  # the third seeds, once every candidate has two


def extension_command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, str(REPO / "cli.py"), "calibrate", "--space", "cifar",
        "--data", str(args.data), "--res", "32", "--train-samples", "300",
        "--candidates", "14", "--repeats", "14", "--seeds", "3",
        "--ladder", ",".join(str(e) for e in range(1, 16)), "--schedules", "",
        "--device", args.device, "--threads", "1", "--results-dir", str(OUT),
        "--name", CURVES.name, "--quiet",
    ]  # fmt: skip


def extend(args: argparse.Namespace) -> int:
    """The equal-cost extension's runs (plan above): two one-core processes, every candidate's
    first two seeds, then the third seeds. Resumable: re-run after a kill."""
    cores = sorted(os.sched_getaffinity(0))
    command = extension_command(args)
    for shards, seeds in ((EXTENSION_SHARDS, "0,1"), (EXTENSION_SECOND_PASS, "2")):
        running = []
        for index, only in enumerate(shards):
            pin = ["taskset", "-c", str(cores[index % len(cores)])] if args.device == "cpu" else []
            running.append(subprocess.Popen(
                [*pin, *command, "--only", only, "--only-seeds", seeds]
            ))  # fmt: skip
        if any(p.wait() != 0 for p in running):
            raise SystemExit("bench_yardstick: an extension shard failed")
    return 0


REGIME_CANDIDATE = 4  # the cheapest of the committed 8: its 3 seeds re-run in minutes


def regime_rows(reruns: dict[str, Path]) -> pd.DataFrame:
    """Candidate 4's committed records beside re-runs of it (same plan, folders made with
    ``calibrate ... --only 4``): does a run reproduce, and under which code?"""
    from dvbench.calibrate import read_records

    def runs(where: Path) -> dict[tuple, dict]:
        return {(r["seed"], r["epochs"]): r for r in read_records(where)[1:]
                if r["unit"] == "rung" and r["candidate"] == REGIME_CANDIDATE}  # fmt: skip

    committed = runs(folder(SETTINGS[0]))
    rows = []
    for label, where in {"committed": folder(SETTINGS[0]), **reruns}.items():
        for (seed, epochs), record in sorted(runs(where).items()):
            same = committed.get((seed, epochs), {})
            rows.append({"records": label, "candidate": REGIME_CANDIDATE, "seed": seed,
                         "epochs": epochs, "top1": record["top1"],
                         "test_loss": record["test_loss"],
                         "top1_equals_committed": record["top1"] == same.get("top1")})  # fmt: skip
    return pd.DataFrame(rows)


def equal_cost(folders: list[Path]) -> int:
    """Re-read the yardstick folders and write the equal-cost columns (see the plan)."""
    from dvbench.files import write_atomic

    frame = pooled_records(folders)
    if frame.empty:
        print("bench_yardstick: no yardstick records to judge", file=sys.stderr)
        return 2
    rows = equal_cost_rows(frame)
    verdict = equal_cost_verdict(rows)
    table = pd.DataFrame(rows)
    signals = pd.read_csv(OUT / "yardstick_signals.csv")
    columns = [c for c in table.columns if c.startswith(("icc_equal_cost", "seeds_for",
                                                          "between_sd_equal", "cost_r2",
                                                          "icc_pooled"))]
    keyed = table.set_index("signal")[columns + ["candidates"]].add_prefix("ec_")
    signals = signals.drop(columns=[c for c in signals.columns if c.startswith(("ec_",
                           "icc_equal", "seeds_for", "between_sd_equal", "cost_r2",
                           "icc_pooled", "candidates_equal_cost"))])
    merged = signals.merge(keyed, left_on="signal", right_index=True, how="left")
    merged.loc[merged["setting"] != EQUAL_COST_SETTING, keyed.columns] = np.nan
    merged = merged.rename(columns={f"ec_{c}": c for c in columns})
    merged = merged.rename(columns={"ec_candidates": "candidates_equal_cost"})
    write_atomic(merged, OUT / "yardstick_signals.csv")
    setting = pd.read_csv(OUT / "yardstick.csv")
    for key, value in verdict.items():
        if key != "setting":
            setting.loc[setting["setting"] == EQUAL_COST_SETTING, key] = value
    chosen = table.set_index("signal").loc[verdict["signal"] + " (half B)"]
    for c in ("icc_equal_cost", "icc_equal_cost_low", "icc_equal_cost_high"):
        setting.loc[setting["setting"] == EQUAL_COST_SETTING, c] = chosen[c]
    write_atomic(setting, OUT / "yardstick.csv")
    write_atomic(frame.drop(columns=[]), OUT / "yardstick_equal_cost_runs.csv")
    pd.set_option("display.width", 220)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(verdict)
    return 0


def main() -> int:
    from dvbench.files import write_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", help="comma-separated setting names (default: the plan)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--budget-hours", type=float, default=12.0, help="core-hours")
    parser.add_argument(
        "--all", action="store_true", help="do not stop at the first that qualifies"
    )
    parser.add_argument("--equal-cost", action="store_true",
                        help="judge cifar-300-32-15 at equal cost from its committed records "
                        "(both folders; see the plan) and add the columns")  # fmt: skip
    parser.add_argument("--extend", action="store_true",
                        help="run the equal-cost extension's training runs (resumable)")
    args = parser.parse_args()
    if args.extend:
        return extend(args)
    if args.equal_cost:
        return equal_cost([folder(SETTINGS[0]), CURVES])
    if not args.data.is_dir():
        print(f"bench_yardstick: {args.data} not found (the shared CIFAR-10)", file=sys.stderr)
        return 2
    chosen = SETTINGS
    if args.settings:
        names = set(args.settings.split(","))
        chosen = tuple(s for s in SETTINGS if s.name in names)
        if len(chosen) != len(names):
            known = ", ".join(s.name for s in SETTINGS)
            print(f"bench_yardstick: unknown setting in {args.settings!r} ({known})", sys.stderr)
            return 2
    signals = baseline_rows() if BASELINE.is_dir() else []
    spent = 0.0
    for setting in chosen:
        if not args.all and any(setting_row(r, pd.DataFrame(signals))["qualifies"]
                                for r in {s["setting"] for s in signals}):  # fmt: skip
            print(f"{setting.name}: skipped, a cheaper setting qualifies")
            continue
        if spent + setting.predicted_s / 3600 > args.budget_hours and not args.all:
            print(f"{setting.name}: skipped, over the {args.budget_hours:g} core-hour budget")
            continue
        wall = measure(setting, args)
        spent += wall * args.workers / 3600
        reliability = pd.read_csv(folder(setting) / "reliability.csv")
        signals += signal_rows(setting.name, setting, reliability)
        print(f"{setting.name}: measured in {wall / 60:.0f} min ({spent:.1f} core-hours so far)")
    table = pd.DataFrame(signals)
    write_atomic(table, OUT / "yardstick_signals.csv")
    rows = pd.DataFrame([setting_row(name, table) for name in dict.fromkeys(table["setting"])])
    write_atomic(rows, OUT / "yardstick.csv")
    pd.set_option("display.width", 220)
    print(rows.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
