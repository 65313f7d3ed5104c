"""The Evaluator: one candidate in, its metrics out, measured the same way for everyone.

build -> count (params, GFLOPs) -> constraints -> latency/memory when the settings ask ->
proxy training for a budget (continuing from a checkpoint when one is given) -> metrics
with the seconds each step took. Search trials, baselines, ``compare`` and ``calibrate`` all
go through it, so a searched candidate, a Swin baseline and a calibration run are never
measured two ways.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from dvbench.errors import UsageError
from dvbench.metrics import CONSTRAINTS, PREDICTION_OUTSIDE, PROXY_METRICS, violation
from dvbench.models import DualViTConfig, display_name
from dvbench.profile import ProfileResult, ProfileSettings, count_cost, profile_models
from dvbench.stats.outcomes import ImageOutcomes
from dvbench.train import (
    Budget,
    DataSpec,
    ProxyData,
    TrainResult,
    TrainSettings,
    build_candidate,
    train_candidate,
)
from dvbench.train.data import Normalizer
from dvbench.train.loop import ProgressCallback, evaluate_images

if TYPE_CHECKING:  # a type only: evaluating a config needs no space (nor Optuna)
    from dvbench.space import SearchSpace

__all__ = ["Evaluation", "EvaluationFailure", "Evaluator", "ModelSpec"]

ModelSpec = str | Path | DualViTConfig
#: Measured profile columns a candidate's metrics take over (besides params and GFLOPs).
_PROFILE_METRICS = (
    "latency_ms_median",
    "latency_ms_p10",
    "latency_ms_p90",
    "throughput_img_s",
    "peak_mem_mb",
)


class EvaluationFailure(Exception):
    """A candidate that could not be evaluated (its reason is the message); callers record
    it and go on."""


@dataclass
class Evaluation:
    """What evaluating one candidate gave.

    ``status`` is ``"ok"``, ``"over_budget"`` (a constraint is violated: costs measured, not
    trained) or ``"failed"`` (``reason`` says why). ``violations`` are Optuna's constraint
    values: feasible when every one is <= 0 (the relative excess over the bound).
    """

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    violations: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    reason: str | None = None
    profile: ProfileResult | None = None
    training: TrainResult | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. latency_pred_outside

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())


class Evaluator:
    """Turns candidates into metrics under one set of settings.

    ``profile`` says how costs are measured (resolution, timing, memory); ``data`` and
    ``train`` say how candidates are proxy-trained (None: costs only). ``constraints`` are
    the space's bounds (``max_gflops`` ...); a candidate over one is not trained. ``data`` may
    be a :class:`DataSpec` (loaded on first use, with ``seed``) or loaded data.
    """

    def __init__(
        self,
        *,
        profile: ProfileSettings | None = None,
        data: DataSpec | ProxyData | None = None,
        train: TrainSettings | None = None,
        constraints: Mapping[str, float] | None = None,
        device: str = "cpu",
        seed: int = 0,
        num_classes: int = 1000,
        proxies: Sequence[str] = (),
        device_profile: Any = None,
    ) -> None:
        if train is not None and data is None:
            raise ValueError("data: training settings need data to train on")
        unknown = sorted(set(proxies) - set(PROXY_METRICS))
        if unknown:
            raise ValueError(f"proxies: unknown {unknown[0]!r} ({', '.join(PROXY_METRICS)})")
        if proxies and data is None:
            raise ValueError("data: training-free proxies score real batches; give data")
        self.proxies = tuple(proxies)
        self.profile_settings = profile or ProfileSettings(latency=False)
        self.train_settings = train
        self.constraints = dict(constraints or {})
        unknown = sorted(set(self.constraints) - set(CONSTRAINTS))
        if unknown:
            raise ValueError(f"constraints.{unknown[0]}: unknown ({', '.join(CONSTRAINTS)})")
        self.device = device
        self.seed = seed
        self._data_spec = data if isinstance(data, DataSpec) else None
        self._data = data if isinstance(data, ProxyData) else None
        self._num_classes = num_classes
        #: a :class:`~dvbench.latency.DeviceProfile`: costs() adds ``latency_pred_ms``
        self.device_profile = device_profile

    @classmethod
    def for_space(
        cls, space: SearchSpace, *, device: str = "cpu", seed: int = 0, **extra: Any
    ) -> Evaluator:
        """The evaluator a search space describes: it trains only when an objective needs it
        and scores the training-free proxies its objectives and constraints name (``extra``:
        a subclass's own arguments)."""
        trains = space.needs_training and space.data is not None
        return cls(
            profile=space.profile,
            data=space.data if trains or space.proxies else None,
            train=space.train if trains else None,
            proxies=space.proxies,
            constraints=space.constraints,
            device=device,
            seed=seed,
            num_classes=space.num_classes,
            device_profile=space.device if space.predicts_latency else None,
            **extra,
        )

    def with_train(self, settings: TrainSettings) -> Evaluator:
        """The same evaluator (sharing the loaded data) with other training settings."""
        other = copy.copy(self)
        other.train_settings = settings
        return other

    # ------------------------------------------------------------------------ properties
    @property
    def trains(self) -> bool:
        return self.train_settings is not None

    @property
    def data(self) -> ProxyData | None:
        """The proxy data, loaded once (None for a costs-only evaluator)."""
        if self._data is None and self._data_spec is not None:
            self._data = self._data_spec.load(seed=self.seed)
        return self._data

    @property
    def num_classes(self) -> int:
        has_data = self._data is not None or self._data_spec is not None
        return self.data.num_classes if has_data else self._num_classes

    @property
    def resolution(self) -> int:
        """The resolution costs are measured at."""
        return self.profile_settings.resolution

    # ---------------------------------------------------------------------------- steps
    def build(self, spec: ModelSpec, *, overrides: Mapping[str, Any] | None = None) -> nn.Module:
        """The candidate at the profiling resolution, with the data's classes."""
        if isinstance(spec, DualViTConfig):
            try:
                spec = spec.replace(num_classes=self.num_classes, img_size=self.resolution)
            except ValueError as exc:
                raise EvaluationFailure(f"invalid config: {exc}") from None
        return build_candidate(
            spec, num_classes=self.num_classes, resolution=self.resolution, overrides=overrides
        )

    def costs(
        self,
        spec: ModelSpec | nn.Module,
        *,
        overrides: Mapping[str, Any] | None = None,
        timings: dict[str, float] | None = None,
        notes: dict[str, Any] | None = None,
    ) -> tuple[dict[str, float], ProfileResult | None]:
        """Params and GFLOPs; latency/memory too when the profile settings measure them, and
        ``latency_pred_ms`` with a device profile (``notes`` gets ``latency_pred_outside``
        when the candidate lies outside what the profile measured).

        :func:`profile_models` counts FLOPs itself, so a candidate that is timed is traced
        once; a predicted latency comes from that same trace when nothing is timed.
        """
        timings = timings if timings is not None else {}
        start = time.perf_counter()
        model = spec if isinstance(spec, nn.Module) else self.build(spec, overrides=overrides)
        predicted: dict[str, float] = {}
        if self.device_profile is not None:
            predicted = self._predicted(model, notes)
        if not self.profile_settings.measuring:
            if predicted:  # the features' trace counted FLOPs and parameters already
                metrics = {k: predicted.pop(k) for k in ("params_m", "gflops")}
            else:
                cost = count_cost(model, self.resolution)
                metrics = {"params_m": cost.params / 1e6, "gflops": cost.gflops}
            timings["count_s"] = time.perf_counter() - start
            return {**metrics, **predicted}, None
        result = profile_models([model], self.profile_settings)[0]
        timings["profile_s"] = time.perf_counter() - start
        if result.status != "ok":
            raise EvaluationFailure(f"profiling failed: {result.status}")
        metrics = {"params_m": result.cost.params / 1e6, "gflops": result.cost.gflops}
        row = result.row()
        metrics.update({k: float(row[k]) for k in _PROFILE_METRICS if row.get(k) is not None})
        if predicted:
            metrics["latency_pred_ms"] = predicted["latency_pred_ms"]
        return metrics, result

    def _predicted(self, model: nn.Module, notes: dict[str, Any] | None) -> dict[str, float]:
        """``latency_pred_ms`` from the device profile, with the params and GFLOPs of the
        same trace."""
        from dvbench.latency import cost_features

        features = cost_features(model, self.resolution)
        outside = self.device_profile.outside(features)
        if outside and notes is not None:
            notes[PREDICTION_OUTSIDE] = "; ".join(outside)
        return {
            "params_m": features.params / 1e6,
            "gflops": features.gflops,
            "latency_pred_ms": self.device_profile.predict(features),
        }

    def violations(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Constraint values in Optuna's convention: feasible when <= 0 (relative excess)."""
        out = {}
        for key, bound in self.constraints.items():
            value = metrics.get(CONSTRAINTS[key])
            if value is not None:
                out[key] = violation(key, value, bound)
        return out

    def proxy_scores(
        self,
        spec: ModelSpec,
        *,
        seed: int,
        proxies: Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        timings: dict[str, float] | None = None,
        timing: str = "proxies_s",
    ) -> dict[str, float]:
        """Training-free proxies (``proxies``, default the evaluator's) of the untrained
        ``spec`` on its data, at the data's resolution, their seconds in ``timings[timing]``;
        a proxy that fails raises :class:`EvaluationFailure`."""
        timings = timings if timings is not None else {}
        start = time.perf_counter()
        scores = self.score_proxies(spec, seed=seed, proxies=proxies, overrides=overrides)
        timings[timing] = time.perf_counter() - start
        if scores.failures:
            raise EvaluationFailure("; ".join(scores.failures.values()))
        return {name: float(value) for name, value in scores.values.items()}

    def score_proxies(
        self,
        spec: ModelSpec,
        *,
        seed: int,
        proxies: Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ):
        """Every proxy's result, a failed one included (``ProxyScores``: values, seconds and
        failures by proxy): what a calibration records of each."""
        from dvbench.proxies import ProxySettings, score_model

        if isinstance(spec, DualViTConfig):
            spec = spec.replace(img_size=self.data.resolution, num_classes=self.num_classes)
        return score_model(
            spec, self.data, ProxySettings(proxies=tuple(proxies or self.proxies)), seed=seed,
            device=self.device, overrides=overrides,
        )  # fmt: skip

    def evaluate_weights(
        self, spec: DualViTConfig, checkpoint: str | Path, images: torch.Tensor,
        labels: torch.Tensor,
    ) -> ImageOutcomes:  # fmt: skip
        """Every image's outcome on ``images``/``labels`` (normalised as the training data is)
        of ``spec`` with the weights a training checkpoint holds (loaded ``weights_only``): a
        held-out test set scored by the network a run trained."""
        data = self.data
        model = build_candidate(
            spec.replace(img_size=data.resolution), num_classes=data.num_classes,
            resolution=data.resolution,
        )  # fmt: skip
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        model.to(self.device)
        outcomes, _ = evaluate_images(
            model, images, labels,
            normalizer=Normalizer(data.mean, data.std, device=self.device),
            batch_size=self.train_settings.eval_batch_size,
        )  # fmt: skip
        return outcomes

    def train(
        self,
        spec: ModelSpec,
        *,
        seed: int,
        overrides: Mapping[str, Any] | None = None,
        budget: Budget | None = None,
        checkpoint: str | Path | None = None,
        timings: dict[str, float] | None = None,
        progress: ProgressCallback | None = None,
    ) -> TrainResult:
        """Proxy-train ``spec`` (up to ``budget`` of the schedule, continuing ``checkpoint``;
        ``progress`` is the training loop's callback).

        A run that fails (diverges, runs out of memory) raises :class:`EvaluationFailure`.
        """
        if not self.trains:
            raise ValueError("train: this evaluator has no data and training settings")
        timings = timings if timings is not None else {}
        if isinstance(spec, DualViTConfig):
            spec = spec.replace(img_size=self.data.resolution)
        start = time.perf_counter()
        result = train_candidate(
            spec,
            self.data,
            self.train_settings,
            seed=seed,
            device=self.device,
            overrides=overrides,
            stop=budget,
            checkpoint=checkpoint,
            progress=progress,
        )
        timings["train_s"] = timings.get("train_s", 0.0) + time.perf_counter() - start
        if not result.ok:
            raise EvaluationFailure(f"training failed: {result.reason}")
        return result

    # ------------------------------------------------------------------------- the whole
    def evaluate(
        self,
        spec: ModelSpec,
        *,
        seed: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        budget: Budget | None = None,
        checkpoint: str | Path | None = None,
        name: str | None = None,
        on_costs: Callable[[Evaluation], None] | None = None,
        constrained: bool = True,
        progress: ProgressCallback | None = None,
    ) -> Evaluation:
        """Costs, constraints, then (when feasible and this evaluator trains) training.

        Never raises for a candidate's own failure (an impossible config, a diverging run, a
        profiling OOM): the :class:`Evaluation` says ``failed`` with the reason. ``on_costs``
        sees the evaluation once the costs and constraints are known, before training (a
        search records them on its trial). Over budget: accuracy 0, so it stays off any front;
        ``constrained=False`` (baselines: reference points whatever they cost) trains anyway.
        """
        seed = self.seed if seed is None else seed
        result = Evaluation(name or _name(spec, overrides))
        start = time.perf_counter()
        try:
            # notes only where a device profile may write them: costs() overrides that
            # predict nothing (simulated evaluators, test doubles) keep their signature
            extra = {"notes": result.notes} if self.device_profile is not None else {}
            metrics, result.profile = self.costs(
                spec, overrides=overrides, timings=result.timings, **extra
            )
            result.metrics.update(metrics)
            if self.proxies:
                result.metrics.update(
                    self.proxy_scores(spec, seed=seed, overrides=overrides, timings=result.timings)
                )
                metrics = result.metrics
            result.violations = self.violations(metrics)
            if on_costs is not None:
                on_costs(result)
            if self.trains and constrained and not result.feasible:
                over = ", ".join(k for k, v in result.violations.items() if v > 0)
                result.status, result.reason = "over_budget", f"over budget ({over}); not trained"
                # the sampler's value of a network not trained: no accuracy, and the loss of a
                # uniform guess (ln classes), so a test-loss objective is never missing
                result.metrics.update(
                    top1=0.0, top5=0.0, test_loss=math.log(self.num_classes), train_time_s=0.0
                )
            elif self.trains:
                training = self.train(
                    spec,
                    seed=seed,
                    overrides=overrides,
                    budget=budget,
                    checkpoint=checkpoint,
                    timings=result.timings,
                    progress=progress,
                )
                result.training = training
                result.metrics.update(training_metrics(training))
                # bounds on what training measures (max_test_loss) are judged now
                judged = self.violations(result.metrics)
                result.violations.update(
                    {k: v for k, v in judged.items() if k not in result.violations}
                )
        except EvaluationFailure as exc:
            result.status, result.reason = "failed", str(exc)
        except (UsageError, torch.OutOfMemoryError, RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            result.status, result.reason = "failed", f"{type(exc).__name__}: {first}"
        result.timings["duration_s"] = time.perf_counter() - start
        return result


def training_metrics(result: TrainResult) -> dict[str, float]:
    """The metrics a proxy run contributes to a candidate (``test_images``: how many images
    its accuracies were measured on, which gives their standard error)."""
    return {
        "top1": result.top1,
        "top5": result.top5,
        "test_loss": result.test_loss,
        "test_images": result.num_test,
        "train_time_s": result.train_time_s,
        "train_images_per_s": result.images_per_s,
    }


def finite(value: Any) -> bool:
    """A real, finite number (not a bool, None or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _name(spec: ModelSpec, overrides: Mapping[str, Any] | None) -> str:
    name = spec.name if isinstance(spec, DualViTConfig) and spec.name else display_name(spec)
    if overrides:
        name += f"({', '.join(f'{k}={v}' for k, v in overrides.items())})"
    return name
