"""``dvbench proxies``: training-free proxy scores of untrained models, one row per model."""

from __future__ import annotations

import argparse
import sys

from dvbench.cli.argtypes import (
    add_data_arguments,
    add_model_arguments,
    data_spec,
    positive_int,
)
from dvbench.errors import UsageError

EPILOG = """\
examples:
  # every proxy for two tiny Dual-ViT configs and a baseline, on digits at 32 px
  dvbench proxies tiny_a.yaml tiny_b.yaml pvt_v2_b0 --data digits --res 32
  # three proxies of a quarter-width dualvit_s, written to a CSV table
  dvbench proxies dualvit_s --width-mult 0.25 --proxies synflow,naswot,zico --out proxies.csv
  # a narrow Swin on an ImageFolder folder, 2 batches of 32 images from seed 3
  dvbench proxies swin_t --set embed_dim=48 --data ../shared/data/cifar10-mini --batch-size 32 \\
      --num-batches 2 --seed 3

proxies (--proxies, comma-separated; default: all):
{proxies}

Every model is initialised from --seed and scored on the same seeded batches of training
images. A proxy whose score is NaN or infinite, or that cannot score a model, shows as
"failed" and its reason is printed on stderr; the run still succeeds.
"""


def _proxy_lines() -> str:
    from dvbench.proxies import PROXIES

    width = max(len(name) for name in PROXIES)
    return "\n".join(f"  {name:<{width}}  {proxy.citation}" for name, proxy in PROXIES.items())


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "proxies",
        help="score untrained models with training-free (zero-cost) proxies",
        description="Score untrained models (dvbench names, timm names or config files) with\n"
        "training-free proxies (SynFlow, NASWOT, grad-norm, SNIP, jacob_cov, ZiCo, MeCo)\n"
        "and the parameter and FLOP counts they are compared with.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # the proxy list and the data sources shown are the library's, whose modules import torch:
    # they are added when `proxies` is parsed or its help printed, not for `dvbench --help`
    parser.defer(_add_arguments)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG.format(proxies=_proxy_lines())
    parser.add_argument(
        "models", nargs="+", metavar="MODEL", help="model names or .yaml/.json Dual-ViT configs"
    )
    add_data_arguments(parser, full=False)

    scoring = parser.add_argument_group("scoring")
    scoring.add_argument(
        "--proxies", metavar="NAMES", help="comma-separated proxy names (default: all)"
    )
    scoring.add_argument(
        "--batch-size", type=positive_int, default=64, metavar="N", help="(default: 64)"
    )
    scoring.add_argument(
        "--num-batches",
        type=positive_int,
        metavar="N",
        help="batches to draw (default: the most any chosen proxy needs; zico needs 2)",
    )
    scoring.add_argument(
        "--seed", type=int, default=0, help="initialisation and batches (default: 0)"
    )

    add_model_arguments(
        parser, set_help="config field or constructor argument for every model (repeatable)"
    )

    run = parser.add_argument_group("run")
    run.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")
    run.add_argument(
        "--threads", type=positive_int, metavar="N", help="CPU threads (default: every usable core)"
    )
    run.add_argument("--out", metavar="FILE", help="write the table: .csv, .json or .parquet")
    parser.set_defaults(func=run_proxies)


def run_proxies(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dvbench.proxies import (
        OUTPUT_SUFFIXES,
        ProxySettings,
        failure_lines,
        score_models,
        scores_table,
        write_scores,
    )
    from dvbench.runtime import check_output_path, num_threads
    from dvbench.train import parse_overrides

    try:
        settings = ProxySettings(
            proxies=args.proxies,
            batch_size=args.batch_size,
            num_batches=args.num_batches,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.out:
        check_output_path(args.out, OUTPUT_SUFFIXES)
    overrides = parse_overrides(args.set)
    data = data_spec(args).load(seed=args.seed)
    try:
        settings.images_per_batch(data)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    errors = Console(stderr=True)
    with num_threads(args.threads), errors.status("scoring") as status:
        scores = score_models(
            args.models,
            data,
            settings,
            seed=args.seed,
            device=args.device,
            overrides=overrides,
            width_mult=args.width_mult,
            progress=lambda text: status.update(f"scoring {text}"),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(scores_table(scores))
    for line in failure_lines(scores):
        sys.stderr.write(f"dvbench proxies: failed: {line}\n")
    if args.out:
        sys.stderr.write(f"dvbench proxies: wrote {write_scores(scores, args.out)}\n")
    return 0
