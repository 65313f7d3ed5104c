"""Device profiles are files a user may have been handed: every field is checked before
anything reads it, a device or a deep file is refused at once, and a prediction is never
negative or non-finite (issue 39)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time

import pytest
import torch
from search_helpers import COST_SPACE, peek_study, write_space

from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.latency import FEATURES, FORMAT, VERSION, LatencyFit, load_device_profile

RES = 64


def _valid() -> dict:
    """A well-formed profile (``flops`` model, five samples) written by hand."""
    samples = [
        {
            "name": f"costs_{i:03d}",
            "features": {**{f: 0.1 * (i + 1) for f in FEATURES}, "gflops": 0.01 * (i + 1)},
            "latency_ms_median": 2.0 + i,
            "latency_ms_p10": 1.9 + i,
            "latency_ms_p90": 2.1 + i,
            "runs": 3,
            "rounds": [],
            "config": {},
        }
        for i in range(5)
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": "2025-01-01T00:00:00+00:00",
        "device": "cpu",
        "device_name": "handmade",
        "torch": torch.__version__,
        "batch_size": 1,
        "threads": 1,
        "resolution": RES,
        "space": "costs",
        "timing": {"warmup": 0, "statistic": "median"},
        "samples": samples,
        "fit": {
            "model": "flops",
            "inputs": ["gflops"],
            "coef": [100.0],
            "intercept": 1.0,
            "samples": 5,
            "loo": {"flops": {"mdape": 1.0, "spearman": 0.9}},
            "ranges": {"gflops": [0.01, 0.05]},
        },
    }


def _set(data: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()


def _write(tmp_path, data, name="device.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_handmade_profile_loads_and_predicts(tmp_path):
    profile = load_device_profile(_write(tmp_path, _valid()))
    assert profile.predict({"gflops": 0.02}) == pytest.approx(3.0)


def test_an_undefined_figure_is_null_in_the_file_and_nan_when_read(tmp_path):
    data = _set(_valid(), "fit.loo.flops.spearman", None)  # constant ranks: undefined
    assert math.isnan(load_device_profile(_write(tmp_path, data)).held_out["spearman"])


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("fit.coef.0", -14.65, "fit.coef[0]"),
        ("fit.coef.0", 1e308, "fit.coef[0]"),
        ("fit.coef.0", "5", "fit.coef[0]"),
        ("fit.coef", [1.0, 2.0], "fit.coef"),
        ("fit.intercept", -1465.0, "fit.intercept"),
        ("fit.intercept", None, "fit.intercept"),
        ("fit.model", "lookup", "fit.model"),
        ("fit.model", "features", "fit.model"),  # a known model, but not one that was fitted
        ("fit.inputs", ["gflops", "ops"], "fit.inputs"),
        ("fit.inputs", "gflops", "fit.inputs"),
        ("fit.samples", 0, "fit.samples"),
        ("fit.loo", [], "fit.loo"),
        ("fit.ranges.gflops", [1.0], "fit.ranges.gflops"),
        ("fit.ranges.gflops", [2.0, 1.0], "fit.ranges.gflops[1]"),
        ("fit", _DELETE, "fit"),
        ("batch_size", 1.5, "batch_size"),
        ("batch_size", 0, "batch_size"),
        ("batch_size", 10**30, "batch_size"),
        ("batch_size", True, "batch_size"),
        ("resolution", "224", "resolution"),
        ("resolution", 4, "resolution"),
        ("resolution", 10**9, "resolution"),
        ("threads", -1, "threads"),
        ("device_name", 7, "device_name"),
        ("torch", _DELETE, "torch"),
        ("timing", [], "timing"),
        ("timing.warmup", {"x": 1}, "timing.warmup"),
        ("samples", {}, "samples"),
        ("samples.0", "costs_000", "samples[0]"),
        ("samples.0.features", [0.1, 0.2], "samples[0].features"),
        ("samples.0.features.ops", -3.0, "samples[0].features.ops"),
        ("samples.0.latency_ms_median", "fast", "samples[0].latency_ms_median"),
        ("samples.0.runs", 2.5, "samples[0].runs"),
        ("samples.0.rounds", [1.0, "x"], "samples[0].rounds[1]"),
        ("samples.0.config", 3, "samples[0].config"),
    ],
)
def test_every_field_of_the_schema_is_checked(tmp_path, field, value, named):
    path = _write(tmp_path, _set(_valid(), field, value))
    with pytest.raises(UsageError) as error:
        load_device_profile(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and f" {named}:" in message, message
    assert "\n" not in message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ['"intercept": 1.0', '"batch_size": 1', '"coef": [100.0]'])
def test_nan_and_infinity_are_not_json(tmp_path, constant, field):
    text = json.dumps(_valid())
    name, _ = field.split(": ")
    broken = text.replace(field, f"{name}: " + (f"[{constant}]" if "coef" in name else constant))
    assert broken != text
    with pytest.raises(UsageError, match=f"{constant} is not JSON"):
        load_device_profile(_write(tmp_path, broken))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_link_to_a_device_is_refused_at_once(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} is not here")
    link = tmp_path / "device.json"
    link.symlink_to(device)
    start = time.perf_counter()
    with pytest.raises(UsageError, match="not a regular file"):
        load_device_profile(link)
    assert time.perf_counter() - start < 1.0


def test_a_pipe_and_a_folder_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(UsageError, match="not a regular file"):
        load_device_profile(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        load_device_profile(tmp_path)


def test_a_huge_profile_is_refused_unread(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as handle:
        handle.truncate(200 << 20)  # sparse: 200 MB that take no disk
    start = time.perf_counter()
    with pytest.raises(UsageError, match="larger than the"):
        load_device_profile(path)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deep_json_is_refused_in_under_a_second(tmp_path, opening):
    depth = 100_000
    closing = "]" if opening == "[" else "}"
    path = _write(tmp_path, opening * depth + "1" + closing * depth)
    start = time.perf_counter()
    with pytest.raises(UsageError, match=f"nested {depth} deep"):
        load_device_profile(path)
    assert time.perf_counter() - start < 1.0


def test_brackets_inside_strings_do_not_count_as_depth(tmp_path):
    data = _set(_valid(), "device_name", "[[[[{{{{" * 100 + '\\"]]]')
    assert load_device_profile(_write(tmp_path, data)).device_name.startswith("[[[[")


def test_a_saved_profile_is_strict_json_even_with_an_undefined_figure(tmp_path):
    profile = load_device_profile(_write(tmp_path, _valid()))
    profile = dataclasses.replace(
        profile,
        fit=dataclasses.replace(profile.fit, loo={"flops": {"mdape": 1.0, "spearman": math.nan}}),
    )
    saved = profile.save(tmp_path / "again.json")

    def refuse(constant):
        raise AssertionError(f"{constant} written")

    again = json.loads(saved.read_text(), parse_constant=refuse)
    assert again["fit"]["loo"]["flops"]["spearman"] is None
    assert load_device_profile(saved).as_dict().keys() == profile.as_dict().keys()


def test_a_prediction_is_never_negative_or_non_finite():
    below = LatencyFit(model="flops", inputs=("gflops",), coef=(1.0,), intercept=0.0, samples=5)
    assert below.predict({"gflops": -5.0}) == 0.0
    huge = LatencyFit(model="flops", inputs=("gflops",), coef=(1e308,), intercept=0.0, samples=5)
    with pytest.raises(ValueError, match="predicted inf ms"):
        huge.predict({"gflops": 1e10})


# ---------------------------------------------------------------------------------- CLI
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_profile_device_profile_refuses_a_bad_profile_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, _set(_valid(), "fit.coef.0", -1465.0))
    argv = ["profile", "pvt_v2_b0", "--res", str(RES), "--no-latency", "--device-profile"]
    assert main([*argv, str(path)]) == 2
    line = _one_error_line(capsys)
    assert str(path) in line and "fit.coef[0]" in line


def _latency_space(**changes) -> dict:
    return {
        **COST_SPACE,
        "objectives": [{"metric": "latency_pred_ms"}, {"metric": "params_m"}],
        "n_trials": 2,
        "seeds": {},
        **changes,
    }


@pytest.mark.parametrize("how", ["--device-profile", "device:"])
def test_search_refuses_a_bad_profile_before_any_trial(tmp_path, capsys, how):
    bad = _write(tmp_path, _set(_valid(), "fit.intercept", -1465.0), "bad.json")
    changes = {"device": "bad.json"} if how == "device:" else {}
    space = write_space(tmp_path, _latency_space(**changes), "lat.yaml")
    results = tmp_path / "r"
    argv = ["search", "--space", str(space), "--results-dir", str(results)]
    if how == "--device-profile":
        argv += ["--device-profile", str(bad)]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "bad.json" in line and "fit.intercept" in line
    assert peek_study("costs", results) is None  # no study, so no trial
