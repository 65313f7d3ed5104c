"""A calibration with one seed (no reliability rows, no seed-to-seed tau) still writes tables
that parse: a header-only CSV and strict JSON with ``null`` for what was not computed."""

from __future__ import annotations

import json

import pandas as pd

from dvbench.calibrate import CalibrationPlan, save_calibration, summarize_calibration


def _records(candidates: int) -> list[dict]:
    records = []
    for index in range(candidates):
        records.append({
            "unit": "proxies", "candidate": index, "knobs": {"width": 8 * (index + 1)},
            "values": {"params_m": 0.1 * (index + 1)}, "seconds": {"params_m": 0.01},
            "config": {"embed_dims": [index]},
        })  # fmt: skip
        for epochs, top1 in ((1.0, 20.0 + index), (3.0, 30.0 + 2 * index)):
            records.append({
                "unit": "rung", "candidate": index, "epochs": epochs, "seed": 0,
                "top1": top1, "tse": 5.0 - index, "test_loss": 2.0, "seconds": 1.0,
            })  # fmt: skip
        records.append(
            {"unit": "schedule", "candidate": index, "epochs": 1.0, "top1": 21.0 + index,
             "seconds": 1.0}
        )  # fmt: skip
    return records


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_one_seed_writes_tables_that_parse(tmp_path):
    plan = CalibrationPlan(candidates=4, ladder=(1.0, 3.0), schedules=(1.0,),
                           proxies=("params_m",), repeats=4, seeds=1)  # fmt: skip
    result = summarize_calibration(
        _records(4), plan, space="costs", data="digits", test_images=100
    )
    files = save_calibration(result, tmp_path)
    reliability = pd.read_csv(files["reliability.csv"])
    assert reliability.empty and {"measurement", "icc", "seed_sd"} <= set(reliability.columns)
    assert pd.read_parquet(files["reliability.parquet"]).columns.tolist() == list(
        reliability.columns
    )
    summary = _strict(files["summary.json"].read_text())
    assert summary["seed_to_seed_tau"] is None and summary["icc"] is None
    assert summary["seeds"] == 1 and summary["measured"] == 4
    signals = pd.read_csv(files["signals.csv"])
    assert "kendall_tau" in signals.columns


def test_nothing_measured_still_writes_tables_that_parse(tmp_path):
    plan = CalibrationPlan(candidates=3, ladder=(1.0,), schedules=(), proxies=("params_m",),
                           repeats=0, seeds=1)  # fmt: skip
    result = summarize_calibration([], plan, space="costs", data="digits", test_images=100)
    files = save_calibration(result, tmp_path)
    for stem in ("reliability", "signals"):
        frame = pd.read_csv(files[f"{stem}.csv"])
        assert frame.empty and len(frame.columns) > 3
    summary = _strict(files["summary.json"].read_text())
    assert summary["target_top1_mean"] is None and summary["test_standard_error"] is None
