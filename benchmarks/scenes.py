"""FashionScenes generation speed (scenes/s on one core) against reading the same scenes pre-rendered from disk.

Ours: :func:`fmrecipes.data.scenes.make_scene` (image, semantic and instance masks, depth, scene graph, dense
caption, alt-texts and re-aligned rounds) plus :func:`scene_sample` (the tensors a training step receives).
Baseline: what a user would otherwise do, export once and train from files: :class:`ImageTextIndex` on a
FashionScenes export of the same scenes (PNG decode of image, masks and depth, plus the index row), which is
also how any real image-text set is read. Both on one thread, interleaved rounds, medians; one JSON object.
The issue's target: at least 2,000 scenes/s at 64x64. Against the machine's limit: the bytes of the tensors a
generated sample holds (image, masks, depth) per second over one core's copy bandwidth, measured in the same run
(``bandwidth_utilisation``; generation composes, renders and writes text, so this is a floor, not a roofline).

    python benchmarks/scenes.py [--size 64 --n 2000 --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch
from machine_peak import copy_bandwidth
from timing import interleaved_medians, significant

from fmrecipes.data.image_text import ImageTextIndex, export_scenes
from fmrecipes.data.scene_config import SceneConfig
from fmrecipes.data.scenes import make_scene, scene_sample


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = SceneConfig(size=args.size)
    with tempfile.TemporaryDirectory() as tmp:
        index = ImageTextIndex(export_scenes(cfg, "train", args.n, f"{tmp}/scenes", progress=False))

        def generate():
            for i in range(args.n):
                scene_sample(make_scene(cfg, "train", i))

        def read():
            for i in range(args.n):
                index[i]

        # the warm-up round fills the texture and Fashion-MNIST caches and the page cache
        seconds = interleaved_medians({"generate": generate, "read_exported_png": read}, args.rounds)
    rate = {k: args.n / s for k, s in seconds.items()}
    sample = scene_sample(make_scene(cfg, "train", 0))
    sample_bytes = sum(t.numel() * t.element_size() for t in sample.values() if isinstance(t, torch.Tensor))
    print(json.dumps({
        "benchmark": "scenes", "threads": torch.get_num_threads(), "size": args.size, "n": args.n,
        "scenes_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_generate_vs_read_png": round(rate["generate"] / rate["read_exported_png"], 3),
        "target_scenes_per_s": 2000, "meets_target": rate["generate"] >= 2000,
        "sample_tensor_bytes": sample_bytes,
        "bandwidth_utilisation": significant(rate["generate"] * sample_bytes / copy_bandwidth(torch.device("cpu"))),
    }, indent=2))


if __name__ == "__main__":
    main()
