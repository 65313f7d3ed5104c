"""``dvbench report``: plots and a markdown page from a finished (or running) study."""

from __future__ import annotations

import argparse
from pathlib import Path

from dvbench.cli.argtypes import add_study_arguments

EPILOG = """\
examples:
  python cli.py report small                        # results/small/report/
  python cli.py report paper_rs --results-dir runs  # runs/paper_rs/report/
  python cli.py report /tmp/rep/small --out docs/small_report

writes report.md and PNG plots: accuracy vs GFLOPs (and vs latency when it was measured; a
cost-only study plots its objectives), the hypervolume after each trial and, with at least
10 feasible trials, Optuna's parameter importances. Failed and over-budget trials are
counted, not drawn. Nothing is trained or measured: the report reads the study's storage.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="plots and a markdown report of a study",
        description="Write plots (Pareto front with baselines, hypervolume, parameter "
        "importance) and report.md for a study made by `dvbench search`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default: the study folder's report/)",
    )
    parser.add_argument(
        "--no-importance",
        action="store_true",
        help="skip the parameter-importance chart (the slowest part)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from dvbench.report import write_report
    from dvbench.search import check_study_name, open_study

    if args.storage and args.out is None:  # the output folder is results-dir/STUDY
        check_study_name(args.study)
    study, folder = open_study(args.study, results_dir=args.results_dir, storage=args.storage)
    files = write_report(study, args.out or folder / "report", importance=not args.no_importance)
    for note in files.notes:
        sys.stderr.write(f"dvbench report: skipped {note}\n")
    print(files.markdown)
    for path in files.plots.values():
        print(path)
    return 0
