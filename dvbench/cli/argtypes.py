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
    parser.add_argument("--results-dir", type=Path, help="where studies live (default: results)")
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="read the study from this Optuna storage (journal:PATH, postgresql+psycopg://...)",
    )
