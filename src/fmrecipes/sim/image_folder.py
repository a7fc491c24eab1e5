"""Your own images for the image task (``images.dataset=DIR``): a directory of image files of any size and mode,
or one subdirectory per class (the ImageFolder layout: classes are the sorted subdirectory names). A hash of each
file's path puts 10% in the test split, the same on every machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.corpora import is_validation
from ..data.image_text import IMAGE_SUFFIXES, image_files, load_image
from ..errors import FmError

TEST_FRACTION = 0.1
LUMA = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601: PIL's RGB -> L


@dataclass(frozen=True)
class ImageFolder:
    """The files of a directory and their class indices; ``classes`` is empty when it has no class folders."""

    files: list[Path]
    labels: list[int]
    classes: list[str]


def scan(root: str | Path) -> ImageFolder:
    """The images under ``root`` (its class subdirectories' if it has any holding images)."""
    root = Path(root)
    if not root.is_dir():
        raise FmError(f"images.dataset={root} is neither a built-in dataset (digits, mnist, fashion) nor a directory "
                      "of images")
    class_dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and image_files(d)]
    if class_dirs:
        pairs = [(f, k) for k, d in enumerate(class_dirs) for f in image_files(d)]
    else:
        pairs = [(f, 0) for f in image_files(root)]
    if not pairs:
        raise FmError(f"images.dataset={root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return ImageFolder([f for f, _ in pairs], [k for _, k in pairs], [d.name for d in class_dirs])


def folder_images(root: str | Path, split: str, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [N, channels, size, size] in [-1, 1], class indices [N])`` of ``split``: every file converted to
    RGB (or its luma for one channel) and resized, no crop."""
    root = Path(root)
    folder = scan(root)
    picked = [i for i, f in enumerate(folder.files)  # the corpora's hash split, on each file's relative path
              if is_validation(f.relative_to(root).as_posix(), TEST_FRACTION) == (split == "test")]
    if not picked:
        raise FmError(f"images.dataset={root} has no {split} images (the test split is a hash-chosen "
                      f"{TEST_FRACTION:.0%} of the files); add images")
    images = torch.stack([load_image(folder.files[i], size) for i in picked])
    if channels == 1:
        images = torch.einsum("nchw,c->nhw", images, LUMA)[:, None]
    return images.mul(2).sub(1).contiguous(), torch.tensor([folder.labels[i] for i in picked])
