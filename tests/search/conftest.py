"""Fixtures shared by the search tests."""

from __future__ import annotations

import os

import pytest

PG_URL = os.environ.get("DVBENCH_TEST_PG_URL")


@pytest.fixture(params=["journal", "postgresql"])
def storage_url(request):
    """A storage for one test's study: None (the study folder's journal.log), or the test
    PostgreSQL server (skipped outside .ci/with-postgres)."""
    if request.param == "journal":
        yield None
        return
    if not PG_URL:
        pytest.skip("DVBENCH_TEST_PG_URL is unset: run under .ci/with-postgres for PostgreSQL")
    yield PG_URL
