"""``dvbench profile``: parameters, FLOPs, latency, throughput and memory of models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dvbench.cli.argtypes import add_profiling_arguments, profile_settings
from dvbench.errors import UsageError

EPILOG = """\
examples:
  dvbench profile dualvit_s dualvit_b swin_t pvt_v2_b2 --res 224
  dvbench profile dualvit_s --baselines --no-latency --out results/cost.csv
  dvbench profile dualvit_b --gpu --batch-size 1,64,256 --amp bf16 --channels-last
  dvbench profile my_config.yaml --train --batch-size 32 --memory --threads 2
  dvbench profile dualvit_s --breakdown --no-latency

GFLOPs are fvcore's count (one multiply-accumulate = one FLOP) for one image; latency is
per batch (median of timed runs, p10/p90 beside it); img/s = batch size / median latency.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "profile",
        help="count FLOPs/params and time models",
        description="Count parameters and FLOPs, and measure latency, throughput and peak "
        "memory of models named as dvbench names, aliases, timm names or config files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help="model names or config files")
    parser.add_argument(
        "--baselines", action="store_true", help="add Swin (swin_t/s/b) and PVTv2 (b0..b5)"
    )
    add_profiling_arguments(parser, batch_help="batch sizes, e.g. 1,8,64")
    parser.add_argument("--breakdown", action="store_true", help="FLOPs/params per module")
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where study:NAME:TRIAL references are looked up (default: $DVBENCH_RESULTS_DIR, "
        "else results; a reference's own @DIR wins)",
    )
    parser.add_argument(
        "--out",
        "--results-file",  # timm's benchmark.py name
        dest="out",
        metavar="FILE",
        help="write the table: .csv, .json or .parquet",
    )
    parser.set_defaults(func=run)
    return parser


def _models(args: argparse.Namespace) -> list[str]:
    from dvbench.models.registry import PVT_FAMILY, SWIN_FAMILY

    models = list(args.models)
    if args.baselines:
        models += [name for name in SWIN_FAMILY + PVT_FAMILY if name not in models]
    if not models:
        raise UsageError("name at least one model, or use --baselines")
    return models


def _plain(console):
    """Progress as plain lines for a log file: the timed steps only (counting takes about a
    second a model, and a bad input then stays one line on stderr)."""

    def say(message: str) -> None:
        if not message.endswith("counting FLOPs"):
            console.print(f"profiling {message}", highlight=False, markup=False)

    return say


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dvbench.profile import profile_models, write_results
    from dvbench.profile.display import breakdown_table, results_table, uncounted_warnings

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    errors = Console(stderr=True, log_path=False)
    from dvbench.models.registry import resolve_spec

    models, settings = _models(args), profile_settings(args)
    if args.results_dir is not None:  # study:NAME:TRIAL -> study:NAME:TRIAL@DIR
        models = [
            f"{m}@{args.results_dir}" if m.startswith("study:") and "@" not in m else m
            for m in models
        ]
    for model in models:  # a bad name is one line before any progress line
        if isinstance(model, str):
            resolve_spec(model)
    with errors.status("profiling") as status:
        # piped or redirected, the spinner shows nothing: a plain line per step instead
        progress = status.update if errors.is_terminal else _plain(errors)
        results = profile_models(models, settings, progress=progress)
    console.print(results_table(results))
    if args.breakdown:
        for result in {r.model: r for r in results}.values():
            console.print(breakdown_table(result))
    for line in uncounted_warnings(results):
        sys.stderr.write(f"dvbench profile: warning: {line}\n")
    if args.out:
        path = write_results(results, args.out)
        sys.stderr.write(f"dvbench profile: wrote {path}\n")
    return 0
