"""``dvbench search``: run or continue an Optuna study over a search space."""

from __future__ import annotations

import argparse

from dvbench.cli.argtypes import (
    add_results_dir_argument,
    positive_float,
    positive_int,
    results_dir,
)

EPILOG = """examples:
  python cli.py search --space small                       # 20 trials, NSGA-II, results/small/
  python cli.py search --space small --n-trials 40          # continue the same study to 40
  python cli.py search --space paper --seed-official --sampler random --study-name paper_rs
  python cli.py search --space small --baselines pvt_v2_b0,swin_t
  python cli.py search --space small --workers 2             # 2 local processes, one study
  python cli.py search --space medium --study-name m1 \\
      --storage postgresql+psycopg://me@db.lab/dvbench      # one worker; start it on any machine
  python cli.py search --space my.yaml --allow-space-change # continue after editing my.yaml

a study resumed with a space that changes what a trial means (knobs, fixed settings,
objectives, constraints, train or profile settings) is refused unless --allow-space-change;
comments, description and n_trials may change freely. Put a database password in PGPASSWORD
or ~/.pgpass, not in the URL (a password in the URL is shown and stored as ***).
"""


def _space_lines() -> str:
    """The shipped spaces with their one-line descriptions (read as YAML: no torch)."""
    from dvbench.runtime import spaces_dir
    from dvbench.safe_yaml import load_file

    folder = spaces_dir()
    lines = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            description = str(load_file(path).get("description", ""))
        except Exception:  # noqa: BLE001 - a broken file still gets its name listed
            description = "(unreadable)"
        lines.append(f"  {path.stem:<8} {description}")
    return f"\nbuilt-in spaces ({folder}):\n" + "\n".join(lines) + "\n"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="multi-objective architecture search (Optuna)",
        description="Run, or continue, an Optuna multi-objective study over a Dual-ViT "
        "search space. Tables (trials/pareto, CSV + Parquet) are rewritten after every trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--space",
        default="small",
        help="a built-in space (listed below, files in search_spaces/) or a YAML path",
    )
    # the shipped spaces are read when `search` is parsed or its help printed
    p.defer(lambda parser: setattr(parser, "epilog", EPILOG + _space_lines()))
    p.add_argument("--study-name", help="a plain folder name (default: the space's name)")
    add_results_dir_argument(p)
    p.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage shared by the study's workers: journal:PATH (one machine), "
        "postgresql+psycopg://USER@HOST/DB (many), sqlite:///PATH (one worker); "
        "default: the study folder's journal.log",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="K",
        help="run K worker processes here on the same study (default 1)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch threads per worker (default: all cores, or cores // K with --workers)",
    )
    p.add_argument(
        "--sampler", choices=("nsga2", "tpe", "random", "gp"), help="default: the space's (nsga2)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the sampler's seed (worker i uses seed + i; default 0)",
    )
    p.add_argument(
        "--n-trials",
        type=positive_int,
        help="total COMPLETE trials the study should hold (default: the space's)",
    )
    p.add_argument(
        "--timeout", type=positive_float, help="stop starting trials after this many seconds"
    )
    p.add_argument("--objectives", help="e.g. top1,gflops or top1:max,latency_ms_median:min")
    p.add_argument(
        "--device-profile",
        metavar="FILE",
        help="predict latency_pred_ms from this device profile (in place of the space's "
        "device:; make one with dvbench profile --calibrate-device)",
    )
    p.add_argument(
        "--seed-official",
        action="store_true",
        help="enqueue the space's official-model seed trials (once per study)",
    )
    p.add_argument("--baselines", help="comma-separated baselines to train and profile alike")
    p.add_argument("--device", default="cpu", help="training device (cpu, cuda, auto)")
    p.add_argument(
        "--allow-space-change",
        action="store_true",
        help="continue a study although its space changed what a trial means; the space "
        "becomes the study's next version and the front holds that version's trials only",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--heartbeat",
        type=_heartbeat,
        default=(10, 30),
        metavar="INTERVAL,GRACE",
        help="heartbeat every INTERVAL s while a trial runs; a trial silent for GRACE s "
        "(its worker died) is failed and retried once by a live worker (default 10,30)",
    )
    p.set_defaults(func=run)


def _heartbeat(text: str) -> tuple[int, int]:
    try:
        interval, grace = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected INTERVAL,GRACE in seconds, got {text!r}"
        ) from None
    if interval <= 0 or grace <= interval:
        raise argparse.ArgumentTypeError("need 0 < INTERVAL < GRACE")
    return interval, grace


def run(args: argparse.Namespace) -> int:
    from dvbench.search import SearchOptions, command_line
    from dvbench.search.display import SearchDisplay, print_summary
    from dvbench.search.workers import run_study
    from dvbench.space import load_space, parse_objectives_option

    space = load_space(args.space, device=args.device_profile)
    if args.objectives:
        space = space.with_objectives(parse_objectives_option(args.objectives))
    baselines = tuple(b.strip() for b in (args.baselines or "").split(",") if b.strip())
    options = SearchOptions(
        space=space,
        study_name=args.study_name,
        results_dir=results_dir(args),
        storage=args.storage,
        sampler=args.sampler,
        seed=args.seed,
        n_trials=args.n_trials,
        timeout=args.timeout,
        seed_official=args.seed_official,
        baselines=baselines,
        device=args.device,
        quiet=args.quiet,
        command=command_line(),
        heartbeat_interval=args.heartbeat[0],
        grace_period=args.heartbeat[1],
        threads=args.threads,
        allow_space_change=args.allow_space_change,
    )
    if space.data is not None:  # a download that fails is one line now, not a FAIL per trial
        space.data.ensure_available()
    with SearchDisplay(options) as display:
        summary = run_study(options, args.workers, observer=display, warn=display.warn)
        display.finish(summary)
    print_summary(summary, options, quiet=args.quiet)
    return summary.exit_status
