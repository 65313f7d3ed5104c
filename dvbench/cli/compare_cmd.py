"""``dvbench compare``: the paper's comparison table for any models, measured alike."""

from __future__ import annotations

import argparse
from pathlib import Path

from dvbench.cli.argtypes import (
    add_profiling_arguments,
    epochs_float,
    positive_int,
    profile_settings,
    results_dir,
)

EPILOG = """\
examples:
  python cli.py compare dualvit_s swin_t pvt_v2_b2               # results/compare/compare.csv
  python cli.py compare dualvit_s study:small:12 pvt_v2_b0 --no-latency --out cost.json
  python cli.py compare dualvit_s swin_t --gpu --batch-size 64
  python cli.py compare study:small:3 pvt_v2_b0 --data digits --epochs 3 --train-res 32

MODEL is a dvbench name (dualvit_s/b/l), an alias (swin_t, pvt_v2_b2), a timm name, a config
file (.yaml/.json, e.g. from `dvbench export`) or study:NAME:TRIAL. Every model is profiled
the same way: GFLOPs (fvcore, one multiply-add = one FLOP) and parameters at --res, latency
and img/s at --batch-size (median of timed runs), peak memory when measured. With --data,
each is also trained on the same short schedule (--epochs at --train-res px) for top-1.
The table and a plot (accuracy, else throughput, else parameters vs GFLOPs) are saved:
--out FILE (.csv, .json or .parquet) and FILE with .png.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare models alike: cost, speed, memory, proxy accuracy",
        description="Profile models with one method (and optionally proxy-train them) and "
        "print and save a comparison table and plot, as in the paper's tables.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="models to compare")
    add_profiling_arguments(
        parser, batch_help="batch size for latency and throughput (default 1)", timing=False
    )
    train = parser.add_argument_group("proxy accuracy (only with --data)")
    train.add_argument(
        "--data",
        metavar="SOURCE",
        help="digits, cifar10, cifar100 or an image folder: train each model",
    )
    train.add_argument(
        "--epochs", type=epochs_float, default=3.0, help="training epochs per model (default 3)"
    )
    train.add_argument(
        "--train-res", type=positive_int, default=32, help="training resolution in px (default 32)"
    )
    train.add_argument("--seed", type=int, default=0, help="data split and initialisation seed")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="table file (.csv, .json, .parquet); the plot goes beside it as "
        ".png (default: results/compare/compare.csv)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write the table only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from dvbench.errors import UsageError
    from dvbench.evaluate import Evaluator, compare_models
    from dvbench.report import comparison_table, write_comparison
    from dvbench.report.compare import check_comparison_path
    from dvbench.train import DataSpec, TrainSettings

    out = check_comparison_path(args.out or results_dir(args) / "compare" / "compare.csv")
    settings = profile_settings(args)
    if len(settings.batch_sizes) != 1:
        raise UsageError("--batch-size: compare takes one batch size")
    data = train = None
    if args.data:
        try:
            data = DataSpec(source=args.data, resolution=args.train_res)
            train = TrainSettings(epochs=args.epochs)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    device = "cuda" if args.gpu else args.device
    evaluator = Evaluator(profile=settings, data=data, train=train, device=device, seed=args.seed)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    with Console(stderr=True).status("comparing") as status:
        comparison = compare_models(args.models, evaluator, progress=status.update)
    frame = comparison.frame()
    title = f"GFLOPs and params at {args.res} px"
    if not args.no_latency:
        title += f"; latency, img/s at batch {settings.batch_sizes[0]} on {frame['device'].iloc[0]}"
    if comparison.data:
        title += f"; top-1 after {args.epochs:g} epochs on {comparison.data}"
    console.print(comparison_table(frame, title=title))
    table, plot = write_comparison(frame, out, plot=not args.no_plot)
    for path in (table, plot):
        if path is not None:
            sys.stderr.write(f"dvbench compare: wrote {path}\n")
    return 0
