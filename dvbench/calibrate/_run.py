"""The fidelity benchmark's measurements: how far can a search's accuracy axis be trusted?

``calibrate`` samples K valid candidates from a space (Optuna's random sampler, seeded) and
measures, for each, every signal a search could rank it by:

- every training-free proxy of :mod:`dvbench.proxies`, and ``params_m``/``gflops``;
- the rungs of one run along a ladder of budgets (e.g. 1, 3, 9, 15 epochs): the candidate is
  trained ONCE on the schedule of the last rung, stopped and evaluated at each rung, and
  continued from its checkpoint. A rung's accuracy is that of the first e epochs of the long
  schedule (learning rate still high), exactly what successive halving sees. Each rung
  records top-1, the test loss and the sum of training losses so far (TSE, Ru et al. 2021);
- the last rung (the target) with ``seeds`` training seeds for the first ``repeats``
  candidates: the target's own noise (ICC, the expected-tau ceiling);
- short schedules of their own (e.g. a whole 3-epoch run, warm-up and cosine to the end).

Every network trains with the seed keyed to its architecture
(:func:`~dvbench.evaluate.training_seed`; seed k of a candidate is its repeat k), so a
calibration and a search train the same network alike. With ``holdout`` the test set is split
in two halves (alternate images, so each class is split evenly): the run is evaluated on half
A and, from its checkpoint, on half B, and the record keeps both (``top1_a``/``top1_b``) and
the whole set (their weighted mean): a setting chosen on one half can be confirmed on the
other. Every run goes through the :class:`~dvbench.evaluate.Evaluator` a search uses: it
trains (``train``), scores the proxies (``score_proxies``) and evaluates half B from the
run's checkpoint (``evaluate_weights``).

Every finished unit is appended to ``records.jsonl`` in the calibration's folder as soon as
it is done (and a ladder run keeps its checkpoint), so a killed run re-run with the same
command recomputes nothing it had finished. ``shard=(i, n)`` splits the candidates among n
processes sharing one folder. :func:`~dvbench.calibrate.summarize_calibration` turns the
records into the tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dvbench.calibrate._plan import RECORDS_FILE, CalibrationPlan, record_key
from dvbench.calibrate._summary import summarize_calibration
from dvbench.errors import UsageError
from dvbench.evaluate import EvaluationFailure, Evaluator, training_seed
from dvbench.files import ensure_folder
from dvbench.space.definition import SearchSpace
from dvbench.stats.outcomes import ImageOutcomes
from dvbench.train import Budget, DataSpec, ProxyData, TrainSettings


def candidates_of(space: SearchSpace, count: int, seed: int) -> list[tuple[dict[str, Any], Any]]:
    """The calibration's ``count`` candidates: distinct, buildable, drawn at random with
    ``seed`` (:meth:`SearchSpace.random_candidates`) at the training data's resolution;
    UsageError when the space has fewer."""
    pairs = space.random_candidates(count, seed, img_size=space.resolution)
    if len(pairs) < count:
        raise UsageError(f"space {space.name}: found only {len(pairs)} distinct valid candidates")
    return pairs


class _Records:
    """The calibration's durable record: one JSON object per line, appended and fsynced.

    A line cut by a crash is skipped (that unit runs again) and the file is mended with a
    newline before the next append, so a torn line never swallows the next record.
    """

    def __init__(self, folder: Path, header: dict[str, Any]):
        self.path = folder / RECORDS_FILE
        ensure_folder(folder, "calibration folder")
        self.done: dict[tuple, dict[str, Any]] = {}
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        records = [r for r in map(_parse_line, text.splitlines()) if r is not None]
        plans = [r for r in records if r.get("unit") == "plan"]
        if plans and plans[0] != header:
            raise UsageError(
                f"{self.path} was made with other settings; give another --name, or "
                "delete the folder to start over"
            )
        if records and not plans:
            raise UsageError(
                f"{self.path} has measurements but no plan line; give another --name, or "
                "delete the folder to start over"
            )
        for record in records:
            if record.get("unit") != "plan":
                self.done[record_key(record)] = record
        if text and not text.endswith("\n"):
            self._write("\n")
        if not plans:
            self._append(header)

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        self._append(record)
        self.done[record_key(record)] = record
        return record

    def _append(self, record: dict[str, Any]) -> None:
        self._write(json.dumps(record, sort_keys=True) + "\n")

    def _write(self, text: str) -> None:
        # one write() of the whole line on an O_APPEND descriptor: shards appending to the
        # same file never interleave parts of their lines (a buffered file may split a long
        # line, such as one carrying per-image outcomes, into several writes)
        data = text.encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):  # only on a full disk or a signal; finish the line
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse_line(line: str) -> dict[str, Any] | None:
    """A record, or None for a blank line or one cut by a crash (that unit runs again)."""
    try:
        record = json.loads(line) if line.strip() else None
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "unit" in record else None


def read_records(folder: Path) -> list[dict[str, Any]]:
    """Every whole record of a calibration folder, the plan first (lines cut by a crash are
    skipped; only the first plan line counts)."""
    path = folder / RECORDS_FILE
    if not path.is_file():
        raise UsageError(f"no calibration at {folder} ({RECORDS_FILE} missing)")
    records = [r for r in map(_parse_line, path.read_text(errors="replace").splitlines()) if r]
    plans = [r for r in records if r.get("unit") == "plan"]
    return plans[:1] + [r for r in records if r.get("unit") != "plan"]


def split_test(data: ProxyData) -> tuple[ProxyData, tuple[torch.Tensor, torch.Tensor]]:
    """``data`` evaluated on half A of its test set (even positions), and half B (odd)."""
    a = dataclasses.replace(data, test_images=data.test_images[0::2],
                            test_labels=data.test_labels[0::2])  # fmt: skip
    return a, (data.test_images[1::2], data.test_labels[1::2])


class _LossSum:
    """Sums the training losses a run reports (its progress callback), from ``start_step``."""

    def __init__(self, start_step: int, start_sum: float) -> None:
        self.step, self.total, self.steps_per_epoch = start_step, start_sum, None

    def __call__(self, progress) -> None:
        self.total += progress.loss * (progress.step - self.step)
        self.step = progress.step
        if progress.epoch > 0:
            self.steps_per_epoch = progress.step / progress.epoch


@dataclass
class _Unit:
    """One training run of a calibration (a rung of a seed's ladder, or a schedule)."""

    evaluator: Evaluator
    cfg: Any
    seed: int
    checkpoint: Path
    holdout: tuple[torch.Tensor, torch.Tensor] | None

    def train(self, record: dict[str, Any], previous: Mapping[str, Any] | None) -> dict:
        steps, loss_sum = (previous or {}).get("steps", 0), (previous or {}).get("loss_sum", 0.0)
        tracker = _LossSum(steps, loss_sum or 0.0)
        record = {**record, "train_seed": self.seed}
        try:
            result = self.evaluator.train(
                self.cfg, seed=self.seed, budget=Budget(epochs=record["epochs"]),
                checkpoint=self.checkpoint, progress=tracker,
            )  # fmt: skip
        except EvaluationFailure as exc:
            return {**record, "top1": None, "seconds": None, "failure": str(exc)}
        whole = result.resumed_from_step == steps and loss_sum is not None
        per_epoch = tracker.steps_per_epoch or (result.steps / result.epochs)
        record.update(
            steps=result.steps, loss_sum=tracker.total if whole else None,
            tse=tracker.total / per_epoch if whole else None,
            top1=result.top1, test_loss=result.test_loss,
            # a rung costs everything trained up to it, plus its evaluation
            seconds=result.train_time_s + result.eval_time_s,
        )  # fmt: skip
        if self.holdout is not None:
            record.update(self._both_halves(result))
        elif result.outcomes is not None:
            record["outcomes"] = result.outcomes.pack()
        return record

    def _both_halves(self, result) -> dict[str, Any]:
        """Half A's figures (the run's own evaluation), half B's (from the checkpoint's
        weights), and the whole test set's (their weighted means)."""
        images, labels = self.holdout
        data = self.evaluator.data
        half_b = self.evaluator.evaluate_weights(self.cfg, self.checkpoint, images, labels)
        top1_b, loss_b = half_b.top1, half_b.mean_loss
        n_a, n_b = data.num_test, len(labels)
        mean = lambda a, b: (a * n_a + b * n_b) / (n_a + n_b)  # noqa: E731
        out = {
            "top1_a": result.top1, "top1_b": top1_b, "loss_a": result.test_loss, "loss_b": loss_b,
            "top1": mean(result.top1, top1_b), "test_loss": mean(result.test_loss, loss_b),
            "test_images": n_a + n_b,
        }  # fmt: skip
        if result.outcomes is not None:  # the whole test set, in its own order
            out["outcomes"] = ImageOutcomes.interleave(result.outcomes, half_b).pack()
        return out


def calibrate(
    space: SearchSpace,
    plan: CalibrationPlan,
    *,
    data: DataSpec,
    train: TrainSettings,
    folder: Path,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    on_unit: Callable[[str], None] | None = None,
    shard: tuple[int, int] | None = None,
    only: frozenset[int] | None = None,
    only_seeds: frozenset[int] | None = None,
):
    """Measure every signal of ``plan`` on ``space``'s candidates, trained on ``data`` with
    ``train`` (its budget replaced by the plan's), recording into ``folder``.

    Resumable: re-running with the same arguments and folder reads what is recorded and only
    measures the rest. ``on_unit`` is told the kind of each unit measured (tests count them).
    ``shard=(i, n)`` measures only the candidates whose index is ``i`` modulo ``n`` and returns
    None: n processes (one core each) then share one folder, and a last run without ``shard``
    measures nothing new and returns the summary (a :class:`Calibration`). ``only`` (candidate
    indices) measures just those of the sampled candidates (an experiment extending an earlier
    calibration of the same plan measures the ones it lacks) and returns None too, and so does
    ``only_seeds`` (seed indices): just those seeds of each candidate (every candidate's first
    seeds before any third one, when time is short).
    """
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise UsageError(f"shard: want I/N with 0 <= I < N, got {shard[0]}/{shard[1]}")
    if only is not None and not all(0 <= i < plan.candidates for i in only):
        raise UsageError(f"only: candidate indices from 0 to {plan.candidates - 1}, got "
                         f"{sorted(only)}")  # fmt: skip
    log = log or (lambda message: None)
    header = {
        "unit": "plan",
        "candidate": None,
        "space": space.name,
        "data": dataclasses.asdict(data),
        "train": dataclasses.asdict(train),
        "plan": dataclasses.asdict(plan),
        "seeding": "architecture",
    }
    records = _Records(folder, json.loads(json.dumps(header)))
    dataset = data.load(seed=plan.seed)
    evaluated, holdout = split_test(dataset) if plan.holdout else (dataset, None)
    evaluator = Evaluator(profile=space.profile, data=evaluated, train=train, device=device)
    pairs = candidates_of(dataclasses.replace(space, data=data), plan.candidates, plan.seed)
    flat = {"max_steps": None, "time_limit_s": None}
    ladder = evaluator.with_train(dataclasses.replace(train, epochs=plan.target, **flat))
    checkpoints = folder / "checkpoints"

    def finish(record: dict[str, Any]) -> None:
        records.add(record)
        if on_unit is not None:
            on_unit(record["unit"])

    for index, (knobs, cfg) in enumerate(pairs):
        if shard is not None and index % shard[1] != shard[0]:
            continue
        if only is not None and index not in only:
            continue
        where = f"candidate {index + 1}/{len(pairs)}"
        if ("proxies", index, None, 0) not in records.done:
            log(f"{where}: training-free proxies")
            seed = training_seed(cfg, plan.seed)
            scores = evaluator.score_proxies(cfg, seed=seed, proxies=plan.proxies)
            finish({
                "unit": "proxies", "candidate": index, "knobs": knobs,
                "config": cfg.to_dict(), "values": scores.values,
                "seconds": {n: s.seconds for n, s in scores.scores.items()},
                "failures": scores.failures,
            })  # fmt: skip
        for s in range(plan.seeds_of(index)):
            if only_seeds is not None and s not in only_seeds:
                continue
            run = _Unit(ladder, cfg, training_seed(cfg, plan.seed, repeat=s),
                        checkpoints / f"candidate_{index}_seed{s}.pt", holdout)  # fmt: skip
            previous = None
            for epochs in plan.ladder:
                key = ("rung", index, epochs, s)
                if key not in records.done:
                    log(f"{where}, seed {s + 1}: rung {epochs:g} of {plan.target:g} epochs")
                    base = {"unit": "rung", "candidate": index, "epochs": epochs, "seed": s}
                    finish(run.train(base, previous))
                previous = records.done[key]
            run.checkpoint.unlink(missing_ok=True)
        for epochs in plan.schedules:
            if ("schedule", index, epochs, 0) in records.done:
                continue
            log(f"{where}: a {epochs:g}-epoch schedule of its own")
            own = evaluator.with_train(dataclasses.replace(train, epochs=epochs, **flat))
            checkpoint = checkpoints / f"candidate_{index}_schedule{epochs:g}.pt"
            run = _Unit(own, cfg, training_seed(cfg, plan.seed), checkpoint, holdout)
            finish(run.train({"unit": "schedule", "candidate": index, "epochs": epochs}, None))
            run.checkpoint.unlink(missing_ok=True)
    if shard is not None or only is not None or only_seeds is not None:
        return None
    return summarize_calibration(
        list(records.done.values()), plan, space=space.name, data=dataset.describe(),
        test_images=dataset.num_test,
    )  # fmt: skip
