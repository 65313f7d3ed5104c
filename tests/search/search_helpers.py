"""Spaces and helpers shared by the search tests (imported by name: pytest puts this folder on
sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GATED = Path(__file__).with_name("gated_search.py")  # cli.py whose workers wait for files

# A cost-only space: no training, each trial is one FLOP count of a tiny model at 64 px.
COST_SPACE = {
    "name": "costs",
    "knobs": {
        "width": {"choices": [8, 16]},
        "depth3": {"low": 1, "high": 3},
        "semantic_grid": {"choices": [1, 2, 32]},  # 32 > the 16x16 stage-1 map: infeasible
    },
    "fixed": {
        "head_dim": 8,
        "width_multipliers": [1, 2, 3, 4],
        "depth1": 1,
        "depth2": 1,
        "depth4": 1,
        "mlp_ratio": 2,
        "stem_hidden_dim": 8,
        "num_classes": 10,
    },
    "objectives": [
        {"metric": "gflops", "direction": "minimize"},
        {"metric": "params_m", "direction": "maximize"},
    ],
    "sampler": {"name": "nsga2", "population_size": 4},
    "n_trials": 5,
    "profile": {"res": 64},
    "seeds": {"seed_a": {"width": 16, "depth3": 2, "semantic_grid": 2}},
}


def write_space(tmp_path: Path, space: dict, name: str = "costs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def peek_study(name: str, results: Path, storage_url: str | None = None):
    """The study as it stands, or None before it exists.

    A journal is read with Optuna's plain reader, which takes no lock (dvbench's reader may take
    the journal's lock to repair a torn tail, and a stopped worker may hold that lock); Optuna's
    reader skips a last record still being written. ``storage_url``: a database server.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage_url is None:
        path = results / name / "journal.log"
        if not path.is_file():
            return None
        storage = JournalStorage(JournalFileBackend(str(path)))
    else:
        from dvbench.search.storage import open_storage

        storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # the storage exists, the study not yet
        return None


def worker_pid(trial) -> int | None:
    """The pid of the worker that started ``trial`` (None before its objective began)."""
    from dvbench.search.record import started_by

    worker = started_by(trial)
    return None if worker is None else int(worker.rsplit(":", 1)[1])


def kill_mid_trial(peek, choose, *, journal: Path | None, alive, deadline_s: float = 600):
    """SIGKILL a worker while a trial runs in it, and prove that it did.

    ``peek()`` reads the study (None before it exists); ``choose(study)`` returns the trial to
    kill, RUNNING in a live worker (``worker_pid``), or None to look again later. The worker is
    stopped (SIGSTOP) first and the study read again: it is killed only if the trial is still
    RUNNING with the worker frozen mid-trial and, on a journal, while it holds no lock on the
    journal (``journal`` + ``.lock``); otherwise it continues (SIGCONT) and we look again.
    Returns the trial as it was read while the worker was stopped, and that study.
    ``alive()`` is False once the run has ended (then there was nothing to kill: an error).
    ``deadline_s`` only keeps a broken run from hanging the test suite.
    """
    import contextlib
    import os
    import signal
    import time

    from optuna.trial import TrialState

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not alive():
            raise AssertionError("the run ended before a trial could be killed mid-way")
        study = peek()
        trial = None if study is None else choose(study)
        if trial is None:
            time.sleep(0.1)
            continue
        pid = worker_pid(trial)
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:  # it has just ended
            continue
        try:
            now = peek().trials[trial.number]
            lock_held = journal is not None and os.path.lexists(f"{journal}.lock")
            if now.state == TrialState.RUNNING and worker_pid(now) == pid and not lock_held:
                os.kill(pid, signal.SIGKILL)
                return now, peek()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # after SIGKILL: harmless
        time.sleep(0.05)
    raise AssertionError(f"no trial was killed mid-way within {deadline_s} s")


def start_gated(cmd: list[str], gate: Path) -> subprocess.Popen:
    """Start ``cmd`` (a ``cli.py search`` command line) with worker ``i`` held until the file
    ``gate.i`` exists (see gated_search.py and :func:`open_gate`)."""
    argv = [sys.executable, str(GATED), *cmd[2:]]
    env = {**os.environ, "DVBENCH_TEST_GATE": str(gate)}
    return subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def open_gate(gate: Path, index: int) -> None:
    """Let worker ``index`` of a :func:`start_gated` run go."""
    Path(f"{gate}.{index}").touch()


# A space scored by a scripted evaluator (:class:`NoisyScript`): top1 and GFLOPs, 2 x 3 knobs.
NOISY_SPACE = {
    "name": "noisy",
    "knobs": {"width": {"choices": [8, 16]}, "depth3": {"low": 1, "high": 3}},
    "fixed": {
        "head_dim": 8, "width_multipliers": [1, 2, 3, 4], "depth1": 1, "depth2": 1,
        "depth4": 1, "mlp_ratio": 2, "stem_hidden_dim": 8, "semantic_grid": 1,
    },
    "objectives": [
        {"metric": "top1", "direction": "maximize"},
        {"metric": "gflops", "direction": "minimize"},
    ],
    "sampler": {"name": "random"},
    "n_trials": 6,
    "train": {"data": "digits", "resolution": 16, "epochs": 1, "train_samples": 5},
    "profile": {"resolution": 32},
    "confidence": 0.95,
}  # fmt: skip


def knob_key(cfg) -> tuple[int, int]:
    """(width, depth3) of a NOISY_SPACE network, read back from its config."""
    return cfg.embed_dims[0], cfg.depths[2]


def noisy_script(space, truth: dict, *, seed_sd: float = 0.66, test_images: int = 8000):
    """A :class:`~dvbench.evaluate.SimulatedEvaluator` for NOISY_SPACE: ``truth[(width,
    depth3)] = (gflops, true top1)``; a run measures the true top-1 plus noise of sd ``seed_sd``
    drawn from its training seed."""
    from dvbench.evaluate import SimulatedEvaluator

    table = {key: ({"params_m": 1.0, "gflops": g}, top1) for key, (g, top1) in truth.items()}
    return SimulatedEvaluator.for_space(
        space, key=knob_key, truth=table, seed_sd=seed_sd, test_images=test_images
    )
