"""Command-line entry point. Argument parsing only: every command calls one library function.

Each command lives in its own module exposing ``add_parser(subparsers)``, which registers
the sub-command and sets ``func`` (a callable taking the parsed namespace and returning
an exit status). Errors users can cause (:class:`dvbench.errors.UsageError`, bad argument
values) are printed as one line on stderr with exit status 2; bugs still raise.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dvbench.errors import UsageError

# Sub-command modules, in the order ``--help`` lists them. A module that is not there yet
# (a command still being built) is skipped rather than breaking the others.
_COMMANDS = (
    "profile",
    "train",
    "proxies",
    "calibrate",
    "search",
    "report",
    "compare",
    "export",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dvbench",
        description="Dual-ViT architecture search and efficiency benchmarking.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"dvbench.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"dvbench.cli.{name}_cmd":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"dvbench {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"dvbench {args.command}: interrupted\n")
        return 130
