"""Fashion-MNIST (Xiao et al. 2017, MIT licence) from the Debian package ``dataset-fashion-mnist``.

The four gzip'd IDX files are read with numpy; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import FmError

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "FMRECIPES_FASHION_MNIST"
CLASSES: tuple[str, ...] = ("t-shirt", "trousers", "pullover", "dress", "coat",
                            "sandal", "shirt", "sneaker", "bag", "ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def fashion_dir(directory: str | Path | None = None) -> Path:
    """The directory to read: ``directory``, else ``$FMRECIPES_FASHION_MNIST``, else the Debian location."""
    return Path(directory or os.environ.get(ENV_VAR) or DEFAULT_DIR)


def read_idx(path: Path, ndim: int, what: str = "Fashion-MNIST") -> np.ndarray:
    """A gzip'd IDX file (the MNIST family's format) of unsigned bytes as an array."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise FmError(f"{what} file {path} cannot be read: {exc}") from None
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise FmError(f"{what} file {path} is not an IDX file of {ndim} dimension(s) (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise FmError(f"{what} file {path} is truncated: expected {np.prod(dims)} values, found {data.size}")
    return data.reshape(dims)


@lru_cache(maxsize=4)
def _load(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = Path(directory)
    image_file, label_file = _FILES[split]
    missing = [name for name in (image_file, label_file) if not (root / name).is_file()]
    if missing:
        raise FmError(f"Fashion-MNIST {split} files {', '.join(missing)} not found in {root}: install the Debian "
                      f"package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or point "
                      f"data.fashion_dir / ${ENV_VAR} at a directory holding the four IDX .gz files")
    images, labels = read_idx(root / image_file, 3), read_idx(root / label_file, 1)
    if len(images) != len(labels):
        raise FmError(f"Fashion-MNIST {split} in {root}: {len(images)} images but {len(labels)} labels")
    return images, labels


def load_fashion_mnist(split: str, directory: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 28, 28], labels uint8 [N])`` of the ``train`` (60k) or ``test`` (10k) split."""
    if split not in _FILES:
        raise FmError(f"Fashion-MNIST split {split!r} does not exist; choose 'train' or 'test'")
    return _load(str(fashion_dir(directory)), split)


def zeroshot_images(n: int, size: int, directory: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` Fashion-MNIST test images of the test-scene half (never in train or val scenes) as RGB
    float [n, 3, size, size] in [0, 1] (bilinear resize, grey replicated), and their labels."""
    import torch.nn.functional as F

    images, labels = load_fashion_mnist("test", directory)
    idx = np.arange(len(labels) // 2, len(labels))[:n]
    gray = torch.from_numpy(images[idx]).float().div(255.0)[:, None]
    rgb = F.interpolate(gray, size=(size, size), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    return rgb.contiguous(), torch.from_numpy(labels[idx]).long()
