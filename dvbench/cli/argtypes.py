"""Shared argparse pieces: value types (a bad value is argparse's one-line error, exit 2)
and the arguments every command that reads a finished study takes."""

from __future__ import annotations

import argparse
from pathlib import Path


def _parse(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _parse(text, int, "an integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


#: Most epochs a command accepts: beyond it a budget is a typo (or ``inf``), not a plan.
MAX_EPOCHS = 10_000


def epochs_float(text: str) -> float:
    """A number of epochs: positive, finite, at most :data:`MAX_EPOCHS`."""
    value = positive_float(text)
    if not value <= MAX_EPOCHS:  # also refuses inf
        raise argparse.ArgumentTypeError(f"at most {MAX_EPOCHS} epochs, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def fraction(text: str) -> float:
    value = _parse(text, float, "a number")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def open_fraction(text: str) -> float:
    value = _parse(text, float, "a number")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """STUDY, --results-dir and --storage, as report and export take them."""
    parser.add_argument(
        "study",
        metavar="STUDY",
        help="study name under --results-dir, or a study folder (holding journal.log)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where studies live (default: $DVBENCH_RESULTS_DIR, else results)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="read the study from this Optuna storage (journal:PATH, postgresql+psycopg://...)",
    )


def add_results_dir_argument(parser: argparse.ArgumentParser) -> None:
    """--results-dir, defaulting to $DVBENCH_RESULTS_DIR, else ``results``."""
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where studies and outputs live (default: $DVBENCH_RESULTS_DIR, else results)",
    )


def results_dir(args: argparse.Namespace) -> Path:
    """The --results-dir given, else the default every command shares."""
    from dvbench.runtime import default_results_dir

    given = getattr(args, "results_dir", None)
    return given if given is not None else default_results_dir()


def add_profiling_arguments(
    parser: argparse.ArgumentParser, *, batch_help: str, timing: bool = True
) -> None:
    """The profiler's flags, declared once for ``profile`` and ``compare``: --res,
    --batch-size, --gpu/--device, --no-latency, --memory, and with ``timing`` the timing
    controls (--threads, --amp, --channels-last, --compile, --train, --warmup, --min-runs,
    --min-time)."""
    # plain ints: ProfileSettings names the field in its one-line error
    parser.add_argument(
        "--res",
        "--img-size",  # timm's name
        dest="res",
        type=int,
        default=224,
        help="resolution for GFLOPs, latency and memory (default 224)",
    )
    parser.add_argument("--batch-size", default="1", metavar="N[,N...]", help=batch_help)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--gpu", action="store_true", help="run on CUDA (same as --device cuda)")
    where.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--no-latency", action="store_true", help="count only; no timing")
    parser.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure peak memory (default: on for CUDA; on the CPU it runs a child process "
        "per row)",
    )
    if not timing:
        return
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this dtype")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile first (compile time reported)"
    )
    parser.add_argument(
        "--train", action="store_true", help="time forward+backward+AdamW step, not inference"
    )
    parser.add_argument(
        "--warmup-runs",
        "--warmup",  # the older name; train's --warmup is a fraction, hence the longer one
        dest="warmup",
        type=int,
        default=2,
        help="untimed runs first (default 2)",
    )
    parser.add_argument("--min-runs", type=int, default=10, help="timed runs at least (default 10)")
    parser.add_argument(
        "--min-time", type=float, default=1.0, help="seconds of timed runs at least (default 1)"
    )


def profile_settings(args: argparse.Namespace):
    """The :class:`~dvbench.profile.ProfileSettings` the profiling flags describe."""
    from dvbench.profile import ProfileSettings

    timing = {}
    if hasattr(args, "warmup"):
        timing = dict(
            threads=args.threads,
            amp=args.amp,
            channels_last=args.channels_last,
            compile=args.compile,
            train=args.train,
            warmup=args.warmup,
            min_runs=args.min_runs,
            min_time_s=args.min_time,
        )
    return ProfileSettings(
        resolution=args.res,
        batch_sizes=args.batch_size,
        device="cuda" if args.gpu else args.device,
        latency=not args.no_latency,
        memory=args.memory,
        **timing,
    )


def add_data_arguments(parser: argparse.ArgumentParser, *, full: bool = True):
    """The data flags of ``train`` and ``proxies`` (a ``data`` group): --data, --data-dir,
    --res, --train-samples and, with ``full``, --download, --test-samples, --val-fraction,
    --normalize. Returns the group.

    The source names and normalisations are the data module's, which imports torch: they are
    filled in when the command is parsed or its help printed (``defer``), not when the
    parser is built."""
    data = parser.add_argument_group("data")
    source = data.add_argument("--data", default="digits", metavar="SOURCE")
    data.add_argument("--data-dir", metavar="DIR", help="where cifar10/cifar100 live")
    data.add_argument(
        "--res",
        "--img-size",  # timm's name
        dest="res",
        type=positive_int,
        default=32,
        metavar="PX",
        help="input resolution (default: 32)",
    )
    data.add_argument(
        "--train-samples",
        type=positive_int,
        metavar="N",
        help="at most N training images per class",
    )
    normalize = None
    if full:
        normalize = _add_full_data_arguments(data)

    def fill_in() -> None:
        from dvbench.train.settings import BUILTIN_SOURCES, NORMALIZATIONS

        source.help = f"{', '.join(BUILTIN_SOURCES)} or an image folder (default: digits)"
        if normalize is not None:
            normalize.choices = NORMALIZATIONS

    defer = getattr(parser, "defer", None)  # dvbench's parsers have it; others fill in now
    if defer is None:
        fill_in()
    else:
        defer(lambda _parser: fill_in())
    return data


def _add_full_data_arguments(data: argparse._ArgumentGroup) -> argparse.Action:
    """--download, --test-samples, --val-fraction and --normalize (returned)."""
    data.add_argument("--download", action="store_true", help="download cifar10/cifar100")
    data.add_argument(
        "--test-samples", type=positive_int, metavar="N", help="at most N test images per class"
    )
    data.add_argument(
        "--val-fraction",
        type=open_fraction,
        default=0.2,
        metavar="F",
        help="held-out share when the source has no test split (default: 0.2)",
    )
    return data.add_argument(
        "--normalize",
        default="dataset",
        help="per-channel statistics to normalise with (default: dataset)",
    )


def data_spec(args: argparse.Namespace):
    """The :class:`~dvbench.train.DataSpec` the data flags describe."""
    from dvbench.train import DataSpec

    full = {}
    if hasattr(args, "normalize"):
        full = dict(
            download=args.download,
            test_samples=args.test_samples,
            val_fraction=args.val_fraction,
            normalization=args.normalize,
        )
    return DataSpec(
        source=args.data,
        resolution=args.res,
        data_dir=args.data_dir,
        train_samples=args.train_samples,
        **full,
    )


def add_model_arguments(parser: argparse.ArgumentParser, *, set_help: str) -> None:
    """The ``model`` group of ``train`` and ``proxies``: --set KEY=VALUE and --width-mult."""
    model = parser.add_argument_group("model")
    model.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    model.add_argument(
        "--width-mult", type=positive_float, metavar="M", help="scale Dual-ViT widths by M"
    )
