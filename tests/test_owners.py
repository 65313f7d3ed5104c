"""Owners that own (issue 38): every trial and study attribute dvbench stores is read through
``dvbench/search/record.py`` (no module indexes ``user_attrs`` or reads Optuna's
``system_attrs``), no attribute is written under a bare string, and no private Optuna or timm
API is used (their private names change without notice between releases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dvbench"
OWNER = PACKAGE / "search" / "record.py"

RAW_ATTRIBUTES = [
    (r"user_attrs\s*\[", "indexes user_attrs"),
    (r"user_attrs\.(get|items|keys|values)\(", "reads user_attrs"),
    (r"\bin\s+[\w.]+\.user_attrs\b", "tests membership in user_attrs"),
    (r"(sorted|list|dict)\([\w.]+\.user_attrs\)", "copies user_attrs"),
    (r"system_attrs", "reads Optuna's internal system_attrs"),
    (r"set_user_attr\(\s*[\"']", "writes an attribute under a bare string"),
]
PRIVATE_APIS = [
    (r"\bfrom\s+(optuna|timm)[\w.]*\._\w*\s+import", "imports a private module"),
    (r"\bimport\s+(optuna|timm)[\w.]*\._\w*", "imports a private module"),
    (r"\.(_contains|_get_trials|_storage|_backend)\b", "calls a private Optuna member"),
]


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def _offences(patterns, *, skip=()) -> list[str]:
    found = []
    for path in _sources():
        if path in skip:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for pattern, what in patterns:
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {what}")
    return found


def test_only_the_record_reads_stored_attributes():
    assert _offences(RAW_ATTRIBUTES, skip=(OWNER,)) == []


def test_no_private_optuna_or_timm_api():
    assert _offences(PRIVATE_APIS) == []


@pytest.mark.parametrize(
    ("line", "patterns"),
    [
        ('x = trial.user_attrs["metrics"]', RAW_ATTRIBUTES),
        ("x = study.user_attrs.get(KEY)", RAW_ATTRIBUTES),
        ("if SEED_NAME in trial.user_attrs:", RAW_ATTRIBUTES),
        ('trial.system_attrs.get("failed_trial")', RAW_ATTRIBUTES),
        ('trial.set_user_attr("fail_reason", why)', RAW_ATTRIBUTES),
        ("from timm.models._features_fx import get_notrace_modules", PRIVATE_APIS),
        ("return d._contains(value)", PRIVATE_APIS),
    ],
)
def test_the_patterns_catch_what_they_forbid(line, patterns):
    assert any(re.search(pattern, line) for pattern, _ in patterns)
