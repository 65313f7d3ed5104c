"""What ``dvbench profile`` prints about device profiles: a calibration's summary, and the
latency a profile predicts beside the latency measured here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from dvbench.latency.device import DeviceProfile
from dvbench.latency.features import cost_features
from dvbench.metrics import METRICS

__all__ = ["calibration_summary", "predict_models", "prediction_table"]


def calibration_summary(profile: DeviceProfile) -> list[str]:
    """Where it was measured, the model chosen and its leave-one-out error beside FLOPs'."""
    held, fit = profile.held_out, profile.fit
    latency = METRICS["latency_ms_median"]
    latencies = [s.latency_ms_median for s in profile.samples]
    lines = [
        f"device profile: {profile.label}",
        f"  {len(profile.samples)} candidates of {profile.space}, "
        f"{latency.text(min(latencies))}-{latency.text(max(latencies))} {latency.unit} per batch",
        f"  model {fit.model}: leave-one-out median error {held['mdape']:.1f} %, "
        f"Spearman {held['spearman']:.3f}",
    ]
    if fit.model != "flops" and "flops" in fit.loo:
        flops = fit.loo["flops"]
        lines.append(
            f"  FLOPs alone: leave-one-out median error {flops['mdape']:.1f} %, "
            f"Spearman {flops['spearman']:.3f}"
        )
    return lines


def predict_models(
    models: Sequence[Any], profile: DeviceProfile, resolution: int
) -> list[tuple[float, list[str]]]:
    """(predicted ms, extrapolation notes) of each model (a name, config file or module)."""
    from torch import nn

    from dvbench.models.registry import create_model

    out = []
    for spec in models:
        model = spec if isinstance(spec, nn.Module) else create_model(spec, img_size=resolution)
        features = cost_features(model, resolution)
        out.append((profile.predict(features), profile.outside(features)))
    return out


def _same_machine(profile: DeviceProfile, result: Any) -> bool:
    here = result.environment
    return (
        here.get("device_name") == profile.device_name
        and result.settings.device.split(":")[0] == profile.device.split(":")[0]
        and result.settings.threads == profile.threads
        and here.get("torch", "").split("+")[0] == profile.torch.split("+")[0]
    )


def prediction_table(
    results: Sequence[Any], models: Sequence[Any], profile: DeviceProfile
) -> tuple[Table, list[str]]:
    """Predicted latency (at the profile's batch size) beside what was measured here.

    The error column appears only when this run measured on the profile's own device, threads
    and torch: anywhere else the two columns are two different machines. Returns the table and
    one warning per model the profile extrapolates to. Headers and precision are the metrics'
    (:mod:`dvbench.metrics`).
    """
    predicted_ms, measured_ms = METRICS["latency_pred_ms"], METRICS["latency_ms_median"]
    resolution = results[0].settings.resolution
    predicted = predict_models(models, profile, resolution)
    rows = [r for r in results if r.batch_size == profile.batch_size]
    measured_any = any(r.measurement is not None for r in rows)
    same = measured_any and all(_same_machine(profile, r) for r in rows)
    table = Table(
        title=f"predicted for {profile.label}",
        caption=f"the profile's leave-one-out median error: {profile.held_out['mdape']:.1f} %",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,
    )
    table.add_column("model", no_wrap=True)
    table.add_column(predicted_ms.header(narrow=True), justify="right", no_wrap=True)
    if measured_any:
        here = f"measured\nhere ({measured_ms.unit})"
        table.add_column(here, justify="right", no_wrap=True)
    if same:
        table.add_column("error\n%", justify="right", no_wrap=True)
    table.add_column("range", justify="left")
    notes = []
    for result, (ms, outside) in zip(rows, predicted):
        cells = [result.model, predicted_ms.text(ms)]
        m = result.measurement
        if measured_any:
            cells.append(measured_ms.text(m.median_s * 1e3) if m is not None else "")
        if same:
            cells.append(f"{(ms / (m.median_s * 1e3) - 1) * 100:+.1f}" if m is not None else "")
        cells.append("outside" if outside else "inside")
        table.add_row(*cells)
        if outside:
            notes.append(
                f"warning: {result.model}: outside the range the device profile measured "
                f"({'; '.join(outside)}); its prediction is an extrapolation"
            )
    if measured_any and not same:
        here = rows[0]
        notes.append(
            f"measured here on {here.environment.get('device_name')} ({here.settings.device}, "
            f"{here.settings.threads} threads), not on the profile's device: no error column"
        )
    return table, notes
