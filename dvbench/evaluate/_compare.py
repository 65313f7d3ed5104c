"""Compare models as the paper's tables do: one profiling method for all, proxy accuracy
optional, every model through the same :class:`Evaluator`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from dvbench.errors import UsageError
from dvbench.evaluate._evaluator import EvaluationFailure, Evaluator
from dvbench.profile import ProfileResult, profile_models, results_to_frame
from dvbench.train import TrainResult

__all__ = ["Comparison", "compare_models"]


@dataclass(frozen=True)
class Comparison:
    """Profile results (one per model) and, when trained, one proxy result per model.

    ``training`` is aligned with ``profile``: a :class:`~dvbench.train.TrainResult`, or the
    reason the model could not be trained.
    """

    profile: list[ProfileResult]
    training: list[TrainResult | str] = field(default_factory=list)
    data: str | None = None  # description of the proxy data, when trained
    epochs: float | None = None

    def frame(self) -> pd.DataFrame:
        """The profile table plus top1/top5/train_status when the models were trained."""
        frame = results_to_frame(self.profile)
        if self.data is None:
            return frame
        cells = [_training_cells(result) for result in self.training]
        frame["top1"] = pd.array([c[0] for c in cells], dtype="Float64")
        frame["top5"] = pd.array([c[1] for c in cells], dtype="Float64")
        frame["train_status"] = [c[2] for c in cells]
        frame["proxy_data"] = self.data
        frame["proxy_epochs"] = self.epochs
        return frame


def _training_cells(result: TrainResult | str) -> tuple[float | None, float | None, str]:
    if isinstance(result, str):
        return None, None, result
    if not result.ok:
        return None, None, result.reason or "failed"
    return result.top1, result.top5, "ok"


def compare_models(
    models: Sequence[str],
    evaluator: Evaluator,
    *,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Profile ``models`` with the evaluator's profile settings and, when it trains, proxy-train
    each one alike (seeded by the evaluator's seed). A model that cannot be trained is
    reported in ``train_status``; the others go on."""
    if len(set(models)) != len(models):
        raise UsageError("models: a model is named twice")
    report = progress or (lambda message: None)
    results = profile_models(list(models), evaluator.profile_settings, progress=report)
    if not evaluator.trains:
        return Comparison(results)
    data = evaluator.data
    training: list[TrainResult | str] = []
    for spec, result in zip(models, results, strict=True):
        report(f"{result.model}: training on {data.name}")
        try:
            training.append(evaluator.train(spec, seed=evaluator.seed))
        except EvaluationFailure as exc:
            training.append(str(exc).removeprefix("training failed: "))
        except UsageError as exc:
            training.append(str(exc))
    return Comparison(
        results, training, data=data.describe(), epochs=evaluator.train_settings.epochs
    )
