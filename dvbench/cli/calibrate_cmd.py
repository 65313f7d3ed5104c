"""``dvbench calibrate``: how well does the short proxy schedule rank candidates?"""

from __future__ import annotations

import argparse

from dvbench.cli.argtypes import add_results_dir_argument, results_dir

EPILOG = """examples:
  python cli.py calibrate --space small --data digits --candidates 8 --short 1 --long 5
  python cli.py calibrate --space small --data ../shared/data/cifar10-mini --candidates 8 \\
      --short 1 --long 6
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="rank correlation between short and long proxy schedules",
        description="Sample K candidates from a search space, train each with a short and a "
        "long schedule, and report Kendall's tau and Spearman's rho between the two rankings.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--space", default="small", help="space name or YAML path")
    p.add_argument(
        "--data", help="digits, cifar10, cifar100 or an ImageFolder folder (default: the space's)"
    )
    p.add_argument("--data-dir", help="where cifar10/cifar100 live")
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--short", type=float, default=1.0, help="epochs of the short schedule")
    p.add_argument("--long", type=float, default=5.0, help="epochs of the long schedule")
    p.add_argument("--res", type=int, help="proxy resolution (default: the space's)")
    p.add_argument("--train-samples", type=int, help="cap on training images per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    add_results_dir_argument(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dvbench.search import load_space
    from dvbench.search.calibrate import calibrate, save_calibration

    console = Console(stderr=True)
    result = calibrate(
        load_space(args.space),
        data=args.data,
        candidates=args.candidates,
        short_epochs=args.short,
        long_epochs=args.long,
        seed=args.seed,
        resolution=args.res,
        train_samples=args.train_samples,
        data_dir=args.data_dir,
        device=args.device,
        log=None if args.quiet else console.log,
    )
    files = save_calibration(result, results_dir(args) / "calibrate")
    out = Console()
    table = Table(
        title=f"proxy fidelity: {result.space} on {result.data}, "
        f"{result.short_epochs:g} vs {result.long_epochs:g} epochs"
    )
    for column in ("candidate", "params_m", "top1_short", "top1_long", "rank_short", "rank_long"):
        table.add_column(column, justify="right")
    for _, row in result.table.iterrows():
        table.add_row(
            str(row["candidate"]),
            f"{row['params_m']:.2f}",
            f"{row['top1_short']:.1f}",
            f"{row['top1_long']:.1f}",
            f"{row['rank_short']:g}",
            f"{row['rank_long']:g}",
        )
    out.print(table)
    out.print(
        f"Kendall's tau {result.kendall_tau:.3f} (p={result.kendall_p:.3g}), "
        f"Spearman's rho {result.spearman_rho:.3f} (p={result.spearman_p:.3g})"
    )
    for path in files.values():
        out.print(f"wrote {path}")
    return 0
