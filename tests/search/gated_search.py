"""``python gated_search.py search ...`` is ``cli.py search ...`` in which each worker starts
its search loop only once the test lets it.

With $DVBENCH_TEST_GATE set to a path BASE, worker ``i`` (0: the command itself; 1..K-1: the
processes ``--workers K`` starts) creates ``BASE.i.waiting`` when it reaches its loop, then
waits until ``BASE.i`` exists. The worker tests use this to decide the order of events
instead of racing the clock: the started workers (spawned, importing torch) run trials while
worker 0 is held, the test does what it must (kill one mid-trial, read the environment of
each), then lets worker 0 go. Spawned workers import this file as ``__mp_main__``, so the
hold applies to them too; only the command runs ``main``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dvbench.search import _loop

_run = _loop.SearchLoop.run


def _held_run(self, on_trial):
    base = os.environ["DVBENCH_TEST_GATE"]
    index = self.options.worker_index or 0
    Path(f"{base}.{index}.waiting").touch()
    gate = Path(f"{base}.{index}")
    while not gate.exists():
        time.sleep(0.05)
    return _run(self, on_trial)


if os.environ.get("DVBENCH_TEST_GATE"):
    _loop.SearchLoop.run = _held_run

if __name__ == "__main__":
    from dvbench.cli import main

    sys.exit(main(sys.argv[1:]))
