"""Evaluating candidates: one object turns a model (name, config file or config) into metrics.

:class:`Evaluator` builds, counts, checks constraints, times and proxy-trains a candidate for
a budget (continuing from a checkpoint), the same way for search trials, baselines,
``compare`` and ``calibrate``. This room sits between ``profile``/``train`` (which it uses)
and ``search`` (which uses it).
"""

from dvbench.evaluate._compare import Comparison, compare_models
from dvbench.evaluate._evaluator import (
    Evaluation,
    EvaluationFailure,
    Evaluator,
    ModelSpec,
    finite,
    training_metrics,
)
from dvbench.evaluate._seeds import architecture_key, training_seed
from dvbench.evaluate._simulated import SimulatedEvaluator

__all__ = [
    "Comparison",
    "Evaluation",
    "EvaluationFailure",
    "Evaluator",
    "ModelSpec",
    "SimulatedEvaluator",
    "architecture_key",
    "compare_models",
    "finite",
    "training_metrics",
    "training_seed",
]
