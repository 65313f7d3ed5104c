"""A simulated evaluator: known true accuracies plus seeded noise, for studies of the search
itself (racing, noise-aware fronts) and its tests, at no training cost.

:class:`SimulatedEvaluator` measures a candidate's costs and "trains" it by looking up its
true top-1 in a table and adding normal noise of sd ``seed_sd`` drawn from the run's training
seed: the same network with the same seed always measures the same, as a real run does on
one machine, and another seed (a repeat) draws another value. The accuracies are reported as
measured on ``test_images`` images, so the study's standard errors are the ones a real run of
that size would have. Everything else goes through the real :class:`Evaluator` path
(constraints, the trial's records, the tables).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from dvbench.evaluate._evaluator import Evaluator
from dvbench.models import DualViTConfig
from dvbench.train import TrainResult, TrainSettings

__all__ = ["SimulatedEvaluator"]


class SimulatedEvaluator(Evaluator):
    """An :class:`Evaluator` whose candidates' costs and true top-1 come from ``truth``
    (``SimulatedEvaluator.for_space(space, key=..., truth=..., seed_sd=...)`` for a space).

    ``key(cfg)`` names a network (e.g. its knob values read back from the config);
    ``truth[key] = (costs, true_top1)``, ``costs`` a mapping of cost metrics. ``runs`` lists
    every (key, seed) trained, in order.
    """

    def __init__(
        self,
        *,
        key: Callable[[DualViTConfig], Hashable],
        truth: Mapping[Hashable, tuple[Mapping[str, float], float]],
        seed_sd: float,
        test_images: int = 8000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key, self.truth = key, dict(truth)
        self.seed_sd, self.test_images = float(seed_sd), int(test_images)
        self.runs: list[tuple[Hashable, int]] = []

    def costs(self, spec, *, overrides=None, timings=None):
        costs, _ = self.truth[self.key(spec)]
        return dict(costs), None

    def train(self, spec, *, seed: int, timings=None, **kwargs: Any) -> TrainResult:
        _, mean = self.truth[self.key(spec)]
        self.runs.append((self.key(spec), seed))
        top1 = mean + self.seed_sd * float(np.random.default_rng(seed).standard_normal())
        if timings is not None:
            timings["train_s"] = timings.get("train_s", 0.0) + 1.0
        return TrainResult(
            model="simulated", status="ok", reason=None, top1=top1, top5=100.0,
            test_loss=None, final_loss=None, params=0, epochs=1.0, steps=1, images_seen=0,
            train_time_s=1.0, eval_time_s=0.0, images_per_s=0.0, data="simulated",
            resolution=self.resolution, num_classes=self.num_classes, num_train=0,
            num_test=self.test_images, seed=seed, device="cpu",
            settings=self.train_settings or TrainSettings(),
        )  # fmt: skip
