"""How fast does the command line answer ``--help``, next to a bare ``import torch``?

Runs ``python cli.py --help`` and ``python -c "import torch"`` as fresh processes, one warm-up
each and then ``--repeats`` rounds, interleaved (A B, then B A, ...) so that drifts in machine
load hit both alike, and prints the median, min and max wall time of each and the ratio of
the medians. The goal: ``--help`` in at most 40 % of ``import torch``.

    python benchmarks/bench_cli_startup.py --repeats 15
    python benchmarks/bench_cli_startup.py  # also writes results/benchmarks/cli_startup_cpu.txt
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.40

COMMANDS = {
    "python cli.py --help": [sys.executable, "cli.py", "--help"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(repeats: int) -> dict[str, list[float]]:
    """Wall seconds per command, ``repeats`` each, interleaved in alternating order."""
    names = list(COMMANDS)
    for name in names:
        wall_time(COMMANDS[name])  # warm-up: page cache, .pyc files
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            samples[name].append(wall_time(COMMANDS[name]))
    return samples


def report(samples: dict[str, list[float]]) -> str:
    help_s, torch_s = (statistics.median(values) for values in samples.values())
    repeats = len(next(iter(samples.values())))
    lines = [
        f"CLI start-up: {platform.machine()} CPU, Python {platform.python_version()}, "
        f"torch {metadata.version('torch')}, {repeats} interleaved runs each",
        "",
        f"{'command':<28}{'median s':>10}{'min s':>8}{'max s':>8}",
    ]
    for name, values in samples.items():
        lines.append(
            f"{name:<28}{statistics.median(values):>10.3f}{min(values):>8.3f}{max(values):>8.3f}"
        )
    ratio = help_s / torch_s
    verdict = "met" if ratio <= GOAL else "NOT met"
    lines += ["", f"--help / import torch: {ratio:.1%} (goal: at most {GOAL:.0%}, {verdict})"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs of each command")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "results" / "benchmarks" / "cli_startup_cpu.txt",
        help="also write the table here (default: results/benchmarks/cli_startup_cpu.txt)",
    )
    args = parser.parse_args()
    text = report(measure(args.repeats))
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
