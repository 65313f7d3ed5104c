"""The short-schedule ("proxy") training loop: one candidate, one budget, one result.

Built for many short runs on small images, where the loop's own overhead is what decides
throughput: the data sit on the device as uint8 and are augmented per batch there
(:mod:`dvbench.train.data`); the optimiser is fused (or ``foreach``) AdamW; the host waits for
the device only to check that the loss is finite (every step on CPU, where it costs nothing,
every few steps on accelerators).

Runs are reproducible: model initialisation, drop path, shuffling and augmentation are seeded
from ``seed`` (the caller's global RNG state is restored afterwards), so on CPU the same seed,
data and settings give the same accuracy and loss. A diverging or out-of-memory run is a
result with ``status="failed"`` and a reason, not an exception: the caller decides what to do.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay

from dvbench.errors import UsageError
from dvbench.models import display_name
from dvbench.runtime import check_output_path, num_threads, resolve_device
from dvbench.stats.outcomes import ImageOutcomes
from dvbench.train.candidate import ModelSpec, build_candidate
from dvbench.train.data import Normalizer, ProxyData, random_crop_flip
from dvbench.train.settings import OUTPUT_SUFFIXES, Budget, TrainSettings

# Accelerators queue work asynchronously; reading the loss back every step would stall them.
_SYNC_EVERY_ACCELERATOR = 20
logger = logging.getLogger(__name__)

_OOM_ERRORS: tuple[type[BaseException], ...] = (
    (torch.OutOfMemoryError,)
    if hasattr(torch, "OutOfMemoryError")
    else (torch.cuda.OutOfMemoryError,)
)


class TrainProgress(NamedTuple):
    """What a progress display needs; sent every few steps and at the end of training."""

    step: int
    total_steps: int | None
    epoch: float
    loss: float
    images_per_s: float
    elapsed_s: float
    fraction: float  # of the budget, 0..1


ProgressCallback = Callable[[TrainProgress], None]


@dataclass(frozen=True)
class TrainResult:
    """One proxy run. Accuracies are percentages on the held-out split (None if it failed).

    ``final_loss`` is the mean training loss over the last epoch's worth of steps;
    ``images_per_s`` is the steady training speed: steps after the first (which pays one-off
    set-up costs), without evaluation or model construction; ``train_time_s`` is all steps.
    ``model_config`` holds the Dual-ViT config fields of the trained network (None for other
    models), so a shrunk candidate can be rebuilt exactly.
    """

    model: str
    status: str  # "ok" or "failed"
    reason: str | None
    top1: float | None
    top5: float | None
    test_loss: float | None
    final_loss: float | None
    params: int
    epochs: float
    steps: int
    images_seen: int
    train_time_s: float
    eval_time_s: float
    images_per_s: float
    data: str
    resolution: int
    num_classes: int
    num_train: int
    num_test: int
    seed: int
    device: str
    settings: TrainSettings
    model_config: dict[str, Any] | None = None
    resumed_from_step: int = 0  # steps trained by earlier calls (read from the checkpoint)
    #: what happened to a checkpoint that could not be continued (set aside, trained afresh)
    note: str | None = None
    #: every test image's outcome (paired comparisons); not part of the flat record
    outcomes: ImageOutcomes | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the settings are a nested mapping (the per-image outcomes are left
        out: :meth:`ImageOutcomes.pack` stores them)."""
        fields = dataclasses.asdict(dataclasses.replace(self, outcomes=None))
        fields.pop("outcomes")
        return fields

    def to_row(self) -> dict[str, Any]:
        """One flat table row: settings become ``settings.<field>`` columns, the config JSON."""
        row = self.to_dict()
        settings = row.pop("settings")
        config = row.pop("model_config")
        row.update({f"settings.{key}": value for key, value in settings.items()})
        row["model_config"] = None if config is None else json.dumps(config, separators=(",", ":"))
        return row

    def save(self, path: str | Path) -> Path:
        """Write JSON (``.json``) or append a row to a CSV table (``.csv``, header if new)."""
        path = check_output_path(path, OUTPUT_SUFFIXES)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
            return path
        row = self.to_row()
        exists = path.exists() and path.stat().st_size > 0
        if exists:
            with path.open(newline="") as fh:
                header = next(csv.reader(fh), [])
            if header != list(row):
                raise UsageError(f"{path}: existing CSV has other columns; write a new file")
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if not exists:
                writer.writeheader()
            writer.writerow(row)
        return path


def train_candidate(
    model_or_spec: nn.Module | ModelSpec,
    data: ProxyData,
    settings: TrainSettings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    overrides: Mapping[str, Any] | None = None,
    width_mult: float | None = None,
    progress: ProgressCallback | None = None,
    stop: Budget | None = None,
    checkpoint: str | Path | None = None,
) -> TrainResult:
    """Train one candidate on ``data`` under ``settings`` and evaluate it on the test split.

    ``model_or_spec`` is a model spec (built here, seeded, for ``data``'s classes and
    resolution, with ``overrides``/``width_mult`` as in :func:`build_candidate`) or a
    ready module (trained in place; its initialisation is the caller's).

    ``stop`` ends this call early (a rung of a budget ladder); the schedule stays that of
    ``settings``. With ``checkpoint`` (a file path), a run found there is continued (model,
    optimizer, schedule position, random state), and the state at the stop is written back
    (atomically), so a later call with a larger ``stop`` goes on where this one ended.
    """
    settings = settings or TrainSettings()
    device = resolve_device(str(device))
    rng_devices = []
    if device.type == "cuda":
        rng_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    with num_threads(settings.num_threads), torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        if isinstance(model_or_spec, nn.Module):
            if overrides or width_mult is not None:
                raise ValueError("overrides: only apply when the model is given as a spec")
            model, name = model_or_spec, _module_name(model_or_spec)
        else:
            model = build_candidate(
                model_or_spec,
                num_classes=data.num_classes,
                resolution=data.resolution,
                drop_path_rate=settings.drop_path_rate,
                overrides=overrides,
                width_mult=width_mult,
            )
            name = display_name(model_or_spec)
        run = _Run(model, data, settings, seed=seed, device=device, progress=progress, stop=stop)
        if checkpoint is not None and checkpoint.exists():
            run.resume(checkpoint)
        return run.execute(name, checkpoint=checkpoint)


def _module_name(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return cfg.get("architecture") or type(model).__name__


#: Version of the checkpoint layout (1: before identities; those are set aside, not trusted).
CHECKPOINT_FORMAT = 2


class _Rejected(Exception):
    """A checkpoint that is not continued; the message says why."""


def _load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """Tensors and plain containers only (``weights_only``): a pickle that would build any
    other object, run code included, is refused, as is a damaged or truncated file."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors have many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise _Rejected(f"does not load as weights: {first}") from None
    if not isinstance(state, dict):
        raise _Rejected(f"holds a {type(state).__name__}, not a checkpoint")
    return state


class _Failure(Exception):
    """Ends a run early with a reason (a non-finite loss)."""


class _Run:
    """The state of one training run; ``execute`` turns it into a :class:`TrainResult`."""

    def __init__(
        self,
        model: nn.Module,
        data: ProxyData,
        settings: TrainSettings,
        *,
        seed: int,
        device: torch.device,
        progress: ProgressCallback | None,
        stop: Budget | None = None,
    ) -> None:
        self.data, self.settings, self.device, self.seed = data, settings, device, seed
        self.progress = progress
        # None keeps each model's own layout (Dual-ViT already keeps its convs channels-last)
        self.memory_format = torch.channels_last if settings.channels_last else None
        self.model = model.to(device)
        if self.memory_format is not None:
            self.model = model.to(memory_format=self.memory_format)
        self.params = sum(p.numel() for p in model.parameters())
        cfg = getattr(model, "cfg", None)
        self.model_config = cfg.to_dict() if hasattr(cfg, "to_dict") else None
        self.amp_dtype = _amp_dtype(settings.amp, device)
        self.batch_size = min(settings.batch_size, data.num_train)
        self.steps_per_epoch = max(1, data.num_train // self.batch_size)  # full batches only
        self.total_steps = _total_steps(settings, self.steps_per_epoch)
        self.stop_steps, self.stop_seconds = _stop_steps(stop, self.steps_per_epoch), None
        if stop is not None:
            self.stop_seconds = stop.seconds
        self.step = 0
        self.phase = "training"
        self.losses: list[float] = []
        self.train_time = self.eval_time = self.first_step_time = 0.0
        # The training state a checkpoint carries besides the model's weights.
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = make_optimizer(self.model, settings)
        self.scaler = torch.amp.GradScaler(device.type) if self.amp_dtype == torch.float16 else None
        self.order: torch.Tensor | None = None  # this epoch's shuffled sample order
        self.position = 0  # batches of ``order`` already used
        self.resumed_from_step = 0
        self.note: str | None = None  # a checkpoint set aside, and why
        self.prior_time = 0.0  # training seconds of earlier calls

    # -------------------------------------------------------------------------- checkpoints
    def identity(self) -> str:
        """Which run a checkpoint belongs to: a hash of the network (every parameter's and
        buffer's name and shape, and the config when there is one), the seed, the settings and
        the data (name, sizes, classes, resolution)."""
        network = [(k, tuple(v.shape)) for k, v in self.model.state_dict().items()]
        data = self.data
        described = {
            "network": network,
            "config": self.model_config,
            "seed": self.seed,
            "settings": dataclasses.asdict(self.settings),
            "data": [data.name, data.num_train, data.num_test, data.num_classes, data.resolution],
        }
        return hashlib.sha256(repr(described).encode()).hexdigest()

    def _state(self) -> dict[str, Any]:
        # Only tensors, plain containers and numbers: loadable with weights_only=True.
        return {
            "format": CHECKPOINT_FORMAT,
            "identity": self.identity(),
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else None,
            "order": self.order.cpu() if self.order is not None else None,
            "position": self.position,
            "losses": self.losses[-self.steps_per_epoch :],
            "train_time": self.train_time,
            "first_step_time": self.first_step_time,
        }

    def save(self, path: Path) -> None:
        """Write the run's state atomically (a crash leaves the previous checkpoint whole)."""
        from dvbench.files import write_with

        path.parent.mkdir(parents=True, exist_ok=True)
        write_with(lambda tmp: torch.save(self._state(), tmp), path)

    def resume(self, path: Path) -> None:
        """Continue the run saved at ``path``. A checkpoint that does not load (damaged,
        truncated, or a pickle that is more than tensors) or belongs to another run (network,
        seed, settings or data) is renamed aside with one logged line, and the run starts from
        scratch; :attr:`note` says why."""
        try:
            state = _load_checkpoint(path, self.device)
            if state.get("format") != CHECKPOINT_FORMAT:
                raise _Rejected(f"format {state.get('format')!r}, not {CHECKPOINT_FORMAT}")
            if state.get("identity") != self.identity():
                raise _Rejected("made for another network, seed, settings or data")
            self._restore(state)
        except _Rejected as exc:
            aside = path.with_name(f"{path.name}.rejected-{time.strftime('%Y%m%dT%H%M%S')}")
            os.replace(path, aside)
            self.note = (
                f"checkpoint {path.name} set aside as {aside.name} ({exc}); trained from scratch"
            )
            logger.warning("%s", self.note)

    def _restore(self, state: dict[str, Any]) -> None:
        # every field is read and checked before the model, optimizer or RNG changes
        try:
            fields = {
                "model": state["model"], "optimizer": state["optimizer"],
                "scaler": state["scaler"], "generator": state["generator"],
                "torch_rng": state["torch_rng"], "cuda_rng": state["cuda_rng"],
                "order": state["order"], "position": int(state["position"]),
                "step": int(state["step"]), "losses": [float(v) for v in state["losses"]],
                "train_time": float(state["train_time"]),
                "first_step_time": float(state["first_step_time"]),
            }  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise _Rejected(f"incomplete: {type(exc).__name__} {exc}") from None
        self.model.load_state_dict(fields["model"])
        self.optimizer.load_state_dict(fields["optimizer"])
        if self.scaler is not None and fields["scaler"] is not None:
            self.scaler.load_state_dict(fields["scaler"])
        self.generator.set_state(fields["generator"])
        torch.set_rng_state(fields["torch_rng"])
        if fields["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(fields["cuda_rng"], self.device)
        order = fields["order"]
        self.order = order.to(self.device) if order is not None else None
        self.position = fields["position"]
        self.step = self.resumed_from_step = fields["step"]
        self.losses = fields["losses"]
        self.prior_time = self.train_time = fields["train_time"]
        self.first_step_time = fields["first_step_time"]

    # --------------------------------------------------------------------------- top level
    def execute(self, name: str, *, checkpoint: Path | None = None) -> TrainResult:
        status, reason = "ok", None
        top1 = top5 = test_loss = outcomes = None
        try:
            self._train()
            if checkpoint is not None:
                self.save(checkpoint)
            self.phase = "evaluation"
            start = time.perf_counter()
            outcomes, top5 = evaluate_images(
                self.model,
                self.data.test_images,
                self.data.test_labels,
                normalizer=Normalizer(self.data.mean, self.data.std, device=self.device),
                batch_size=self.settings.eval_batch_size,
                amp_dtype=self.amp_dtype,
                memory_format=self.memory_format,
            )
            top1, test_loss = (outcomes.top1, outcomes.mean_loss) if len(outcomes) else (0.0, 0.0)
            self.eval_time = time.perf_counter() - start
        except _Failure as exc:
            status, reason = "failed", str(exc)
        except _OOM_ERRORS as exc:
            status, reason = "failed", self._oom_reason(exc)
        except RuntimeError as exc:
            if "can't allocate memory" not in str(exc):  # the CPU allocator's OOM
                raise
            status, reason = "failed", self._oom_reason(exc)
        if status == "failed" and self.device.type == "cuda":
            torch.cuda.empty_cache()
        window = self.losses[-self.steps_per_epoch :]
        final_loss = sum(window) / len(window) if window and status == "ok" else None
        images = self.step * self.batch_size
        # steady-state speed: the first step pays one-off costs (kernel selection, allocator)
        steady_time = self.train_time - self.first_step_time
        if self.step > 1 and steady_time > 0:
            images_per_s = (images - self.batch_size) / steady_time
        else:
            images_per_s = images / self.train_time if self.train_time > 0 else 0.0
        return TrainResult(
            model=name,
            status=status,
            reason=reason,
            top1=top1,
            top5=top5,
            test_loss=test_loss,
            final_loss=final_loss,
            params=self.params,
            epochs=self.step / self.steps_per_epoch,
            steps=self.step,
            images_seen=images,
            train_time_s=self.train_time,
            eval_time_s=self.eval_time,
            images_per_s=images_per_s,
            data=self.data.name,
            resolution=self.data.resolution,
            num_classes=self.data.num_classes,
            num_train=self.data.num_train,
            num_test=self.data.num_test,
            seed=self.seed,
            device=str(self.device),
            settings=self.settings,
            model_config=self.model_config,
            resumed_from_step=self.resumed_from_step,
            note=self.note,
            outcomes=outcomes if status == "ok" else None,
        )

    def _oom_reason(self, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "evaluation" if self.phase == "evaluation" else f"step {self.step + 1}"
        size = f"batch {self.batch_size}, {self.data.resolution} px"
        return f"out of memory at {where} ({size}): {first}"

    # ---------------------------------------------------------------------------- training
    def _train(self) -> None:
        settings, device, model = self.settings, self.device, self.model
        generator, optimizer, scaler = self.generator, self.optimizer, self.scaler
        images = self.data.train_images.to(device)
        labels = self.data.train_labels.to(device)
        normalize = Normalizer(self.data.mean, self.data.std, device=device)
        resolution = self.data.resolution
        padding = settings.crop_padding if settings.crop_padding is not None else resolution // 8
        params = [p for p in model.parameters() if p.requires_grad]
        autocast = torch.autocast(
            device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        )
        sync_every = 1 if device.type == "cpu" else _SYNC_EVERY_ACCELERATOR
        pending: list[torch.Tensor] = []

        def step(idx: torch.Tensor, start: float) -> torch.Tensor:
            x = images.index_select(0, idx)
            if settings.augment:
                x = random_crop_flip(x, generator, padding=padding)
            x = normalize(x)
            if self.memory_format is not None:
                x = x.contiguous(memory_format=self.memory_format)
            lr = settings.lr * settings.lr_factor(self._progress(start, self.step + 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                logits = _logits(model(x)).float()
                loss = F.cross_entropy(
                    logits, labels.index_select(0, idx), label_smoothing=settings.label_smoothing
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)  # clip the true gradients
            if settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, settings.grad_clip, foreach=True)
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)
                scaler.update()
            return loss.detach()

        model.train()
        start = time.perf_counter()
        try:
            while not self._budget_spent(start):
                if self.order is None or self.position >= self.steps_per_epoch:
                    # a new epoch: drawn only when a step needs it, so a run stopped at an
                    # epoch boundary and continued later draws exactly what one run draws
                    self.order = torch.randperm(self.data.num_train, generator=generator).to(device)
                    self.position = 0
                first = self.position * self.batch_size
                pending.append(step(self.order[first : first + self.batch_size], start))
                self.position += 1
                self.step += 1
                if self.step == 1:
                    self.first_step_time = self._elapsed(start)
                if len(pending) >= sync_every:
                    self._check(pending, start)
            if pending:
                self._check(pending, start)
        finally:
            self.train_time = self.prior_time + self._elapsed(start)

    def _elapsed(self, start: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def _budget_spent(self, start: float) -> bool:
        for limit in (self.total_steps, self.stop_steps):
            if limit is not None and self.step >= limit:
                return True
        if self.step == 0:
            return False
        call_s = time.perf_counter() - start
        horizon = self.settings.time_limit_s
        if horizon is not None and self.prior_time + call_s >= horizon:
            return True
        return self.stop_seconds is not None and self.prior_time + call_s >= self.stop_seconds

    def _progress(self, start: float, step: int) -> float:
        """Fraction of the schedule's budget done after ``step`` steps (steps or time)."""
        fractions = [0.0]
        if self.total_steps is not None:
            fractions.append(step / self.total_steps)
        if self.settings.time_limit_s is not None:
            elapsed = self.prior_time + time.perf_counter() - start
            fractions.append(elapsed / self.settings.time_limit_s)
        return min(max(fractions), 1.0)

    def _check(self, pending: list[torch.Tensor], start: float) -> None:
        """Read the pending losses back (one sync), stop on a non-finite one, report progress."""
        values = torch.stack(pending).tolist()
        first_step = self.step - len(values) + 1
        pending.clear()
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                self.step = first_step + offset
                raise _Failure(f"non-finite loss ({value}) at step {self.step}")
        self.losses.extend(values)
        if self.progress is not None:
            elapsed = self.prior_time + time.perf_counter() - start
            self.progress(
                TrainProgress(
                    step=self.step,
                    total_steps=self.total_steps,
                    epoch=self.step / self.steps_per_epoch,
                    loss=sum(values) / len(values),
                    images_per_s=self.step * self.batch_size / elapsed if elapsed > 0 else 0.0,
                    elapsed_s=elapsed,
                    fraction=self._progress(start, self.step),
                )
            )


def _total_steps(settings: TrainSettings, steps_per_epoch: int) -> int | None:
    budgets = []
    if settings.epochs is not None:
        budgets.append(max(1, math.ceil(settings.epochs * steps_per_epoch - 1e-9)))
    if settings.max_steps is not None:
        budgets.append(settings.max_steps)
    return min(budgets) if budgets else None


def _stop_steps(stop: Budget | None, steps_per_epoch: int) -> int | None:
    if stop is None:
        return None
    return _total_steps(
        TrainSettings(epochs=stop.epochs, max_steps=stop.steps, time_limit_s=stop.seconds),
        steps_per_epoch,
    )


def _amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW without decay on norms, biases and the model's ``no_weight_decay()`` parameters.

    The fused kernel (one pass over all parameters) is tried first; ``foreach`` otherwise.
    """
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    groups = param_groups_weight_decay(model, settings.weight_decay, no_weight_decay_list=skip)
    try:
        return torch.optim.AdamW(groups, lr=settings.lr, fused=True)
    except (RuntimeError, ValueError):  # fused not supported for these tensors or device
        return torch.optim.AdamW(groups, lr=settings.lr, foreach=True)


def _logits(output: Any) -> torch.Tensor:
    # a few timm models (distilled DeiT) return (logits, aux logits) in train mode
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.inference_mode()
def evaluate_images(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    normalizer: Normalizer,
    batch_size: int = 500,
    amp_dtype: torch.dtype | None = None,
    memory_format: torch.memory_format | None = None,
) -> tuple[ImageOutcomes, float]:
    """Every test image's outcome (right or wrong at top-1, its loss) and the top-5 accuracy
    (percent; top-k with k = min(5, classes))."""
    model.eval()
    device = next(model.parameters()).device
    correct1, losses = [], []
    correct5 = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, len(labels), batch_size):
        x = images[start : start + batch_size].to(device, non_blocking=True)
        y = labels[start : start + batch_size].to(device, non_blocking=True)
        x = normalizer(x)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        with torch.autocast(
            device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
        ):
            logits = _logits(model(x)).float()
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices.eq(y[:, None])
        correct1.append(hits[:, 0])
        correct5 += hits.any(dim=1).sum()
        losses.append(F.cross_entropy(logits, y, reduction="none"))
    if not correct1:
        return ImageOutcomes(np.zeros(0, bool), np.zeros(0, np.float32)), 0.0
    outcomes = ImageOutcomes(
        torch.cat(correct1).cpu().numpy(), torch.cat(losses).double().cpu().numpy()
    )
    return outcomes, 100.0 * correct5.item() / len(labels)


def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **options: Any
) -> tuple[float, float, float]:
    """Top-1 and top-5 accuracy (percent; top-k with k = min(5, classes)) and mean loss, from
    :func:`evaluate_images` (``options``: its keyword arguments)."""
    outcomes, top5 = evaluate_images(model, images, labels, **options)
    if not len(outcomes):
        return 0.0, 0.0, 0.0
    return outcomes.top1, top5, outcomes.mean_loss
