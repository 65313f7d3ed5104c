"""Shared test helpers: where ../shared is, and threads kept small for a 2-core machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

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
