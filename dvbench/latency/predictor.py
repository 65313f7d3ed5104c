"""Latency models fitted on measured candidates, chosen by leave-one-out error.

Three models are fitted on the same N measurements and the one with the lowest leave-one-out
median absolute percentage error is kept (ties: the simpler one):

- ``flops``: ``a * GFLOPs + b`` -- the baseline every latency predictor must beat;
- ``flops+ops``: ``a * GFLOPs + c * operators + b`` -- compute plus per-operator overhead;
- ``features``: a non-negative combination of every feature in
  :data:`~dvbench.latency.features.FEATURES` plus an intercept.

Each is fitted by non-negative least squares on *relative* errors (every row divided by its
measured latency), so a 2 ms model and a 200 ms model count alike, as the median percentage
error that judges them does. Non-negative weights keep the model physical: more work never
predicts less time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from dvbench.latency.features import FEATURES
from dvbench.stats import spearman

__all__ = ["MODELS", "LatencyFit", "fit_latency", "held_out_errors", "mdape"]

#: Model name -> the inputs it reads ("gflops" or a feature name), besides an intercept.
MODELS: dict[str, tuple[str, ...]] = {
    "flops": ("gflops",),
    "flops+ops": ("gflops", "ops"),
    "features": FEATURES,
}
#: Fewest measurements a fit accepts (leave-one-out needs some to spare).
MIN_SAMPLES = 5


def mdape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Median absolute percentage error, in percent."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    return float(np.median(np.abs(p - m) / m) * 100)


def _columns(rows: Sequence[Mapping[str, float]], inputs: Sequence[str]) -> np.ndarray:
    return np.array([[float(r[name]) for name in inputs] + [1.0] for r in rows])


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights minimising the squared relative error."""
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    weights, _ = nnls((x / scale) / y[:, None], np.ones_like(y))
    return weights / scale


@dataclass(frozen=True)
class LatencyFit:
    """A fitted latency model: ``ms = sum(coef[i] * inputs[i]) + intercept``.

    ``loo`` holds the leave-one-out figures of every model tried (``mdape`` in percent and
    ``spearman``), ``ranges`` each input's measured [min, max] (a candidate outside them is an
    extrapolation).
    """

    model: str
    inputs: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    samples: int
    loo: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, row: Mapping[str, float]) -> float:
        """Predicted latency (ms) of a candidate given its features and ``gflops``: never
        negative (a time is not); ``ValueError`` rather than a non-finite number."""
        value = float(
            sum(c * float(row[n]) for c, n in zip(self.coef, self.inputs)) + self.intercept
        )
        if not math.isfinite(value):
            raise ValueError(f"latency fit: predicted {value} ms (a coefficient is out of range)")
        return max(value, 0.0)

    def outside(self, row: Mapping[str, float], *, margin: float = 0.0) -> list[str]:
        """``name value (measured lo..hi)`` for each input of ``row`` outside the measured
        range widened by ``margin`` (a fraction of the range's width)."""
        out = []
        for name, (low, high) in self.ranges.items():
            value = float(row[name])
            slack = margin * (high - low)
            if value < low - slack or value > high + slack:
                out.append(f"{name} {value:.4g} (measured {low:.4g}..{high:.4g})")
        return out

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "inputs": list(self.inputs),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "samples": self.samples,
            "loo": {k: dict(v) for k, v in self.loo.items()},
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> LatencyFit:
        inputs = tuple(data["inputs"])
        coef = tuple(float(c) for c in data["coef"])
        if len(coef) != len(inputs):
            raise ValueError(f"fit: {len(coef)} coefficients for {len(inputs)} inputs")
        unknown = sorted(set(inputs) - {"gflops", *FEATURES})
        if unknown:
            raise ValueError(f"fit: unknown input {unknown[0]!r}")
        return cls(
            model=str(data["model"]),
            inputs=inputs,
            coef=coef,
            intercept=float(data["intercept"]),
            samples=int(data["samples"]),
            loo={
                k: {m: math.nan if x is None else float(x) for m, x in v.items()}
                for k, v in (data.get("loo") or {}).items()
            },
            ranges={k: (float(v[0]), float(v[1])) for k, v in (data.get("ranges") or {}).items()},
        )


def _fit_one(model: str, rows, latencies: np.ndarray) -> tuple[np.ndarray, float]:
    weights = _solve(_columns(rows, MODELS[model]), latencies)
    return weights[:-1], float(weights[-1])


def _loo(model: str, rows, latencies: np.ndarray) -> dict[str, float]:
    predicted = []
    for i in range(len(rows)):
        keep = [j for j in range(len(rows)) if j != i]
        coef, intercept = _fit_one(model, [rows[j] for j in keep], latencies[keep])
        x = _columns([rows[i]], MODELS[model])[0]
        predicted.append(float(x[:-1] @ coef + intercept))
    return {"mdape": mdape(predicted, latencies), "spearman": spearman(predicted, latencies)}


def fit_latency(
    rows: Sequence[Mapping[str, float]],
    latencies_ms: Sequence[float],
    *,
    models: Sequence[str] = tuple(MODELS),
) -> LatencyFit:
    """Fit every model in ``models`` on ``rows`` (features plus ``gflops``) and measured
    ``latencies_ms``; keep the one with the lowest leave-one-out median percentage error."""
    latencies = np.asarray(latencies_ms, float)
    if len(rows) != len(latencies):
        raise ValueError(f"fit: {len(rows)} candidates but {len(latencies)} latencies")
    if len(rows) < MIN_SAMPLES:
        raise ValueError(f"fit: needs at least {MIN_SAMPLES} measured candidates, got {len(rows)}")
    if not np.all(np.isfinite(latencies)) or np.any(latencies <= 0):
        raise ValueError("fit: latencies must be positive and finite")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"fit: unknown model {unknown[0]!r} ({', '.join(MODELS)})")
    loo = {m: _loo(m, rows, latencies) for m in models}
    best = min(models, key=lambda m: (round(loo[m]["mdape"], 6), len(MODELS[m])))
    coef, intercept = _fit_one(best, rows, latencies)
    inputs = MODELS[best]
    ranges = {
        name: (min(float(r[name]) for r in rows), max(float(r[name]) for r in rows))
        for name in ("gflops", *FEATURES)
    }
    return LatencyFit(
        model=best,
        inputs=inputs,
        coef=tuple(float(c) for c in coef),
        intercept=intercept,
        samples=len(rows),
        loo=loo,
        ranges=ranges,
    )


def held_out_errors(
    fit: LatencyFit, rows: Sequence[Mapping[str, float]], latencies_ms: Sequence[float]
) -> dict[str, float]:
    """Spearman and median percentage error of ``fit`` on candidates it was not fitted on."""
    predicted = [fit.predict(r) for r in rows]
    return {"spearman": spearman(predicted, latencies_ms), "mdape": mdape(predicted, latencies_ms)}
