"""``dvbench profile``: parameters, FLOPs, latency, throughput and memory of models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dvbench.cli.argtypes import add_profiling_arguments, positive_int, profile_settings
from dvbench.errors import UsageError

EPILOG = """\
examples:
  dvbench profile dualvit_s dualvit_b swin_t pvt_v2_b2 --res 224
  dvbench profile dualvit_s --baselines --no-latency --out results/cost.csv
  dvbench profile dualvit_b --gpu --batch-size 1,64,256 --amp bf16 --channels-last
  dvbench profile my_config.yaml --train --batch-size 32 --memory --threads 2
  dvbench profile dualvit_s --breakdown --no-latency
  dvbench profile --calibrate-device laptop.json --space small --threads 4
  dvbench profile dualvit_s swin_t --device-profile laptop.json   # predicted beside measured

GFLOPs are fvcore's count (one multiply-accumulate = one FLOP) for one image; latency is
per batch (median of timed runs, p10/p90 beside it); img/s = batch size / median latency.
--calibrate-device times --samples random candidates of --space on this machine at one
batch size and writes a device profile (docs/latency.md); a search predicts latency on
that device from it (objective latency_pred_ms, space key device: FILE).
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
    device = parser.add_argument_group("device profiles (latency predicted for a device)")
    device.add_argument(
        "--calibrate-device",
        metavar="FILE",
        type=Path,
        help="time --samples random candidates of --space here and write a device profile",
    )
    device.add_argument("--space", help="the space to calibrate on (name or YAML file)")
    device.add_argument(
        "--samples",
        type=positive_int,
        default=20,
        metavar="N",
        help="candidates to time for --calibrate-device (default 20; at least 5)",
    )
    device.add_argument(
        "--seed", type=int, default=0, help="which random candidates are timed (default 0)"
    )
    device.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        metavar="R",
        help="time every candidate in R interleaved rounds and keep its fastest round's "
        "median (default 3: a slow spell of a shared machine then misses some round)",
    )
    device.add_argument(
        "--device-profile",
        metavar="FILE",
        type=Path,
        help="also print each model's latency predicted from this device profile",
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


def _plain(console, verb: str = "profiling"):
    """Progress as plain lines for a log file: the timed steps only (counting takes about a
    second a model, and a bad input then stays one line on stderr)."""

    def say(message: str) -> None:
        if not message.endswith("counting FLOPs"):
            console.print(f"{verb} {message}", highlight=False, markup=False)

    return say


def _consoles():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    return console, Console(stderr=True, log_path=False)


def run(args: argparse.Namespace) -> int:
    from dvbench.profile import profile_models, write_results
    from dvbench.profile.display import breakdown_table, results_table, uncounted_warnings

    if args.calibrate_device is not None:
        return _calibrate(args)
    if args.space is not None:
        raise UsageError(
            "--space names the space --calibrate-device times; add --calibrate-device FILE"
        )
    console, errors = _consoles()
    from dvbench.models.registry import resolve_spec

    models, settings = _models(args), profile_settings(args)
    device = None
    if args.device_profile is not None:
        from dvbench.latency import load_device_profile

        device = load_device_profile(args.device_profile)
        device.check(resolution=settings.resolution)
        if device.batch_size not in settings.batch_sizes:
            device.check(batch_size=settings.batch_sizes[0])
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
    if device is not None:
        from dvbench.latency.display import prediction_table

        table, notes = prediction_table(results, models, device)
        console.print(table)
        for line in notes:
            sys.stderr.write(f"dvbench profile: {line}\n")
    for line in uncounted_warnings(results):
        sys.stderr.write(f"dvbench profile: warning: {line}\n")
    if args.out:
        path = write_results(results, args.out)
        sys.stderr.write(f"dvbench profile: wrote {path}\n")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    """``--calibrate-device FILE --space NAME``: time the space's candidates, fit, write."""
    from dvbench.latency import calibrate_device
    from dvbench.latency.display import calibration_summary
    from dvbench.space import load_space

    if args.models or args.baselines:
        raise UsageError(
            "--calibrate-device times random candidates of --space; name no models with it"
        )
    if args.space is None:
        raise UsageError("--calibrate-device needs --space NAME (the candidates it times)")
    if args.device_profile is not None:
        raise UsageError("--calibrate-device writes a device profile; drop --device-profile")
    if args.samples < 5:
        raise UsageError(f"--samples: a fit needs at least 5 candidates, got {args.samples}")
    settings = profile_settings(args)
    if len(settings.batch_sizes) != 1:
        raise UsageError("--calibrate-device: give one --batch-size (a profile is for one)")
    if args.no_latency:
        raise UsageError("--calibrate-device times candidates; drop --no-latency")
    if settings.train or settings.compile or settings.amp or settings.channels_last:
        raise UsageError(
            "--calibrate-device: profiles are fp32 inference; drop --train, --compile, --amp "
            "and --channels-last"
        )
    space = load_space(args.space)
    console, errors = _consoles()
    with errors.status("calibrating") as status:
        progress = status.update if errors.is_terminal else _plain(errors, "timing")
        drawn = space.random_candidates(args.samples, args.seed, img_size=settings.resolution)
        profile = calibrate_device(
            [cfg for _, cfg in drawn], settings, space=space.name, rounds=args.rounds,
            progress=progress,
        )  # fmt: skip
    path = profile.save(args.calibrate_device)
    for line in calibration_summary(profile):
        console.print(line, highlight=False, markup=False)
    sys.stderr.write(f"dvbench profile: wrote {path}\n")
    return 0
