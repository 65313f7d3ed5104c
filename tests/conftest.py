"""Shared test helpers: where ../shared is, threads kept small for a 2-core machine, the
tiny Dual-ViT config, and every test's outputs kept out of the checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# the search tests' spaces and helpers (search_helpers) serve the report tests too
sys.path.insert(0, str(REPO / "tests" / "search"))

# Tests run on a 2-core CI machine; keep intra-op threads predictable across tests.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"reference material not present at {SHARED} (only in the dvbench workspace)")
    return SHARED


@pytest.fixture(scope="session")
def cifar10_mini(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "cifar10-mini"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def tiny_dualvit():
    """The tiny Dual-ViT config (tests/_tiny.py); tests derive theirs with ``.replace``.
    Imported here, not at the top, so that tests without a model do not load timm."""
    from _tiny import TINY_DUALVIT

    return TINY_DUALVIT


@pytest.fixture(scope="session")
def _decoded_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decoded-cache")


@pytest.fixture(autouse=True)
def _default_results_dir_is_temporary(tmp_path_factory, monkeypatch, _decoded_cache):
    """Every command's default results folder ($DVBENCH_RESULTS_DIR) is a fresh temporary one,
    for this process and the commands it starts: a test that gives no --results-dir still
    writes nothing into the checkout. Decoded image folders are cached for the session only,
    never in the user's ~/.cache."""
    monkeypatch.setenv("DVBENCH_RESULTS_DIR", str(tmp_path_factory.mktemp("default-results")))
    monkeypatch.setenv("DVBENCH_CACHE_DIR", str(_decoded_cache))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def _checkout_results_unchanged():
    """The run fails (an error at its last teardown) when a test added, changed or removed a
    file under the checkout's results/: tests write only to temporary folders."""
    before = _snapshot(REPO / "results")
    yield
    after = _snapshot(REPO / "results")
    changed = sorted(path for path in before | after if before.get(path) != after.get(path))
    if changed:
        pytest.fail(
            "tests wrote into the checkout's results/ (give them tmp_path): " + ", ".join(changed),
            pytrace=False,
        )
