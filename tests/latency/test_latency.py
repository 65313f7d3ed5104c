"""Device profiles: cost features, the latency fits, the profile file, ``profile
--calibrate-device``/``--device-profile`` and ``latency_pred_ms`` in a search."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pandas as pd
import pytest
import torch
from search_helpers import COST_SPACE, peek_study, write_space

import dvbench.profile
from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.latency import (
    FEATURES,
    FORMAT,
    VERSION,
    calibrate_device,
    cost_features,
    fit_latency,
    held_out_errors,
    load_device_profile,
)
from dvbench.models import DualViTConfig
from dvbench.models.registry import create_model
from dvbench.profile import Measurement, ProfileSettings, count_flops
from dvbench.search import SearchOptions, run_search
from dvbench.search.record import STUDY_ATTR
from dvbench.space import load_space

RES = 64
FAST = ["--warmup", "0", "--min-runs", "2", "--min-time", "0"]


def synthetic_ms(features) -> float:
    """The synthetic device: a known non-negative function of the features (ms a batch)."""
    v = features.as_dict() if hasattr(features, "as_dict") else features
    return (
        1.0
        + 30.0 * v["dense_gmac"]
        + 400.0 * v["attention_gmac"]
        + 0.02 * v["ops"]
        + 0.5 * v["memory_melems"]
    )


def _synthetic_device(monkeypatch):
    """``profile_models`` replaced by a device whose latency is :func:`synthetic_ms`."""

    known: dict[str, float] = {}  # by config: a candidate rebuilt for a round is not retraced

    def fake_profile_models(models, settings, progress=None):
        model = models[0]
        key = json.dumps(model.cfg.to_dict(), sort_keys=True)
        if key not in known:
            known[key] = synthetic_ms(cost_features(model, settings.resolution))
        ms = known[key]
        measurement = Measurement(
            times_s=(ms / 1e3,) * 3,
            batch_size=settings.batch_sizes[0],
            warmup=settings.warmup,
            min_runs=settings.min_runs,
            min_time_s=settings.min_time_s,
            threads=1,
        )
        return [
            dataclasses.replace(
                dvbench.profile.ProfileResult(
                    model="m",
                    batch_size=settings.batch_sizes[0],
                    settings=dataclasses.replace(settings, threads=1),
                    cost=None,
                    environment={"device_name": "synthetic", "torch": torch.__version__},
                ),
                measurement=measurement,
            )
        ]

    monkeypatch.setattr(dvbench.profile, "profile_models", fake_profile_models)


def _space(tmp_path, **changes):
    return load_space(write_space(tmp_path, {**COST_SPACE, **changes}, "space.yaml"))


@pytest.fixture(scope="module")
def synthetic_profile(tmp_path_factory):
    """A device profile of the synthetic device on all 12 buildable candidates of COST_SPACE
    (made once: tests read it, none changes it)."""
    folder = tmp_path_factory.mktemp("synthetic")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _synthetic_device(monkeypatch)
        drawn = _space(folder).random_candidates(12, 0, img_size=RES)
        profile = calibrate_device(
            [cfg for _, cfg in drawn], ProfileSettings(resolution=RES), space="costs", rounds=2
        )
    return profile, profile.save(folder / "synthetic.json")


# ----------------------------------------------------------------------------- features
@pytest.mark.parametrize("name", ["tiny_dualvit", "pvt_v2_b0"])
def test_features_count_the_profilers_flops_and_parameters(name, tiny_dualvit):
    spec = (
        tiny_dualvit.replace(depths=(1, 1, 2, 1), mlp_ratios=(2, 2, 2, 2), img_size=RES)
        if name == "tiny_dualvit"
        else name
    )
    model = create_model(spec, img_size=RES)
    features, report = cost_features(model, RES), count_flops(model, RES)
    assert features.gflops == pytest.approx(report.gflops, rel=1e-12)
    assert features.params == report.params
    parts = ("dense_gmac", "depthwise_gmac", "attention_gmac")
    assert sum(features.values[p] for p in parts) <= features.gflops * (1 + 1e-9)
    assert features.values["ops"] > 10 and features.values["memory_melems"] > 0
    assert set(features.values) == set(FEATURES)


# ---------------------------------------------------------------------------------- fits
def test_a_synthetic_device_is_predicted_exactly(synthetic_profile, tmp_path):
    profile, _ = synthetic_profile
    assert profile.fit.model == "features"  # the only model that can be exact here
    assert profile.held_out["mdape"] < 1e-6
    samples = list(profile.samples)
    fitted = fit_latency(
        [s.features for s in samples[:8]], [s.latency_ms_median for s in samples[:8]]
    )
    truth = [s.latency_ms_median for s in samples[8:]]
    for sample, ms in zip(samples[8:], truth):
        assert fitted.predict(sample.features) == pytest.approx(ms, rel=1e-6)
    errors = held_out_errors(fitted, [s.features for s in samples[8:]], truth)
    assert errors["mdape"] < 1e-4 and errors["spearman"] == pytest.approx(1.0)
    flops = fit_latency(
        [s.features for s in samples[:8]],
        [s.latency_ms_median for s in samples[:8]],
        models=("flops",),
    )
    assert held_out_errors(flops, [s.features for s in samples[8:]], truth)["mdape"] > 1.0


def test_flops_alone_wins_on_a_device_that_only_counts_flops():
    rows = [
        {
            **{f: float(i % 3 + j) for j, f in enumerate(FEATURES)},
            "gflops": 0.1 * i + 0.05 * (i % 4),
        }
        for i in range(1, 11)
    ]
    latencies = [5.0 * r["gflops"] + 2.0 for r in rows]
    fit = fit_latency(rows, latencies)
    assert fit.model == "flops"  # exact with the fewest inputs
    assert fit.coef[0] == pytest.approx(5.0, rel=1e-6) and fit.intercept == pytest.approx(2.0)


def test_a_fit_refuses_too_few_or_impossible_latencies():
    rows = [{**{f: 1.0 for f in FEATURES}, "gflops": float(i)} for i in range(1, 7)]
    with pytest.raises(ValueError, match="at least 5"):
        fit_latency(rows[:4], [1.0] * 4)
    with pytest.raises(ValueError, match="positive and finite"):
        fit_latency(rows, [1.0, 2.0, 3.0, 0.0, 5.0, 6.0])
    with pytest.raises(ValueError, match="unknown model"):
        fit_latency(rows, [1.0, 2, 3, 4, 5, 6], models=("lookup",))


# ------------------------------------------------------------------------------- the file
def test_a_profile_file_round_trips(synthetic_profile):
    profile, path = synthetic_profile
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["version"] == VERSION
    assert data["device_name"] == "synthetic" and data["batch_size"] == 1
    assert data["resolution"] == RES and data["timing"]["rounds"] == 2
    loaded = load_device_profile(path)
    assert loaded.as_dict() == profile.as_dict()
    for sample in profile.samples:
        assert loaded.predict(sample.features) == profile.predict(sample.features)
        assert len(sample.rounds) == 2


def test_a_profile_refuses_other_settings_with_both_values_named(synthetic_profile):
    profile, path = synthetic_profile
    profile = load_device_profile(path)
    profile.check(batch_size=1, resolution=RES)  # its own settings pass
    with pytest.raises(UsageError, match=r"torch 2\.\S+, this is torch 1\.13\.0.*re-run"):
        profile.check(torch_version="1.13.0")
    with pytest.raises(UsageError, match="measured at batch 1, asked for batch 8"):
        profile.check(batch_size=8)
    with pytest.raises(UsageError, match=f"measured at {RES} px, asked for 224 px"):
        profile.check(resolution=224)
    patch = torch.__version__.split("+")[0] + "+other"  # a patch build of the same release
    profile.check(torch_version=patch)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such device profile"),
        ("{not json", "not a readable device profile"),
        ('{"format": "something-else"}', "not a dvbench device profile"),
        (json.dumps({"format": FORMAT, "version": 0}), "version 0, this dvbench reads"),
        (json.dumps({"format": FORMAT, "version": VERSION}), "broken device profile"),
    ],
)
def test_a_bad_profile_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "device.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_device_profile(path)


def test_a_candidate_outside_the_measured_range_is_named(synthetic_profile):
    profile, _ = synthetic_profile
    big = cost_features(create_model("pvt_v2_b0", img_size=RES), RES)
    outside = profile.outside(big)
    assert outside and any(text.startswith("dense_gmac ") for text in outside)
    assert profile.outside(profile.samples[0].features) == []


def test_candidates_are_distinct_and_buildable(tmp_path):
    space = _space(tmp_path)
    candidates = space.random_candidates(50, 3, img_size=RES)
    assert len(candidates) == 12  # 2 widths x 3 depths x 2 feasible grids: fewer than asked
    assert len({json.dumps(c.to_dict(), sort_keys=True) for _, c in candidates}) == 12


# ---------------------------------------------------------------------------------- CLI
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--calibrate-device", "d.json"], "needs --space"),
        (["pvt_v2_b0", "--calibrate-device", "d.json", "--space", "small"], "name no models"),
        (
            ["--calibrate-device", "d.json", "--space", "small", "--batch-size", "1,8"],
            "one --batch-size",
        ),
        (["--calibrate-device", "d.json", "--space", "small", "--samples", "3"], "at least 5"),
        (["--calibrate-device", "d.json", "--space", "small", "--no-latency"], "drop --no-latency"),
        (["--calibrate-device", "d.json", "--space", "nospace"], "unknown search space"),
        (["pvt_v2_b0", "--space", "small"], "add --calibrate-device"),
        (["pvt_v2_b0", "--device-profile", "missing.json"], "no such device profile"),
    ],
)
def test_profile_device_arguments_refuse_bad_input_in_one_line(
    tmp_path, capsys, argv, message, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["profile", *argv]) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "d.json").exists()


def test_calibrate_then_predict_on_this_machine(tmp_path, capsys):
    space = write_space(tmp_path, {**COST_SPACE, "profile": {"resolution": RES}}, "space.yaml")
    device = tmp_path / "here.json"
    argv = ["profile", "--calibrate-device", str(device), "--space", str(space), "--samples", "5",
            "--rounds", "1", "--res", str(RES), "--threads", "1", *FAST]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "leave-one-out median error" in out and "5 candidates of costs" in out
    profile = load_device_profile(device)
    assert len(profile.samples) == 5 and profile.threads == 1 and profile.resolution == RES
    assert all(s.latency_ms_median > 0 for s in profile.samples)

    assert main(["profile", "pvt_v2_b0", "--res", str(RES), "--device-profile", str(device),
                 "--threads", "1", *FAST]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "predicted for" in captured.out and "measured" in captured.out
    assert "error" in captured.out  # same machine, threads and torch: the error column
    assert "pvt_v2_b0: outside the range" in captured.err  # not a candidate of the space

    assert main(["profile", "pvt_v2_b0", "--res", str(RES), "--device-profile", str(device),
                 "--batch-size", "4", "--no-latency"]) == 2  # fmt: skip
    assert "measured at batch 1, asked for batch 4" in _one_error_line(capsys)


# ------------------------------------------------------------------------------- search
def _latency_space(**changes):
    return {
        **COST_SPACE,
        "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}},
        "objectives": [
            {"metric": "latency_pred_ms"},
            {"metric": "params_m", "direction": "maximize"},
        ],
        "n_trials": 4,
        "seeds": {},
        **changes,
    }


def test_a_search_predicts_latency_from_the_device_profile(tmp_path, synthetic_profile):
    profile, path = synthetic_profile
    shutil.copy(path, tmp_path / path.name)
    file = write_space(
        tmp_path,
        _latency_space(device=path.name, constraints={"max_latency_pred_ms": 1e6}),
        "lat.yaml",
    )
    space = load_space(file)  # device: relative to the space file's folder
    assert space.predicts_latency and space.device.device_name == "synthetic"
    summary = run_search(
        SearchOptions(space=space, results_dir=tmp_path / "r", quiet=True, sampler="random")
    )
    assert summary.completed == 4
    trials = pd.read_csv(tmp_path / "r" / "costs" / "trials.csv")
    done = trials[trials.state == "COMPLETE"]
    for _, row in done.iterrows():
        cfg = DualViTConfig.from_dict(json.loads(row["config"]))
        features = cost_features(create_model(cfg, img_size=RES), RES)
        assert row["latency_pred_ms"] == pytest.approx(synthetic_ms(features), rel=1e-6)
        assert row["gflops"] == pytest.approx(features.gflops, rel=1e-9)
        assert math.isnan(row["latency_ms_median"])  # nothing was timed
    study = peek_study("costs", tmp_path / "r")
    recorded = study.user_attrs[STUDY_ATTR]["device_profile"]
    assert recorded["device_name"] == "synthetic" and recorded["samples"] == 12
    assert recorded["model"] == "features" and recorded["loo_mdape"] < 1e-6


def test_latency_pred_without_a_device_profile_says_how_to_make_one(tmp_path):
    with pytest.raises(UsageError, match="add device: FILE.*--calibrate-device"):
        load_space(write_space(tmp_path, _latency_space(), "lat.yaml"))
    bounded = _latency_space(objectives=["gflops"], constraints={"max_latency_pred_ms": 5})
    with pytest.raises(UsageError, match="add device: FILE"):
        load_space(write_space(tmp_path, bounded, "bounded.yaml"))


def test_a_device_profile_for_another_batch_is_refused_by_the_space(tmp_path, synthetic_profile):
    _, path = synthetic_profile
    space = _latency_space(device=str(path), profile={"resolution": RES, "batch_size": 8})
    with pytest.raises(UsageError, match="measured at batch 1, asked for batch 8"):
        load_space(write_space(tmp_path, space, "lat.yaml"))


def test_search_cli_takes_the_device_profile_from_the_command_line(
    tmp_path, synthetic_profile, capsys
):
    _, path = synthetic_profile
    file = write_space(tmp_path, _latency_space(n_trials=2), "lat.yaml")
    argv = ["search", "--space", str(file), "--results-dir", str(tmp_path / "r")]
    assert main(argv) == 2  # no device: one line naming the way
    assert "--calibrate-device" in _one_error_line(capsys)
    assert main([*argv, "--device-profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "latency_pred_ms is predicted, not measured: synthetic" in " ".join(out.split())
