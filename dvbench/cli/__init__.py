"""Command-line entry point. Argument parsing only: every command calls one library function.

Each command lives in its own module exposing ``add_parser(subparsers)``, which registers
the sub-command and sets ``func`` (a callable taking the parsed namespace and returning
an exit status). Errors users can cause (:class:`dvbench.errors.UsageError`, bad argument
values) are printed as one line on stderr with exit status 2; bugs still raise.

Building the parser imports no torch, timm or Optuna, so that ``--help``, ``--version`` and
argument errors answer at once: a command module imports the library inside its ``func``,
and a command whose arguments show the library's values (defaults, choices, lists) adds
them with :meth:`_Parser.defer`, when that command is parsed or its help printed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from dvbench import __version__
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
    """argparse, but a usage error is one line on stderr and exit status 2, and parts of a
    command that need the library can be added when that command is used (:meth:`defer`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def defer(self, add: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``add(self)`` when this parser first parses or prints help, not at build time."""
        self._deferred.append(add)

    def _complete(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dvbench",
        description="Dual-ViT architecture search and efficiency benchmarking.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
