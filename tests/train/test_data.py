"""Data sources: digits, ImageFolder layouts, CIFAR errors, batched augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dvbench.errors import UsageError
from dvbench.train import load_data, random_crop_flip
from dvbench.train.data import IMAGENET_MEAN, IMAGENET_STD, Normalizer, channel_stats

CLASSES = ("cat", "dog", "emu")


def write_class_folders(root: Path, per_class: dict[str, int], *, size: int = 12) -> Path:
    """``root/<class>/<i>.png``; brightness 60 * (index in CLASSES) + 0..40 of noise."""
    rng = np.random.default_rng(0)
    for name, count in per_class.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 40, (size, size, 3)) + 60 * CLASSES.index(name)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    return write_class_folders(tmp_path / "flat", {name: 10 for name in CLASSES})


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    root = tmp_path / "split"
    write_class_folders(root / "train", {name: 6 for name in CLASSES})
    write_class_folders(root / "val", {"dog": 2, "emu": 3})  # a class may be absent
    return root


def test_digits_is_a_stratified_upscaled_split():
    data = load_data("digits", resolution=32)
    assert data.train_images.shape == (1437, 3, 32, 32)
    assert data.test_images.shape == (360, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8
    assert data.class_names == tuple(str(d) for d in range(10))
    # grey replicated to three channels
    assert torch.equal(data.train_images[:, 0], data.train_images[:, 2])
    # stratified: every class keeps close to its share (about 36 of 360) in the test split
    counts = torch.bincount(data.test_labels, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38
    assert data.train_images.max() > 200  # 0..16 grey levels were rescaled to 0..255


def test_digits_split_follows_the_seed():
    a, b, c = (load_data("digits", resolution=16, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.test_labels, b.test_labels) and torch.equal(a.test_images, b.test_images)
    assert not torch.equal(a.test_images, c.test_images)


def test_per_class_caps_are_seeded():
    data = load_data("digits", resolution=16, train_samples=5, test_samples=3, seed=2)
    assert torch.equal(torch.bincount(data.train_labels), torch.full((10,), 5))
    assert torch.equal(torch.bincount(data.test_labels), torch.full((10,), 3))
    again = load_data("digits", resolution=16, train_samples=5, test_samples=3, seed=2)
    other = load_data("digits", resolution=16, train_samples=5, test_samples=3, seed=3)
    assert torch.equal(data.train_images, again.train_images)
    assert not torch.equal(data.train_images, other.train_images)


def test_normalisation_statistics():
    data = load_data("digits", resolution=16)
    pixels = data.train_images.double() / 255
    assert data.mean[0] == pytest.approx(pixels[:, 0].mean().item())
    assert data.std[1] == pytest.approx(pixels[:, 1].std().item(), rel=1e-6)
    imagenet = load_data("digits", resolution=16, normalization="imagenet")
    assert (imagenet.mean, imagenet.std) == (IMAGENET_MEAN, IMAGENET_STD)


def test_one_folder_of_classes_is_split_stratified(flat_folder: Path):
    data = load_data(flat_folder, resolution=16, val_fraction=0.2)
    assert data.class_names == CLASSES
    assert data.num_train == 24 and data.num_test == 6
    assert torch.equal(torch.bincount(data.test_labels), torch.tensor([2, 2, 2]))
    assert data.train_images.shape[1:] == (3, 16, 16)
    assert data.name == "flat"


def test_train_and_val_folders_share_class_indices(split_folder: Path):
    data = load_data(split_folder, resolution=12)
    assert data.class_names == CLASSES
    assert data.num_train == 18
    assert sorted(data.test_labels.tolist()) == [1, 1, 2, 2, 2]  # dog, emu in train's order
    # image colours follow the class, so the remapped labels point at the right images
    for images, labels in (
        (data.train_images, data.train_labels),
        (data.test_images, data.test_labels),
    ):
        brightness = images.float().mean(dim=(1, 2, 3))
        assert torch.all((brightness - 60 * labels - 20).abs() < 15)


def test_test_folder_works_like_val(tmp_path: Path):
    write_class_folders(tmp_path / "train", {"cat": 4, "dog": 4})
    write_class_folders(tmp_path / "test", {"cat": 2, "dog": 1})
    data = load_data(tmp_path, resolution=8)
    assert (data.num_train, data.num_test) == (8, 3)


def test_images_of_mixed_sizes_are_resized(tmp_path: Path):
    write_class_folders(tmp_path, {"cat": 4}, size=10)
    write_class_folders(tmp_path, {"dog": 4}, size=40)
    data = load_data(tmp_path, resolution=20, val_fraction=0.5)
    assert data.train_images.shape == (4, 3, 20, 20)


def test_folder_is_decoded_once_per_process(flat_folder: Path, monkeypatch: pytest.MonkeyPatch):
    import dvbench.train.data as data_module

    calls = []
    decode = data_module._decode
    monkeypatch.setattr(data_module, "_decode", lambda path: calls.append(path) or decode(path))
    first = load_data(flat_folder, resolution=12)
    second = load_data(flat_folder, resolution=12, train_samples=2)
    assert len(calls) == 30
    assert torch.equal(first.test_images, second.test_images)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("no-such-source", "not a built-in data set"),
        ("{tmp}/missing", "nor an existing folder"),
        ("{tmp}/empty", "no class subfolders with images"),
        ("{tmp}/file.txt", "not a folder"),
    ],
)
def test_bad_sources_are_usage_errors(tmp_path: Path, source: str, message: str):
    (tmp_path / "empty" / "nothing-here").mkdir(parents=True)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match=message):
        load_data(source.format(tmp=tmp_path), resolution=8)


def test_val_class_unknown_to_train_is_an_error(tmp_path: Path):
    write_class_folders(tmp_path / "train", {"cat": 3, "emu": 3})
    write_class_folders(tmp_path / "val", {"dog": 1})
    with pytest.raises(UsageError, match="'dog' has no counterpart"):
        load_data(tmp_path, resolution=8)


def test_too_few_images_to_stratify(tmp_path: Path):
    write_class_folders(tmp_path, {"cat": 1, "dog": 1})
    with pytest.raises(UsageError, match="cannot split 2 images"):
        load_data(tmp_path, resolution=8)


def test_missing_cifar_files_say_where_to_put_them(tmp_path: Path):
    with pytest.raises(UsageError, match=f"cifar10 not found under {tmp_path}.*--download"):
        load_data("cifar10", resolution=32, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"resolution": 0}, "resolution"),
        ({"resolution": 8, "train_samples": 0}, "train_samples"),
        ({"resolution": 8, "val_fraction": 1.0}, "val_fraction"),
        ({"resolution": 8, "normalization": "z"}, "normalization"),
    ],
)
def test_argument_errors_name_the_argument(kwargs: dict, name: str):
    with pytest.raises(ValueError, match=f"^{name}:"):
        load_data("digits", **kwargs)


@pytest.fixture
def decode_calls(monkeypatch) -> list[Path]:
    """Every image file decoded from now on (the per-process cache starts empty)."""
    import dvbench.train.data as data_module

    calls: list[Path] = []
    decode = data_module._decode

    def counted(path):
        calls.append(path)
        return decode(path)

    data_module._read_class_folders.cache_clear()
    monkeypatch.setattr(data_module, "_decode", counted)
    monkeypatch.setenv("DVBENCH_CACHE_DIR", "")  # count real decodes, not disk-cache hits
    yield calls
    data_module._read_class_folders.cache_clear()


def test_cifar10_mini_loads_every_image_once(cifar10_mini: Path, decode_calls: list[Path]):
    data = load_data(cifar10_mini, resolution=32)
    assert (data.num_train, data.num_test, data.num_classes) == (5000, 1000, 10)
    assert data.class_names[0] == "airplane"
    assert len(decode_calls) == len(set(decode_calls)) == 6000
    load_data(cifar10_mini, resolution=32, train_samples=50)
    assert len(decode_calls) == 6000  # decoded tensors are cached per process


# ------------------------------------------------------------------------------ batching
def test_crop_without_padding_or_flip_is_identity():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=0, flip=False)
    assert torch.equal(out, images)


def test_flip_only_mirrors_some_images():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=0)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, images, strict=True)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, images, strict=True)])
    assert torch.all(flipped | same) and 10 < int(flipped.sum()) < 54


def test_crop_shifts_within_the_padding_and_is_seeded():
    images = torch.randint(1, 256, (32, 3, 8, 8), dtype=torch.uint8)
    a = random_crop_flip(images, torch.Generator().manual_seed(1), padding=2)
    b = random_crop_flip(images, torch.Generator().manual_seed(1), padding=2)
    assert a.shape == images.shape and a.dtype == torch.uint8
    assert torch.equal(a, b)
    # each output is a shifted (possibly mirrored) window of the zero-padded image
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for out, source in zip(a, padded, strict=True):
        windows = [source[:, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out, w) or torch.equal(out, w.flip(-1)) for w in windows)


def test_normalizer_matches_the_formula():
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.2)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(Normalizer(mean, std, device="cpu")(images), expected)


def test_constant_channel_does_not_divide_by_zero():
    _, std = channel_stats(torch.zeros(4, 3, 2, 2, dtype=torch.uint8))
    assert min(std) > 0


# ------------------------------------------------------------------ the decoded-image cache
def _fresh_process(monkeypatch: pytest.MonkeyPatch, cache: Path) -> list[Path]:
    """Forget the in-process cache (as a new process would) and count decodes from now on."""
    import dvbench.train.data as data_module

    monkeypatch.setenv("DVBENCH_CACHE_DIR", str(cache))
    data_module._read_class_folders.cache_clear()
    calls: list[Path] = []
    decode = data_module._decode
    monkeypatch.setattr(data_module, "_decode", lambda path: calls.append(path) or decode(path))
    return calls


def test_a_new_process_reads_the_decoded_folder_from_disk(
    flat_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    calls = _fresh_process(monkeypatch, tmp_path / "cache")
    first = load_data(flat_folder, resolution=12)
    assert len(calls) == 30 and len(list((tmp_path / "cache").glob("*.pt"))) == 1
    calls = _fresh_process(monkeypatch, tmp_path / "cache")
    again = load_data(flat_folder, resolution=12)
    assert calls == []
    assert torch.equal(first.train_images, again.train_images)
    assert torch.equal(first.test_labels, again.test_labels)
    calls = _fresh_process(monkeypatch, tmp_path / "cache")
    load_data(flat_folder, resolution=10)  # another resolution is another entry
    assert len(calls) == 30


def test_a_changed_image_misses_the_cache(
    flat_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _fresh_process(monkeypatch, tmp_path / "cache")
    before = load_data(flat_folder, resolution=12, val_fraction=0.5, seed=1)
    Image.fromarray(np.full((12, 12, 3), 255, np.uint8)).save(flat_folder / "cat" / "000.png")
    calls = _fresh_process(monkeypatch, tmp_path / "cache")
    after = load_data(flat_folder, resolution=12, val_fraction=0.5, seed=1)
    assert len(calls) == 30
    assert not torch.equal(
        torch.cat([before.train_images, before.test_images]),
        torch.cat([after.train_images, after.test_images]),
    )


@pytest.mark.parametrize("damage", [b"not a torch file", "pickle"])
def test_a_damaged_or_hostile_cache_file_is_decoded_over(
    flat_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage
):
    import pickle

    _fresh_process(monkeypatch, tmp_path / "cache")
    expected = load_data(flat_folder, resolution=12)
    (entry,) = (tmp_path / "cache").glob("*.pt")
    marker = tmp_path / "pwned"
    if damage == "pickle":  # a payload that would run code if the cache were unpickled

        class Payload:
            def __reduce__(self):
                return (marker.write_text, ("ran",))

        damage = pickle.dumps(Payload())
    entry.write_bytes(damage)
    calls = _fresh_process(monkeypatch, tmp_path / "cache")
    again = load_data(flat_folder, resolution=12)
    assert len(calls) == 30 and not marker.exists()
    assert torch.equal(expected.train_images, again.train_images)


def test_an_empty_cache_setting_turns_the_cache_off(
    flat_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _fresh_process(monkeypatch, tmp_path / "cache")
    monkeypatch.setenv("DVBENCH_CACHE_DIR", "")
    load_data(flat_folder, resolution=12)
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_folder_only_costs_a_decode(
    flat_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "file").write_text("in the way")
    _fresh_process(monkeypatch, tmp_path / "file" / "cache")
    assert load_data(flat_folder, resolution=12).num_train == 24


# ------------------------------------------------------------------------- hostile images
def test_an_absurdly_large_image_is_refused_before_decoding(
    flat_folder: Path, monkeypatch: pytest.MonkeyPatch
):
    import dvbench.train.data as data_module

    monkeypatch.setenv("DVBENCH_CACHE_DIR", "")
    data_module._read_class_folders.cache_clear()
    monkeypatch.setattr(data_module, "MAX_IMAGE_PIXELS", 11 * 11)  # the images are 12 x 12
    with pytest.raises(UsageError, match="12 x 12 pixels is larger than the 121-pixel limit"):
        load_data(flat_folder, resolution=8)


def test_a_decompression_bomb_header_is_refused(flat_folder: Path, monkeypatch):
    """A real PNG whose header claims 100,000 x 100,000 pixels: refused from the header."""
    import struct
    import zlib

    import dvbench.train.data as data_module

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    (flat_folder / "cat" / "bomb.png").write_bytes(bomb)
    monkeypatch.setenv("DVBENCH_CACHE_DIR", "")
    data_module._read_class_folders.cache_clear()
    with pytest.raises(UsageError, match="bomb.png"):
        load_data(flat_folder, resolution=8)


def test_one_class_is_not_a_classification_set(tmp_path: Path):
    write_class_folders(tmp_path, {"cat": 6})
    with pytest.raises(UsageError, match="only one class folder.*'cat'"):
        load_data(tmp_path, resolution=8)
