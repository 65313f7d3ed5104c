"""Data sources for proxy training: every source becomes uint8 image tensors held in memory.

Short schedules on small images stay bound by the model only if nothing is decoded or
transformed per sample per step. So each source is decoded once per process (cached), resized
to the proxy resolution once, and augmented in whole batches on the training device
(:func:`random_crop_flip`), with random numbers from the training loop's generator. An image
folder's decoded, resized tensor is also kept on disk (:func:`decoded_cache_dir`), keyed by the
folder, the resolution and every file's name, size and modification time, so the next process
skips decoding (4 s for cifar10-mini's 6,000 JPEGs on one core); a changed file misses the key.

Sources (``load_data(source, ...)``):

- ``digits``: scikit-learn's ``load_digits`` (1,797 real 8x8 grey scans of handwritten digits,
  shipped inside scikit-learn, so it works offline), upsampled to the proxy resolution;
- ``cifar10`` / ``cifar100``: torchvision's loaders over ``data_dir`` (downloaded only on request);
- a folder in ImageFolder layout: ``train/`` plus ``val/`` or ``test/`` subfolders of class
  folders, or one folder of class folders that is split by a seeded stratified fraction.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import pickle
import tarfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dvbench.errors import UsageError
from dvbench.train.settings import BUILTIN_SOURCES, DEFAULT_DATA_DIR, NORMALIZATIONS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Decoded image folders are cached here unless ``DVBENCH_CACHE_DIR`` names another folder
#: (an empty value turns the cache off).
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "dvbench" / "decoded"
#: Larger images are refused before decoding (decompression bombs): 8,192 x 8,192 pixels.
MAX_IMAGE_PIXELS = 8192 * 8192
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")

_Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True, eq=False)
class ProxyData:
    """A classification set ready for the proxy loop: uint8 ``(N, 3, res, res)`` images.

    The image tensors may be shared with the per-process cache; treat them as read-only.
    ``mean``/``std`` are the per-channel statistics (of [0, 1] pixels) the loop normalises with.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return int(self.train_labels.numel())

    @property
    def num_test(self) -> int:
        return int(self.test_labels.numel())

    def describe(self) -> str:
        return (
            f"{self.name}: {self.num_train} train / {self.num_test} test images, "
            f"{self.num_classes} classes, {self.resolution}x{self.resolution} px"
        )


_BUILTIN_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}


@dataclass(frozen=True)
class DataSpec:
    """Which images a proxy run uses, validated once; :meth:`load` reads them.

    ``source`` is ``digits``, ``cifar10``, ``cifar100`` or an ImageFolder folder;
    ``train_samples``/``test_samples`` cap the images per class (a seeded choice);
    ``val_fraction`` is the stratified held-out share when a source has no test split;
    ``normalization`` is ``"dataset"`` (statistics of the training images) or ``"imagenet"``.
    """

    source: str = "digits"
    resolution: int = 32
    data_dir: str | None = None
    train_samples: int | None = None
    test_samples: int | None = None
    download: bool = False
    val_fraction: float = 0.2
    normalization: str = "dataset"

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", str(self.source))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(self.data_dir))
        _check_positive_int("resolution", self.resolution)
        for name in ("train_samples", "test_samples"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction: must be between 0 and 1, got {self.val_fraction!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization: must be one of {', '.join(NORMALIZATIONS)}, "
                f"got {self.normalization!r}"
            )

    def load(self, *, seed: int = 0) -> ProxyData:
        """The images, decoded once per process (the same spec and seed: the same split)."""
        return _load(self, seed)

    @property
    def num_classes(self) -> int:
        """The classes of the data, known without decoding an image: 10 for digits and
        cifar10, 100 for cifar100, an image folder's class folders that hold images (under
        its ``train/`` when it has one). A folder that does not exist counts 0 (loading it says
        why)."""
        if self.source in _BUILTIN_CLASSES:
            return _BUILTIN_CLASSES[self.source]
        root = Path(self.source)
        if (root / "train").is_dir():
            root = root / "train"
        if not root.is_dir():
            return 0
        folders = (d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        return sum(1 for d in folders if _image_files(d))

    def ensure_available(self) -> None:
        """Make sure the images can be had, before anything is started that needs them: an
        image folder exists; CIFAR's files are under ``data_dir`` (downloaded now when
        ``download`` is on). :class:`UsageError` (one line saying what to give instead)
        otherwise -- a failed download included (no network, a proxy refusing, a full disk).
        Nothing is decoded."""
        key = self.source
        if key in ("cifar10", "cifar100"):
            root = Path(self.data_dir).expanduser() if self.data_dir else DEFAULT_DATA_DIR
            _cifar_files(key, str(root), download=self.download)
        elif key != "digits":
            folder = Path(key)
            if not folder.is_dir():
                _image_folder(folder, self.resolution, self.val_fraction, 0)  # its one line


def load_data(
    source: str | Path,
    *,
    resolution: int,
    train_samples: int | None = None,
    test_samples: int | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    download: bool = False,
    val_fraction: float = 0.2,
    normalization: str = "dataset",
) -> ProxyData:
    """Load a built-in data set or an ImageFolder-layout folder at ``resolution`` px square.

    The keyword form of :class:`DataSpec` (see there). Errors a user can cause (unknown
    name, missing or malformed folder, missing CIFAR files) raise :class:`UsageError` with
    one line naming the problem.
    """
    spec = DataSpec(
        source=str(source),
        resolution=resolution,
        data_dir=None if data_dir is None else str(data_dir),
        train_samples=train_samples,
        test_samples=test_samples,
        download=download,
        val_fraction=val_fraction,
        normalization=normalization,
    )
    return spec.load(seed=seed)


def _load(spec: DataSpec, seed: int) -> ProxyData:
    res, data_dir, val_fraction = spec.resolution, spec.data_dir, spec.val_fraction
    download = spec.download
    key = spec.source
    if key == "digits":
        images, labels, class_names = _digits(res)
        train, test = _split(images, labels, val_fraction=val_fraction, seed=seed)
        name = "digits"
    elif key in ("cifar10", "cifar100"):
        root = Path(data_dir).expanduser() if data_dir is not None else DEFAULT_DATA_DIR
        train, class_names = _cifar(key, str(root), train=True, download=download, res=res)
        test, _ = _cifar(key, str(root), train=False, download=download, res=res)
        name = key
    else:
        train, test, class_names = _image_folder(Path(key), res, val_fraction, seed)
        name = Path(key).name

    train = _cap_per_class(train, spec.train_samples, seed=seed)
    test = _cap_per_class(test, spec.test_samples, seed=seed + 1)
    if spec.normalization == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = channel_stats(train[0])
    return ProxyData(name, *train, *test, tuple(class_names), mean, std)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")


# ---------------------------------------------------------------------------------- sources
@functools.lru_cache(maxsize=4)
def _digits(res: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 17 grey levels (0..16) -> 0..255, one channel replicated to three after resizing
    grey = torch.from_numpy(digits.images).float().mul_(255 / 16).unsqueeze(1)
    images = _resize(grey, res, mode="bicubic").expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(digits.target).long()
    return images, labels, tuple(str(name) for name in digits.target_names)


def _cifar_class(name: str):
    import torchvision.datasets

    return torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100


def _instead(name: str, root: str) -> str:
    """What to give in place of a CIFAR set that cannot be had."""
    folder = Path(root) / _cifar_class(name).base_folder.rstrip("/")
    return (
        f"give --data DIR with an ImageFolder copy of it, or --data-dir DIR holding its "
        f"extracted files ({folder.name}/; in a space: train: data: or data_dir:)"
    )


#: What a failed download raises: no network, a refused or broken connection, a proxy's
#: answer (``URLError``/``HTTPError`` are ``OSError``), a full disk, a cut-off transfer.
_DOWNLOAD_ERRORS = (OSError, http.client.HTTPException, EOFError, tarfile.TarError)


def _cifar_files(name: str, root: str, *, download: bool) -> None:
    """The CIFAR files under ``root``: there already, or downloaded now (``download``);
    :class:`UsageError` in one line otherwise."""
    cls = _cifar_class(name)
    folder = Path(root) / cls.base_folder
    if all((folder / file).is_file() for file, _ in cls.train_list + cls.test_list):
        return
    if not download:
        raise UsageError(
            f"{name} not found under {root} ({folder}/, from {cls.url}); pass --download, "
            f"or {_instead(name, root)}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(root, train=True, download=True)
    except (*_DOWNLOAD_ERRORS, RuntimeError) as exc:
        reason = (str(getattr(exc, "reason", "") or exc).strip().splitlines() or [""])[0]
        reason = reason or type(exc).__name__
        raise UsageError(
            f"{name}: could not be downloaded from {cls.url} into {root} ({reason}); "
            f"{_instead(name, root)}"
        ) from None


@functools.lru_cache(maxsize=4)
def _cifar(name: str, root: str, *, train: bool, download: bool, res: int):
    cls = _cifar_class(name)
    _cifar_files(name, root, download=download)
    try:
        dataset = cls(root, train=train, download=False)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError):
        raise UsageError(
            f"{name}: the files under {Path(root) / cls.base_folder}/ are damaged; "
            f"{_instead(name, root)}"
        ) from None
    images = _to_nchw(dataset.data)
    labels = torch.tensor(dataset.targets, dtype=torch.long)
    return (resize_images(images, res), labels), tuple(dataset.classes)


def _image_folder(
    root: Path, res: int, val_fraction: float, seed: int
) -> tuple[_Split, _Split, tuple[str, ...]]:
    if not root.is_dir():
        if root.exists():
            raise UsageError(f"data {str(root)!r}: not a folder")
        raise UsageError(
            f"data {str(root)!r}: not a built-in data set ({', '.join(BUILTIN_SOURCES)}) "
            "nor an existing folder"
        )
    train_root = root / "train"
    test_root = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not train_root.is_dir():
        train_root, test_root = root, None
    images, labels, class_names = _read_class_folders(str(train_root.resolve()), res)
    if len(class_names) < 2:
        raise UsageError(
            f"{train_root}: only one class folder with images ({class_names[0]!r}); a "
            "classifier needs at least two"
        )
    if test_root is None:
        train, test = _split(images, labels, val_fraction=val_fraction, seed=seed)
        return train, test, class_names
    test_images, test_labels, test_names = _read_class_folders(str(test_root.resolve()), res)
    unknown = sorted(set(test_names) - set(class_names))
    if unknown:
        raise UsageError(
            f"{test_root}: class folder {unknown[0]!r} has no counterpart in {train_root}"
        )
    # map the test folder's class indices onto the training folder's
    remap = torch.tensor([class_names.index(n) for n in test_names], dtype=torch.long)
    return (images, labels), (test_images, remap[test_labels]), class_names


@functools.lru_cache(maxsize=8)
def _read_class_folders(root: str, res: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Decode ``root/<class>/<image>`` once per process (threads: decoding releases the GIL),
    or read the decoded tensor from the disk cache when no file changed since."""
    folders = sorted(d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))
    files_per_class = [_image_files(d) for d in folders]
    classes = [(d.name, files) for d, files in zip(folders, files_per_class, strict=True) if files]
    if not classes:
        raise UsageError(
            f"{root}: no class subfolders with images (expected ImageFolder layout: "
            "<class>/<image>, optionally under train/ and val/ or test/)"
        )
    paths = [path for _, files in classes for path in files]
    labels = torch.tensor([i for i, (_, files) in enumerate(classes) for _ in files])
    class_names = tuple(name for name, _ in classes)
    cache = _cache_file(root, res, paths)
    images = _read_cache(cache, len(paths), res)
    if images is None:
        images = _decode_all(paths, res)
        _write_cache(cache, images)
    return images, labels, class_names


def _decode_all(paths: Sequence[Path], res: int) -> torch.Tensor:
    workers = min(16, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(_decode, paths))
    if len({img.shape for img in decoded}) == 1:
        return resize_images(_to_nchw(np.stack(decoded)), res)
    return torch.cat([resize_images(_to_nchw(img[None]), res) for img in decoded])


def decoded_cache_dir() -> Path | None:
    """Where decoded image folders are cached; None when ``DVBENCH_CACHE_DIR`` is empty."""
    value = os.environ.get("DVBENCH_CACHE_DIR")
    if value is None:
        return DEFAULT_CACHE_DIR
    return Path(value).expanduser() if value.strip() else None


def _cache_file(root: str, res: int, paths: Sequence[Path]) -> Path | None:
    folder = decoded_cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256(f"v1 {root} {res}\n".encode())
    for path in paths:
        stat = path.stat()
        key.update(f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return folder / f"{key.hexdigest()[:32]}.pt"


def _read_cache(cache: Path | None, count: int, res: int) -> torch.Tensor | None:
    """The cached tensor if it is there and has the expected shape; None otherwise (a damaged
    or foreign file is decoded over, never trusted: tensors only, ``weights_only``)."""
    if cache is None or not cache.is_file():
        return None
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it fails
            warnings.simplefilter("ignore")
            images = torch.load(cache, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable cache file is a miss
        return None
    expected = (count, 3, res, res)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        return None
    return images if tuple(images.shape) == expected else None


def _write_cache(cache: Path | None, images: torch.Tensor) -> None:
    if cache is None:
        return
    from dvbench.files import write_with

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_with(lambda tmp: torch.save(images, tmp), cache)
    except OSError:  # a read-only or full cache folder only costs the next process a decode
        pass


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _decode(path: Path) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array (PIL releases the GIL while decoding, so threads help).

    The size in the header is checked before any pixel is decoded: an image of more than
    :data:`MAX_IMAGE_PIXELS` is refused, not decoded into gigabytes."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UsageError(
                    f"{path}: {width} x {height} pixels is larger than the "
                    f"{MAX_IMAGE_PIXELS:,}-pixel limit for proxy data"
                )
            return np.array(img.convert("RGB"))
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise UsageError(f"{path}: cannot decode image ({exc})") from None


def _to_nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


# -------------------------------------------------------------------------- preprocessing
def resize_images(images: torch.Tensor, res: int, *, chunk: int = 1024) -> torch.Tensor:
    """Resize uint8 ``(N, C, H, W)`` images to ``res`` x ``res`` (antialiased bilinear)."""
    if images.shape[-2:] == (res, res):
        return images
    return torch.cat([_resize(part.float(), res, mode="bilinear") for part in images.split(chunk)])


def _resize(images: torch.Tensor, res: int, *, mode: str) -> torch.Tensor:
    """float pixels in [0, 255] -> uint8 at ``res`` (antialiasing only matters when shrinking)."""
    shrinking = images.shape[-1] > res or images.shape[-2] > res
    out = F.interpolate(
        images, size=(res, res), mode=mode, align_corners=False, antialias=shrinking
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, as fractions of 255."""
    x = images.transpose(0, 1).reshape(images.shape[1], -1).double().div_(255)
    std = x.std(dim=1).clamp_min(1e-3)  # a constant channel must not divide by zero
    return tuple(x.mean(dim=1).tolist()), tuple(std.tolist())


def _split(
    images: torch.Tensor, labels: torch.Tensor, *, val_fraction: float, seed: int
) -> tuple[_Split, _Split]:
    """A seeded split that keeps every class's share in both halves."""
    from sklearn.model_selection import train_test_split

    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)),
            test_size=val_fraction,
            stratify=labels.numpy(),
            random_state=seed,
        )
    except ValueError as exc:
        raise UsageError(
            f"cannot split {len(labels)} images into a stratified {val_fraction:.0%} held-out "
            f"set ({exc}); add images or give a train/ and val/ layout"
        ) from None
    train_idx, test_idx = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(test_idx))
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])


def _cap_per_class(split: _Split, cap: int | None, *, seed: int) -> _Split:
    """At most ``cap`` images per class, chosen by a seeded permutation (order kept)."""
    images, labels = split
    if cap is None or int(torch.bincount(labels).max()) <= cap:
        return split
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    shuffled = labels[order]
    # rank of each image within its class, in shuffled order
    sort = torch.sort(shuffled, stable=True).indices
    ranks = torch.empty_like(sort)
    counts = torch.bincount(shuffled)
    starts = torch.cumsum(counts, 0) - counts
    ranks[sort] = torch.arange(len(sort)) - starts[shuffled[sort]]
    keep = order[ranks < cap].sort().values
    return images[keep], labels[keep]


# ------------------------------------------------------------------------------ batching
def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, *, padding: int, flip: bool = True
) -> torch.Tensor:
    """Random crop after zero padding, plus horizontal flip, for a whole batch in one gather.

    The per-sample offsets and flips come from ``generator`` (a CPU generator, so a seed gives
    the same augmentation on every device) and are applied where ``images`` lives. The result
    is a channels-last view (the gather produces NHWC).
    """
    b, _, h, w = images.shape
    device = images.device
    offsets = torch.randint(0, 2 * padding + 1, (2, b, 1), generator=generator)
    flips = torch.rand(b, 1, generator=generator) < 0.5
    rows = (offsets[0] + torch.arange(h)).to(device, non_blocking=True)
    cols = offsets[1] + torch.arange(w)
    if flip:
        cols = torch.where(flips, cols.flip(1), cols)
    cols = cols.to(device, non_blocking=True)
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    batch = torch.arange(b, device=device)[:, None, None]
    # advanced indices around a slice: result is (B, H, W, C)
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class Normalizer:
    """uint8 images -> float ``(x / 255 - mean) / std`` as one multiply-add on the device."""

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], *, device: torch.device | str
    ) -> None:
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images.float(), self.scale)
