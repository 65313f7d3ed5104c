"""Where and how things run: devices, cores, threads, the results folder, output paths.

One home for the rules every room shares, so that ``train``, ``profile``, ``search`` and the
CLI resolve a device, count cores and pick the results folder the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from dvbench.errors import UsageError

__all__ = [
    "RESULTS_DIR_ENV",
    "check_output_path",
    "default_results_dir",
    "num_threads",
    "resolve_device",
    "usable_cores",
]

RESULTS_DIR_ENV = "DVBENCH_RESULTS_DIR"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_results_dir() -> Path:
    """``$DVBENCH_RESULTS_DIR``, else ``results`` (read at call time, so every command and a
    test's ``monkeypatch.setenv`` see the same folder)."""
    return Path(os.environ.get(RESULTS_DIR_ENV) or "results")


def resolve_device(device: str = "auto"):
    """The torch device for ``device`` (``auto``: CUDA when available, else the CPU).

    ``UsageError`` (one line) for a name torch does not know, a CUDA device on a machine
    without one, a CUDA index that does not exist, or a device type dvbench does not run on.
    """
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UsageError(f"device: {device!r} is not a device name (cpu, cuda, cuda:1)") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise UsageError(
                f"device {device!r}: CUDA is not available on this machine "
                f"(torch {torch.__version__}, {build}); run on the CPU with --device cpu "
                "(profile: drop --gpu)"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(
                f"device: {device} does not exist ({torch.cuda.device_count()} CUDA devices)"
            )
    elif resolved.type != "cpu":
        raise UsageError(f"device: only cpu and cuda are supported, got {device!r}")
    return resolved


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(threads)`` (default: every usable core),
    then restore the previous count. Yields the count in force."""
    import torch

    previous = torch.get_num_threads()
    threads = usable_cores() if threads is None else threads
    if threads < 1:
        raise UsageError(f"threads: must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)


def check_output_path(
    path: str | os.PathLike, suffixes: Iterable[str], *, what: str = "out"
) -> Path:
    """``path`` as a Path if a table can be written there; checked before any work is done.

    The suffix must be one of ``suffixes``; the path must not be a folder. Missing parent
    folders are fine (writers create them).
    """
    path = Path(path)
    suffixes = tuple(suffixes)
    if path.suffix.lower() not in suffixes:
        choices = " or ".join(filter(None, (", ".join(suffixes[:-1]), suffixes[-1])))
        raise UsageError(f"{what}: {path} must end in {choices}")
    if path.is_dir():
        raise UsageError(f"{what}: {path} is a folder; give a file name ending in {suffixes[0]}")
    return path


def spaces_dir() -> Path:
    """The built-in search spaces: the top-level ``search_spaces/`` of a checkout, installed as
    the package ``dvbench.space.builtin``; found through the package when dvbench is installed (a
    wheel, or in place with ``pip install -e``), else beside the ``dvbench`` folder."""
    from importlib import resources

    try:
        return Path(str(resources.files("dvbench.space.builtin")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "search_spaces"
