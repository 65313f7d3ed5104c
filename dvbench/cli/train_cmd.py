"""``dvbench train``: train one candidate on a short ("proxy") schedule and report accuracy."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dvbench.cli.argtypes import (
    add_data_arguments,
    add_model_arguments,
    data_spec,
    epochs_float,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
)
from dvbench.errors import UsageError

if TYPE_CHECKING:
    from rich.table import Table

    from dvbench.train import TrainResult

EPILOG = """\
examples:
  # a tiny Dual-ViT (about 1.7 M parameters) on the built-in digits, 3 epochs at 32 px
  dvbench train dualvit_s --data digits --epochs 3 --res 32 \\
      --set embed_dims=32,64,128,160 --set num_heads=1,2,4,5 --set depths=1,1,2,1 \\
      --set mlp_ratios=4,4,4,4 --set stem_hidden_dim=16
  # dualvit_s at a quarter of its width, 60 seconds, result appended to a CSV table
  dvbench train dualvit_s --width-mult 0.25 --time 60 --out results/proxy.csv
  # a baseline on an ImageFolder folder (train/ and test/ of class folders)
  dvbench train swin_t --data ../shared/data/cifar10-mini --res 32 --out swin_t.json

data (--data): digits is scikit-learn's 8x8 handwritten digits (offline, upsampled to --res,
split 80/20 stratified by --seed); cifar10/cifar100 are read from --data-dir (default
~/{data_dir}), downloaded only with --download; a folder holds
class folders, under train/ and val/ (or test/), or directly (then split by --val-fraction).

shrinking a model: --set KEY=VALUE sets a Dual-ViT config field (embed_dims, num_heads, depths,
mlp_ratios, stem_hidden_dim, dual_stages, semantic_window, ...; lists are comma-separated) or,
for timm models, a constructor argument (e.g. --set embed_dim=48 for Swin). --width-mult M
scales Dual-ViT widths by M, rounded to multiples of each stage's head count.
Swin at small inputs: the attention window becomes the largest size <= 7 that tiles the
patch grid (4 at 32 px, instead of padding 8x8 to 14x14); override with --set window_size=N.

exit status: 0 when the run finished, 1 when it failed (non-finite loss, out of memory),
2 for a usage error.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one candidate on a short schedule and report its accuracy",
        description="Train one model (dvbench name, timm name or config file) on a short\n"
        "schedule and report top-1/top-5 accuracy, loss and training throughput.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # the defaults and choices shown are the library's, whose modules import torch: the
    # arguments are added when `train` is parsed or its help printed, not for `dvbench --help`
    parser.defer(_add_arguments)


def _defaults() -> dict[str, Any]:
    from dvbench.train.settings import TrainSettings

    return {f.name: f.default for f in dataclasses.fields(TrainSettings)}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from dvbench.train.settings import AMP_MODES, DEFAULT_DATA_DIR

    parser.epilog = EPILOG.format(data_dir=DEFAULT_DATA_DIR.relative_to(Path.home()))
    defaults = _defaults()
    parser.add_argument(
        "model",
        metavar="MODEL_OR_CONFIG",
        help="dualvit_s/b/l, swin_t/s/b, pvt_v2_b0..b5, a timm name, or a "
        ".yaml/.json Dual-ViT config",
    )

    add_data_arguments(parser)

    budget = parser.add_argument_group("budget (the first one reached stops training)")
    budget.add_argument(
        "--epochs",
        type=epochs_float,
        metavar="E",
        help=f"epochs, may be fractional (default: {defaults['epochs']:g} "
        "when no other budget is given)",
    )
    budget.add_argument("--steps", type=positive_int, metavar="N", help="optimizer steps")
    budget.add_argument(
        "--time",
        type=positive_float,
        metavar="SECONDS",
        help="seconds of training (evaluation not counted)",
    )

    opt = parser.add_argument_group("optimisation")
    opt.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults["batch_size"],
        metavar="N",
        help="(default: %(default)s)",
    )
    opt.add_argument(
        "--lr",
        type=positive_float,
        default=defaults["lr"],
        help="peak AdamW learning rate (default: %(default)s)",
    )
    opt.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=defaults["weight_decay"],
        metavar="WD",
        help="(default: %(default)s)",
    )
    opt.add_argument(
        "--warmup-fraction",
        "--warmup",  # the older name; profile's --warmup-runs is a count
        dest="warmup",
        type=fraction,
        default=defaults["warmup_fraction"],
        metavar="F",
        help="linear warm-up share of the budget before the cosine decay (default: %(default)s)",
    )
    opt.add_argument(
        "--label-smoothing",
        "--smoothing",  # timm's name
        dest="label_smoothing",
        type=fraction,
        default=defaults["label_smoothing"],
        metavar="F",
        help="(default: %(default)s)",
    )
    opt.add_argument(
        "--drop-path",
        type=fraction,
        default=defaults["drop_path_rate"],
        metavar="RATE",
        help="stochastic depth rate (default: %(default)s)",
    )
    opt.add_argument(
        "--clip-grad",
        type=non_negative_float,
        default=defaults["grad_clip"],
        metavar="NORM",
        help="gradient norm clip, 0 disables (default: %(default)s)",
    )
    opt.add_argument("--no-augment", action="store_true", help="no random crop and flip")
    opt.add_argument(
        "--amp",
        choices=AMP_MODES,
        default=defaults["amp"],
        help="autocast: auto = bf16 (or fp16) on GPU, off on CPU",
    )
    opt.add_argument(
        "--channels-last", action="store_true", help="convert the model and inputs to channels-last"
    )

    add_model_arguments(
        parser, set_help="config field or constructor argument (repeatable; see below)"
    )

    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0, help="(default: 0)")
    run.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: auto)"
    )
    run.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads (default: every usable core)",
    )
    run.add_argument(
        "--out",
        metavar="PATH",
        help="write the result: .json (one object) or .csv (one row, appended)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dvbench.models import display_name
    from dvbench.runtime import check_output_path
    from dvbench.train import TrainSettings, parse_overrides, rich_progress, train_candidate
    from dvbench.train.settings import OUTPUT_SUFFIXES

    overrides = parse_overrides(args.set)
    if args.out:
        check_output_path(args.out, OUTPUT_SUFFIXES)
    no_budget = args.epochs is None and args.steps is None and args.time is None
    try:
        settings = TrainSettings(
            epochs=_defaults()["epochs"] if no_budget else args.epochs,
            max_steps=args.steps,
            time_limit_s=args.time,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            warmup_fraction=args.warmup,
            label_smoothing=args.label_smoothing,
            drop_path_rate=args.drop_path,
            grad_clip=args.clip_grad or None,
            augment=not args.no_augment,
            amp=args.amp,
            channels_last=args.channels_last,
            num_threads=args.threads,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    data = data_spec(args).load(seed=args.seed)
    with rich_progress(f"train {display_name(args.model)}", enabled=not args.quiet) as progress:
        result = train_candidate(
            args.model,
            data,
            settings,
            seed=args.seed,
            device=args.device,
            overrides=overrides,
            width_mult=args.width_mult,
            progress=progress,
        )
    console = Console()
    console.print(summary_table(result))
    if args.out:
        console.print(f"wrote {result.save(args.out)}")
    return 0 if result.ok else 1


def summary_table(result: TrainResult) -> Table:
    """The result for people: one row per quantity."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"proxy training: {result.model}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    status = "[green]ok" if result.ok else f"[red]failed: {escape(result.reason or '')}"
    rows = [
        ("status", status),
        ("parameters", f"{result.params / 1e6:.2f} M"),
        (
            "data",
            f"{result.data}: {result.num_train} train / {result.num_test} test, "
            f"{result.num_classes} classes, {result.resolution} px",
        ),
        ("top-1", _top1_with_error(result.top1, result.num_test)),
        ("top-5", _percent(result.top5)),
        ("test loss", _number(result.test_loss)),
        ("final train loss", _number(result.final_loss)),
        (
            "trained",
            f"{result.epochs:.2f} epochs, {result.steps} steps "
            f"(batch {min(result.settings.batch_size, result.num_train)})",
        ),
        ("train time", f"{result.train_time_s:.1f} s"),
        ("throughput", f"{result.images_per_s:,.0f} images/s"),
        ("eval time", f"{result.eval_time_s:.2f} s"),
        ("device", f"{result.device}, seed {result.seed}"),
    ]
    if result.model_config is not None:
        cfg = result.model_config
        rows.insert(
            2,
            (
                "config",
                f"dims={cfg['embed_dims']} heads={cfg['num_heads']} "
                f"depths={cfg['depths']} ratios={cfg['mlp_ratios']}",
            ),
        )
    for key, value in rows:
        table.add_row(key, value)
    return table


def _top1_with_error(value: float | None, test_images: int) -> str:
    """``40.6 ± 1.6 %  (SE over 1000 test images; one seed)``: the test-set sampling error; a
    seed's spread comes on top (calibrate measures it)."""
    from dvbench.metrics import accuracy_standard_error, format_with_error

    if value is None:
        return "-"
    se = accuracy_standard_error(value, test_images)
    return f"{format_with_error(value, se)} %  (SE over {test_images} test images; one seed)"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
