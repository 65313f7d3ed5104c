"""``dvbench compare``: the paper's comparison table for any models, measured alike."""

from __future__ import annotations

import argparse
from pathlib import Path

from dvbench.cli.argtypes import positive_float, positive_int

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
    parser.add_argument(
        "--res",
        type=positive_int,
        default=224,
        help="resolution for GFLOPs, latency and memory (default 224)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=1,
        help="batch size for latency and throughput (default 1)",
    )
    parser.add_argument("--no-latency", action="store_true", help="count only; no timing")
    parser.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure peak memory (default: on for CUDA, off on the CPU)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--gpu", action="store_true", help="run on CUDA (same as --device cuda)")
    where.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    train = parser.add_argument_group("proxy accuracy (only with --data)")
    train.add_argument(
        "--data",
        metavar="SOURCE",
        help="digits, cifar10, cifar100 or an image folder: train each model",
    )
    train.add_argument(
        "--epochs", type=positive_float, default=3.0, help="training epochs per model (default 3)"
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

    from dvbench.report import compare_models, comparison_table, write_comparison
    from dvbench.report.compare import check_comparison_path
    from dvbench.search import DEFAULT_RESULTS_DIR

    out = check_comparison_path(args.out or DEFAULT_RESULTS_DIR / "compare" / "compare.csv")
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    with Console(stderr=True).status("comparing") as status:
        comparison = compare_models(
            args.models,
            resolution=args.res,
            batch_size=args.batch_size,
            device="cuda" if args.gpu else args.device,
            latency=not args.no_latency,
            memory=args.memory,
            data=args.data,
            epochs=args.epochs,
            train_res=args.train_res,
            seed=args.seed,
            progress=status.update,
        )
    frame = comparison.frame()
    title = f"GFLOPs and params at {args.res} px"
    if not args.no_latency:
        title += f"; latency, img/s at batch {args.batch_size} on {frame['device'].iloc[0]}"
    if comparison.data:
        title += f"; top-1 after {args.epochs:g} epochs on {comparison.data}"
    console.print(comparison_table(frame, title=title))
    table, plot = write_comparison(comparison, out, plot=not args.no_plot)
    for path in (table, plot):
        if path is not None:
            sys.stderr.write(f"dvbench compare: wrote {path}\n")
    return 0
