"""Data that cannot be had is one line before the study starts (issue 39): no network, a
proxy that refuses, a full disk. ``search --space cifar`` then exits 2 and creates no trial."""

from __future__ import annotations

import errno
import socket

import pytest
import torchvision.datasets.cifar
from search_helpers import peek_study

import dvbench.train.data
from dvbench.cli import main
from dvbench.errors import UsageError
from dvbench.train import DataSpec


def _no_network(monkeypatch):
    def unreachable(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _refusing_proxy(monkeypatch):
    with socket.socket() as probe:  # a local port nothing listens on: the proxy refuses
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


def _full_disk(monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_space)


FAULTS = {"no network": _no_network, "proxy refuses": _refusing_proxy, "disk full": _full_disk}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_download_says_what_to_give_instead(tmp_path, monkeypatch, fault):
    FAULTS[fault](monkeypatch)
    spec = DataSpec(source="cifar10", data_dir=str(tmp_path / "data"), download=True)
    with pytest.raises(UsageError) as error:
        spec.ensure_available()
    message = str(error.value)
    assert "\n" not in message and "could not be downloaded" in message
    assert "--data DIR" in message and "--data-dir DIR" in message


@pytest.mark.parametrize("fault", FAULTS)
def test_offline_search_of_cifar_exits_2_with_no_trial(tmp_path, monkeypatch, capsys, fault):
    monkeypatch.setattr(dvbench.train.data, "DEFAULT_DATA_DIR", tmp_path / "data")
    FAULTS[fault](monkeypatch)
    results = tmp_path / "results"
    status = main(["search", "--space", "cifar", "--results-dir", str(results), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1, err
    assert "cifar10: could not be downloaded" in err and "--data DIR" in err
    assert peek_study("cifar", results) is None  # no study, so no trial


def test_a_missing_image_folder_is_refused_before_decoding(tmp_path):
    with pytest.raises(UsageError, match="nor an existing folder"):
        DataSpec(source=str(tmp_path / "absent")).ensure_available()
    DataSpec(source="digits").ensure_available()  # always there
