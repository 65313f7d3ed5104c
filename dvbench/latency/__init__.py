"""Latency for a device you don't have: per-device models fitted on a few measured candidates.

``dvbench profile --calibrate-device FILE --space small`` measures N random candidates of a
space on the machine it runs on and writes a :class:`DeviceProfile`; a search objective
``latency_pred_ms`` (with ``device: FILE``) then predicts every candidate from the cost
features of one trace (:func:`cost_features`), without timing it.
"""

from dvbench.latency.device import (
    FORMAT,
    VERSION,
    DeviceProfile,
    Sample,
    calibrate_device,
    fit_profile,
    load_device_profile,
    measure_samples,
    round_latency,
)
from dvbench.latency.features import FEATURES, Features, cost_features
from dvbench.latency.predictor import MODELS, LatencyFit, fit_latency, held_out_errors, mdape

__all__ = [
    "FEATURES",
    "FORMAT",
    "MODELS",
    "VERSION",
    "DeviceProfile",
    "Features",
    "LatencyFit",
    "Sample",
    "calibrate_device",
    "cost_features",
    "fit_latency",
    "fit_profile",
    "held_out_errors",
    "load_device_profile",
    "mdape",
    "measure_samples",
    "round_latency",
]
