"""What a calibration measures (:class:`CalibrationPlan`) and how its records are keyed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dvbench.errors import UsageError

RECORDS_FILE = "records.jsonl"


@dataclass(frozen=True)
class CalibrationPlan:
    """What to measure: ``candidates`` from the space, the ``ladder`` of rung budgets (epochs,
    increasing; the last is the target), standalone short ``schedules`` (epochs), the
    ``proxies`` (None: all, with params_m and gflops), the first ``repeats`` candidates trained
    along the ladder with ``seeds`` seeds each (the others with one), and ``holdout``: the test
    set split in two halves."""

    candidates: int = 20
    ladder: tuple[float, ...] = (1.0, 3.0, 9.0, 15.0)
    schedules: tuple[float, ...] = (1.0, 3.0)
    proxies: tuple[str, ...] | None = None
    repeats: int = 10
    seeds: int = 3
    seed: int = 0
    holdout: bool = True

    def __post_init__(self) -> None:
        if self.candidates < 3:
            raise UsageError(f"candidates: need at least 3 to rank, got {self.candidates}")
        ladder = tuple(float(e) for e in self.ladder)
        bad = not ladder or any(not math.isfinite(e) or e <= 0 for e in ladder)
        if bad or list(ladder) != sorted(set(ladder)):
            raise UsageError(f"ladder: increasing positive epochs, e.g. 1,3,9,15; got {ladder}")
        object.__setattr__(self, "ladder", ladder)
        object.__setattr__(self, "schedules", tuple(float(e) for e in self.schedules))
        if any(not math.isfinite(e) or e <= 0 for e in self.schedules):
            raise UsageError(f"schedules: positive epochs, got {self.schedules}")
        if not 0 <= self.repeats <= self.candidates:
            raise UsageError(f"repeats: between 0 and candidates, got {self.repeats}")
        if not 1 <= self.seeds <= 20:
            raise UsageError(f"seeds: between 1 and 20, got {self.seeds}")
        if self.proxies is not None:
            from dvbench.proxies import resolve_proxies

            try:
                names = tuple(p.name for p in resolve_proxies(self.proxies))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            object.__setattr__(self, "proxies", names)

    @property
    def target(self) -> float:
        return self.ladder[-1]

    def seeds_of(self, index: int) -> int:
        """How many seeds candidate ``index`` trains with along the ladder."""
        return self.seeds if index < self.repeats else 1


def record_key(record: Mapping[str, Any]) -> tuple:
    """(unit, candidate, epochs, seed index) of a record; a ``repeat`` record of calibrations
    made before seeds were counted is the target rung's second seed."""
    if record["unit"] == "repeat":
        return ("rung", record["candidate"], record.get("epochs"), 1)
    return (record["unit"], record["candidate"], record.get("epochs"), record.get("seed", 0))
