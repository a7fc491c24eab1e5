"""Image-text sets on disk: export FashionScenes as PNG + ``index.jsonl``, and read any set in that format.

An index row needs ``image`` (a path, relative to the index's directory or absolute) and alt-text as
``alt_texts`` (a list) or ``alt_text`` (a string); ``caption``, ``realigned_caption`` and the dense labels
(``semantic``, ``instance``, ``depth`` image paths) are optional. So a real image-text set (image path +
alt-text [+ caption]) written as jsonl or parquet reads the same way as an export.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from ..core.fileio import AtomicDir, atomic_write_json, iter_jsonl, read_parquet, saved_dataset
from ..errors import FmError
from .scene_config import SceneConfig
from .scene_pack import ScenePack
from .scenes import make_scene

DEPTH_SCALE = 1000.0  # depth is stored as a 16-bit PNG of round(depth * DEPTH_SCALE)
MARKER = "scenes.json"  # written into every export; an --out without it is never overwritten


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, optimize=False, compress_level=1)


def export_scenes(cfg: SceneConfig, split: str, n: int, out: str | Path, progress: bool = True) -> Path:
    """Write ``n`` scenes of ``split`` to ``out``: images, masks and depth as PNG, and ``index.jsonl``.

    The directory is filled beside ``out`` and renamed into place at the end, so a killed export leaves
    nothing half-written; an existing ``out`` is only replaced if it is an earlier export.
    """
    from ..config import to_dict

    cfg.validate()
    if n < 1:
        raise FmError(f"--n {n}: export at least one scene")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise FmError(f"--out {out} exists and is not a FashionScenes export; choose a new directory")
    with AtomicDir(out) as tmp:
        for sub in ("images", "masks", "depth"):
            (tmp / sub).mkdir()
        rows = []
        for i in tqdm(range(n), desc=f"export {split}", unit="scene", disable=not progress):
            scene = make_scene(cfg, split, i)
            name = f"{split}-{i:06d}.png"
            _save_png(scene.image, tmp / "images" / name)
            _save_png(scene.semantic, tmp / "masks" / f"semantic-{name}")
            _save_png(scene.instance, tmp / "masks" / f"instance-{name}")
            _save_png(np.rint(scene.depth * DEPTH_SCALE).astype(np.uint16), tmp / "depth" / name)
            rows.append({"image": f"images/{name}", "alt_texts": scene.alt_texts, "caption": scene.caption,
                         "realigned_caption": scene.realigned_caption, "rounds": scene.rounds,
                         "semantic": f"masks/semantic-{name}", "instance": f"masks/instance-{name}",
                         "depth": f"depth/{name}", "graph": scene.graph, "alt_text_errors": scene.alt_text_errors})
        (tmp / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        atomic_write_json(tmp / MARKER, {"split": split, "n": n, "config": to_dict(cfg)})
    return out


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _index_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("index.jsonl", "index.parquet"):
            if (path / name).is_file():
                return path / name
        raise FmError(f"image-text directory {path} has no index.jsonl or index.parquet, no images with sidecar "
                      "texts and is not a saved `datasets` dataset")
    if not path.is_file():
        raise FmError(f"image-text index {path} does not exist")
    return path


def _read_rows(index: Path) -> list[dict[str, Any]]:
    if index.suffix == ".parquet":
        return read_parquet(index, "image-text index").to_pylist()
    if index.suffix != ".jsonl":
        raise FmError(f"image-text index {index} must be a .jsonl or .parquet file")
    return [row for _, row in iter_jsonl(index, index.read_text(encoding="utf-8"), "image-text index")]


def image_files(directory: Path) -> list[Path]:
    """The image files (by suffix, :data:`IMAGE_SUFFIXES`) directly in ``directory``, sorted."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _sidecar_rows(directory: Path) -> list[dict[str, Any]]:
    """A directory of images, each with a sidecar: ``<stem>.json`` (the keys of an index row) or ``<stem>.txt``
    (its alt-text)."""
    rows = []
    for image in image_files(directory):
        as_json, as_text = image.with_suffix(".json"), image.with_suffix(".txt")
        if as_json.is_file():
            try:
                row = json.loads(as_json.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise FmError(f"sidecar {as_json} is not valid JSON") from None
            if not isinstance(row, dict):
                raise FmError(f"sidecar {as_json} is not a JSON object")
        elif as_text.is_file():
            row = {"alt_text": as_text.read_text(encoding="utf-8").strip()}
        else:
            raise FmError(f"image {image} has no sidecar text ({as_text.name} with its alt-text, or {as_json.name})")
        rows.append({**row, "image": image.name})
    return rows


def _dataset_rows(directory: Path, ds) -> list[dict[str, Any]]:
    """The rows of a saved ``datasets`` dataset ``ds`` (at ``directory``): an ``image`` column (``datasets.Image``)
    and the text columns of an index row; images stay encoded until read."""
    from datasets import Image

    if "image" not in ds.column_names:
        raise FmError(f"dataset {directory} has no column 'image' (columns: {', '.join(ds.column_names)})")
    rows = ds.remove_columns(["image"]).to_list()
    for row, image in zip(rows, ds.cast_column("image", Image(decode=False))["image"]):
        row["image"] = image  # {"bytes": ..., "path": ...}
    return rows


def read_image_text(path: Path) -> tuple[list[dict[str, Any]], Path]:
    """The rows of an image-text set and the directory its relative image paths start from: an index
    (``.jsonl`` / ``.parquet``, or a directory holding ``index.jsonl`` / ``index.parquet``), a directory of images
    with sidecar texts, or a saved ``datasets`` dataset with an ``image`` column."""
    ds = saved_dataset(path) if path.is_dir() else None
    if ds is not None:
        return _dataset_rows(path, ds), path
    if path.is_dir() and not any((path / n).is_file() for n in ("index.jsonl", "index.parquet")) and image_files(path):
        return _sidecar_rows(path), path
    index = _index_file(path)
    return _read_rows(index), index.parent


def _alt_texts(row: dict[str, Any], where: str) -> list[str]:
    if "alt_texts" in row:
        value = row["alt_texts"]
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise FmError(f"{where}: alt_texts must be a list of strings")
        return value
    if "alt_text" in row:
        if not isinstance(row["alt_text"], str):
            raise FmError(f"{where}: alt_text must be a string")
        return [row["alt_text"]]
    raise FmError(f"{where} has no alt-text: expected a key alt_texts (list) or alt_text (string)")


def load_image(path: Path | dict, size: int | None = None, mode: str = "RGB") -> torch.Tensor:
    """An image file (or a ``datasets`` encoded image, ``{"bytes", "path"}``) as a tensor: RGB float [3, H, W]
    in [0, 1] (any mode converted; resized, no crop, to ``size`` if given); ``mode`` "L"/"I;16" give the raw
    [H, W] integer values of a mask or depth PNG."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(path, dict):
        source = io.BytesIO(path["bytes"]) if path.get("bytes") else Path(path.get("path") or "")
        path = Path(path.get("path") or "image bytes")
    else:
        source = path
    try:
        with Image.open(source) as img:
            array = np.asarray(img.convert(mode) if mode == "RGB" else img)
    except FileNotFoundError:
        raise FmError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FmError(f"image {path} cannot be decoded: {exc}") from None
    if mode != "RGB":
        return torch.from_numpy(array.astype(np.int64))
    image = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
    if size is not None and image.shape[1:] != (size, size):
        image = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)[0].clamp_(0, 1)
    return image


class ImageTextIndex(Dataset):
    """A FashionScenes export or a real image-text set: samples like :func:`~fmrecipes.data.scenes.scene_sample`
    (``image``, ``alt_texts``, and whichever of ``caption``, ``realigned_caption``, ``semantic``,
    ``instance``, ``depth``, ``graph`` the index has). Images (and dense labels, by nearest neighbour) are resized to ``image_size`` if given."""

    def __init__(self, path: str | Path, image_size: int | None = None, transform=None):
        self.index = Path(path)
        self.rows, self.root = read_image_text(self.index)
        if not self.rows:
            raise FmError(f"image-text set {self.index} has no rows")
        for n, row in enumerate(self.rows, 1):
            where = f"image-text set {self.index} row {n}"
            if not isinstance(row.get("image"), (str, dict)):
                raise FmError(f"{where} has no image path (key 'image')")
            row["alt_texts"] = _alt_texts(row, where)
        self.image_size, self.transform = image_size, transform

    def __len__(self) -> int:
        return len(self.rows)

    def path(self, value: str | dict) -> Path | dict:
        if isinstance(value, dict):  # an encoded image of a `datasets` dataset
            return value
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        sample: dict[str, Any] = {"image": load_image(self.path(row["image"]), self.image_size),
                                  "alt_texts": list(row["alt_texts"])}
        for key in ("caption", "realigned_caption", "rounds", "graph", "alt_text_errors"):
            if row.get(key) is not None:
                sample[key] = row[key]
        for key in ("semantic", "instance"):
            if row.get(key):
                sample[key] = load_image(self.path(row[key]), mode="L")
        if row.get("depth"):
            sample["depth"] = load_image(self.path(row["depth"]), mode="I;16").float() / DEPTH_SCALE
        for key in ("semantic", "instance", "depth"):
            if key in sample and self.image_size and sample[key].shape != (self.image_size,) * 2:
                dense = F.interpolate(sample[key][None, None].float(), size=(self.image_size,) * 2, mode="nearest-exact")
                sample[key] = dense[0, 0].to(sample[key].dtype)
        if self.transform is not None:
            sample = self.transform(sample, torch.Generator().manual_seed(i))
        return sample


def image_text_pack(path: str | Path, size: int, need: tuple[str, ...] = (), progress: bool = False) -> ScenePack:
    """Every row of your image-text set at ``path`` (any format :func:`read_image_text` reads) in memory, as the
    recipes hold FashionScenes: uint8 images resized (no crop) to ``size``, alt-texts, ``caption`` and
    ``realigned_caption`` ("" where absent), no masks or depth. ``need``: the text keys this run trains on; a row
    without one is a one-line error naming it."""
    index = ImageTextIndex(path, image_size=size)
    for n, row in enumerate(index.rows, 1):
        for key in need:
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise FmError(f"image-text set {path} row {n} has no {key!r} text, which this run trains on")
    images = [(index[i]["image"].permute(1, 2, 0) * 255).round().to(torch.uint8)
              for i in tqdm(range(len(index)), desc=f"read {Path(path).name}", disable=not progress, leave=False)]
    n = len(images)
    return ScenePack(images=torch.stack(images), semantic=torch.zeros(n, 0, 0, dtype=torch.long),
                     depth=torch.zeros(n, 0, 0), alt_texts=[r["alt_texts"] for r in index.rows],
                     captions=[r.get("caption") or "" for r in index.rows],
                     realigned=[r.get("realigned_caption") or "" for r in index.rows],
                     labels=[[] for _ in range(n)], graphs=[{} for _ in range(n)],
                     alt_text_errors=[[] for _ in range(n)])
