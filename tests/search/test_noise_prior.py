"""A space's ``noise:`` section: the seed sd a calibration measured, the prior of the seed
variance until a study's own repeats pool one."""

from __future__ import annotations

import pytest
import yaml

from dvbench.space import load_space
from dvbench.space.definition import SPACES_DIR, parse_space


def _cifar(**changes):
    data = yaml.safe_load((SPACES_DIR / "cifar.yaml").read_text())
    data.update(changes)
    return data


def test_a_noise_prior_is_parsed_and_recorded():
    space = parse_space(_cifar(noise={"top1": {"seed_sd": 0.49, "df": 16}}))
    assert space.noise == {"top1": (0.49, 16.0)}
    assert space.record()["noise"] == {"top1": {"seed_sd": 0.49, "df": 16.0}}
    # a space without one records none, so the records of older studies stay equal
    data = _cifar()
    del data["noise"]  # the shipped cifar space carries its yardstick's
    plain = parse_space(data)
    assert plain.noise == {} and "noise" not in plain.record()


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        ({"gflops": {"seed_sd": 1, "df": 2}}, "noise.gflops: not a trained metric"),
        ({"top1": {"seed_sd": -1, "df": 2}}, "noise.top1.seed_sd"),
        ({"top1": {"seed_sd": float("nan"), "df": 2}}, "noise.top1.seed_sd"),
        ({"top1": {"seed_sd": 1}}, "noise.top1: want"),
        ({"top1": {"seed_sd": 1, "df": 0.5}}, "noise.top1.df"),
        ({"top1": {"seed_sd": True, "df": 3}}, "noise.top1.seed_sd"),
    ],
)
def test_a_bad_noise_prior_names_the_field(noise, message):
    with pytest.raises(ValueError, match=message):
        parse_space(_cifar(noise=noise))


def test_the_shipped_spaces_load_and_cifar_carries_its_measured_seed_sd():
    for name in ("small", "cifar"):
        assert load_space(name).name == name
    assert set(load_space("cifar").noise) == {"top1", "test_loss"}


def test_a_study_reads_the_prior_its_space_recorded(tmp_path):
    """A cost-only study whose space recorded a prior: the tables read it (a trained metric's
    prior reaches ``add_uncertainty`` as (seed_sd, df))."""
    from dvbench.search.tables import recorded_prior

    settings = {"noise": {"top1": {"seed_sd": 0.628, "df": 28.0}}, "objectives": []}
    assert recorded_prior(settings) == {"top1": (0.628, 28.0)}
    assert recorded_prior({}) == {} and recorded_prior({"noise": {"top1": 3}}) == {}
