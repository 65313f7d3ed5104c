"""``dvbench calibrate``: the fidelity benchmark -- how well does each cheap signal (a
training-free proxy, params/FLOPs, a rung of a longer run, a short schedule) rank candidates
the way the long schedule does, and how noisy is the long schedule itself?"""

from __future__ import annotations

import argparse

from dvbench.cli.argtypes import (
    add_data_arguments,
    add_results_dir_argument,
    epochs_float,
    positive_int,
    results_dir,
)

EPILOG = """examples:
  python cli.py calibrate --space small --data digits --candidates 6 --ladder 1,3 \\
      --schedules 1 --repeats 3                                    # a quick look
  python cli.py calibrate --space small --data ../shared/data/cifar10-large \\
      --train-samples 500 --candidates 20 --ladder 1,3,9,15 --schedules 1,3 --repeats 10

Each candidate is trained along the ladder (the schedule of the last rung, evaluated at
every rung) and once per short schedule; the first --repeats candidates are trained along the
ladder with --seeds seeds each (the target's reliability: ICC, expected-tau ceiling). Seeds are
keyed to each network's architecture. The test set is split in two halves (--no-holdout: not)
so a choice made on one can be confirmed on the other. Results, resumable after a kill by
re-running the same command: results/calibrate/NAME/ (records.jsonl, signals, candidates and
reliability as .csv/.parquet, summary.json, fidelity.png).
"""


def _epochs_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(epochs_float(part.strip()) for part in text.split(",") if part.strip())
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected epochs like 1,3,9,15: {exc}") from None


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N like 0/2, got {text!r}") from None
    if not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N, got {text!r}")
    return shard


def _indices(text: str) -> frozenset[int]:
    """Candidate indices like ``8-13`` or ``2,5,7`` (ranges inclusive)."""
    out: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, dash, high = part.partition("-")
            out.update(range(int(low), int(high) + 1) if dash else [int(low)])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected indices like 8-13 or 2,5, got {text!r}"
        ) from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected indices from 0, like 8-13, got {text!r}")
    return frozenset(out)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="rank fidelity of proxies, rungs and short schedules against a long schedule",
        description="Sample K candidates from a search space and measure how well every cheap "
        "signal ranks them like the longest schedule, with bootstrap intervals and the "
        "seed-to-seed noise ceiling.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--space", default="small", help="space name or YAML path")
    data = add_data_arguments(p)
    data.set_defaults(data=None, res=None)
    p.add_argument(
        "--candidates",
        type=positive_int,
        default=20,
        help="candidates sampled from the space and trained to the target (default 20)",
    )
    p.add_argument("--ladder", type=_epochs_list, default=(1.0, 3.0, 9.0, 15.0),
                   help="rung budgets in epochs, increasing; the last is the target "
                   "(default 1,3,9,15)")  # fmt: skip
    p.add_argument("--schedules", type=_epochs_list, default=(1.0, 3.0),
                   help="short schedules of their own, in epochs (default 1,3)")  # fmt: skip
    p.add_argument("--proxies", help="comma-separated proxies (default: all)")
    p.add_argument("--repeats", type=int, default=10,
                   help="candidates trained with --seeds seeds (default 10)")  # fmt: skip
    p.add_argument("--seeds", type=positive_int, default=3,
                   help="seeds of each repeated candidate (default 3)")  # fmt: skip
    p.add_argument("--no-holdout", dest="holdout", action="store_false",
                   help="evaluate on the whole test set only (no halves)")  # fmt: skip
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the candidates' sampling (default 0)"
    )
    p.add_argument("--device", default="cpu", help="training device (cpu, cuda, auto)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: all cores)")
    p.add_argument("--shard", type=_shard, metavar="I/N",
                   help="measure only candidates I, I+N, I+2N, ... (run N of these side by "
                   "side, then once without --shard to write the tables)")  # fmt: skip
    p.add_argument("--only", type=_indices, metavar="INDICES",
                   help="measure only these of the sampled candidates, e.g. 8-13 (to extend an "
                   "earlier calibration of the same plan); writes no tables")  # fmt: skip
    p.add_argument("--only-seeds", type=_indices, metavar="INDICES",
                   help="measure only these seed indices of each candidate, e.g. 0-1 (every "
                   "candidate's first two seeds before any third); writes no tables")  # fmt: skip
    p.add_argument("--name", help="folder under results/calibrate (default: SPACE_DATA)")
    add_results_dir_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from dvbench.calibrate import CalibrationPlan, calibrate, save_calibration
    from dvbench.errors import UsageError
    from dvbench.names import check_folder_name
    from dvbench.report.fidelity import draw_fidelity, get_fidelity_info
    from dvbench.space import load_space
    from dvbench.train import DataSpec, TrainSettings

    space = load_space(args.space)
    base = space.data or DataSpec()
    changes = {
        "source": args.data,
        "resolution": args.res,
        "train_samples": args.train_samples,
        "test_samples": args.test_samples,
        "data_dir": args.data_dir,
    }
    try:
        data = dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})
        train = space.train or TrainSettings()
        if args.threads:
            train = dataclasses.replace(train, num_threads=args.threads)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    plan = CalibrationPlan(
        candidates=args.candidates,
        ladder=args.ladder,
        schedules=args.schedules,
        proxies=tuple(p.strip() for p in args.proxies.split(",")) if args.proxies else None,
        repeats=min(args.repeats, args.candidates),
        seeds=args.seeds,
        seed=args.seed,
        holdout=args.holdout,
    )
    name = args.name or f"{space.name}_{Path(data.source).name}"
    where = "a calibration's tables go to --results-dir/calibrate/NAME"
    if args.name is None:  # the default is made of the space's name: that is checked too
        check_folder_name(space.name, what="space name", where=f"{where} (give --name)")
    check_folder_name(name, what="calibrate name", where=where)
    folder = results_dir(args) / "calibrate" / name
    console = Console(stderr=True, log_path=False)
    result = calibrate(
        space,
        plan,
        data=data,
        train=train,
        folder=folder,
        device=args.device,
        log=None if args.quiet else console.log,
        shard=args.shard,
        only=args.only,
        only_seeds=args.only_seeds,
    )
    if result is None:
        what = f"shard {args.shard[0]}/{args.shard[1]}" if args.shard else "the chosen runs"
        console.print(
            f"{what} measured; run the command again without --shard/--only/--only-seeds to "
            "write the tables (it measures only what is missing)"
        )
        return 0
    files = save_calibration(result, folder)
    files["fidelity.png"] = draw_fidelity(
        get_fidelity_info(result.signals, result.summary), folder / "fidelity.png"
    )
    out = Console()
    s = result.summary
    table = Table(
        title=f"rank fidelity vs {s['target_epochs']:g} epochs (seed mean): {s['space']} on "
        f"{s['data']} "
        f"({s['measured']} candidates)"
    )
    columns = ("signal", "tau", "tau 95% CI", "rho", "top 1/4", "tau - params", "s/cand.")
    for column in columns:
        table.add_column(column, justify="left" if column == "signal" else "right")
    for row in result.signals.to_dict("records"):
        diff = row.get("tau_minus_params")
        table.add_row(
            row["signal"],
            f"{row['kendall_tau']:.2f}",
            f"[{row['kendall_low']:.2f}, {row['kendall_high']:.2f}]",
            f"{row['spearman_rho']:.2f}",
            f"{row['top_quarter']:.2f}",
            ""
            if diff is None or diff != diff
            else f"{diff:+.2f} [{row['tau_minus_params_low']:+.2f}, "
            f"{row['tau_minus_params_high']:+.2f}]",
            f"{row['seconds_per_candidate']:.2f}",
        )
    out.print(table)
    out.print(
        f"target: {s['target_epochs']:g} epochs, top-1 {s['target_top1_mean']:.1f} % on average "
        f"(test-set standard error {s['test_standard_error']:.2f} points on "
        f"{s['test_images']} images); seed-to-seed tau {s['seed_to_seed_tau']:.2f} "
        f"over {s['repeats']} candidates"
    )
    if s.get("icc") is not None:
        low, high = s["icc_interval"]
        out.print(
            f"target reliability: ICC {s['icc']:.2f} [{low:.2f}, {high:.2f}] (seed sd "
            f"{s['seed_sd']:.2f}, between-candidate sd {s['between_sd']:.2f} points); a perfect "
            f"predictor's expected tau against the seed mean: "
            f"{s['expected_tau_ceiling_seed_mean']:.2f}"
        )
    for path in files.values():
        out.print(f"wrote {path}")
    return 0
