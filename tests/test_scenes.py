"""FashionScenes: determinism, pixel/label consistency, text truth, alt-text rates, splits, transforms, I/O."""

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from fmrecipes.data.fashion_mnist import load_fashion_mnist
from fmrecipes.data.image_transforms import (
    Compose,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
)
from fmrecipes.data.scene_config import AltTextRates, SceneConfig
from fmrecipes.data.scene_graph import BACKGROUND_DEPTH, BRANDS, COLOURS
from fmrecipes.data.scene_text import flip_text, kept_brands, parse_mentions
from fmrecipes.data.scenes import FashionScenes, iter_batches, make_scene, scene_sample
from fmrecipes.data.textures import PLAIN
from fmrecipes.errors import FmError

CFG = SceneConfig()
COUNT_WORDS = ["one item", "two items", "three items"]


def digest(scene) -> str:
    h = hashlib.sha256()
    for a in (scene.image, scene.semantic, scene.instance, scene.depth):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps([scene.graph, scene.caption, scene.alt_texts, scene.rounds], sort_keys=True).encode())
    return h.hexdigest()


def test_same_scene_in_another_process():
    here = [digest(make_scene(CFG, split, i)) for split, i in (("train", 3), ("val", 0), ("test", 41))]
    code = ("import sys; sys.path.insert(0, 'tests'); from test_scenes import digest, CFG; "
            "from fmrecipes.data.scenes import make_scene; "
            "print([digest(make_scene(CFG, s, i)) for s, i in (('train', 3), ('val', 0), ('test', 41))])")
    env = {"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert out.stdout.strip() == str(here)
    assert digest(make_scene(CFG, "train", 3)) != digest(make_scene(SceneConfig(seed=1), "train", 3))


@pytest.mark.parametrize("index", range(40))
def test_masks_and_depth_agree_with_pixels(index):
    scene = make_scene(CFG, "train", index)
    objects = {o["id"]: o for o in scene.graph["objects"]}
    assert set(np.unique(scene.instance)) - {0} == set(objects)
    background = scene.instance == 0
    assert (scene.semantic[background] == 0).all()
    bg = scene.graph["background"]
    pixels = scene.image[background].astype(int)
    if bg["kind"] == "plain":
        assert (pixels == PLAIN[bg["name"]]).all()
    else:  # a greyscale texture
        assert (pixels[:, 0] == pixels[:, 1]).all() and (pixels[:, 1] == pixels[:, 2]).all()
    assert scene.depth[background].min() >= BACKGROUND_DEPTH[0]
    for k, obj in objects.items():
        mine = scene.instance == k
        assert (scene.semantic[mine] == obj["label"] + 1).all()
        assert np.allclose(scene.depth[mine], obj["depth"]) and obj["depth"] < BACKGROUND_DEPTH[0]
        assert mine.sum() == obj["visible"] >= CFG.min_visible * obj["area"]
        # every object pixel is a shade of the object's named colour: the same factor on all three channels
        rgb = np.asarray(COLOURS[obj["colour"]], float)
        factor = scene.image[mine].astype(float) / rgb
        assert (factor.max(1) - factor.min(1) <= 1.0 / rgb.min() + 1e-9).all()
        x0, y0, x1, y1 = obj["bbox"]
        ys, xs = np.nonzero(mine)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    for front, behind in scene.graph["occlusions"]:
        assert objects[front]["depth"] < objects[behind]["depth"]


def test_each_object_looks_its_named_colour():
    """An object's mean pixel is nearest its named colour, not grey, black or another name (a shaded white
    item read as grey in 13% of scenes before the shade floor was raised)."""
    palette = {**COLOURS, "grey": (128, 128, 128), "black": (0, 0, 0)}
    names, rgb = list(palette), np.array(list(palette.values()), float)
    seen = set()
    for i in range(150):
        scene = make_scene(CFG, "train", i)
        for obj in scene.graph["objects"]:
            mean = scene.image[scene.instance == obj["id"]].astype(float).mean(0)
            assert names[int(np.argmin(((rgb - mean) ** 2).sum(1)))] == obj["colour"], (i, obj["colour"], mean)
            seen.add(obj["colour"])
    assert seen == set(COLOURS)


def test_nearness_is_stated_only_when_the_picture_decides_it():
    """"X is nearest to the camera" only for the one large object among small ones (depth follows size); two
    large or all small objects look equally near, so nothing is said; an occlusion sentence orders them instead."""
    stated = 0
    for i in range(300):
        scene = make_scene(CFG, "train", i)
        objects = scene.graph["objects"]
        large = [o for o in objects if o["size"] == "large"]
        decided = len(objects) > 1 and not scene.graph["occlusions"] and len(large) == 1
        assert ("nearest to the camera" in scene.caption) == decided, i
        if decided:
            stated += 1
            assert f"The {large[0]['colour']} {large[0]['class']} " in scene.caption.split(". ")[-1] + " "
            assert large[0]["depth"] < min(o["depth"] for o in objects if o is not large[0])
    assert stated >= 10


def _graph_objects(scene):
    return sorted((o["colour"], o["class"]) for o in scene.graph["objects"])


@pytest.mark.parametrize("index", range(60))
def test_captions_name_exactly_the_scene(index):
    scene = make_scene(CFG, "val", index)
    objects = scene.graph["objects"]
    for text in (scene.caption, scene.realigned_caption):
        mentioned = parse_mentions(text)
        assert {(m["colour"], m["class"]) for m in mentioned} == set(_graph_objects(scene))
        assert COUNT_WORDS[len(objects) - 1] in text
        assert scene.graph["background"]["name"] in text
        for obj in objects:
            assert obj["size"] in text and obj["position"].replace("centre", "") in text.replace("middle", "centre")
    assert not any(b in scene.caption for b in BRANDS)  # the synthetic caption cannot know brands
    stated = {m["brand"] for m in parse_mentions(scene.realigned_caption) if m["brand"]}
    assert stated == {o["brand"] for o in objects if o["id"] in kept_brands(scene.alt_text_errors)}
    # round 2 names every object, round 1 only those an alt-text named with the right class
    assert len(parse_mentions(scene.rounds[1])) == len(objects)
    named = {i for r in scene.alt_text_errors for i in r["mentioned"] if i not in r["wrong_class"]}
    assert len(parse_mentions(scene.rounds[0])) == len(named)


def _within(measured: int, trials: int, p: float) -> bool:
    """Inside a 4.5-sigma binomial band (a false alarm about once in 10^5 runs per rate)."""
    return abs(measured / trials - p) <= 4.5 * math.sqrt(p * (1 - p) / trials) + 1e-9


@pytest.mark.parametrize("rates", [AltTextRates(), AltTextRates(empty=0.25, filename=0.05, missing=0.5, brand=0.7,
                                                                colour=0.9, wrong_colour=0.4, wrong_class=0.3,
                                                                extra=0.35, seo=0.6)])
def test_alt_text_error_rates_match_the_config(rates):
    cfg = SceneConfig(alt_text=rates, n_alt_texts=3)
    scenes = [make_scene(cfg, "train", i) for i in range(700)]
    records = [(t, r, s) for s in scenes for t, r in zip(s.alt_texts, s.alt_text_errors)]
    kinds = [r["kind"] for _, r, _ in records]
    assert _within(kinds.count("empty"), len(kinds), rates.empty)
    assert _within(kinds.count("filename"), len(kinds), rates.filename)
    text = [(t, r, s) for t, r, s in records if r["kind"] == "text"]
    objects = sum(len(s.graph["objects"]) for _, _, s in text)
    mentioned = sum(len(r["mentioned"]) for _, r, _ in text)
    stated = sum(len(r["colour_stated"]) for _, r, _ in text)
    assert _within(objects - mentioned, objects, rates.missing)
    assert _within(stated, mentioned, rates.colour)
    assert _within(sum(len(r["wrong_colour"]) for _, r, _ in text), stated, rates.wrong_colour)
    assert _within(sum(len(r["wrong_class"]) for _, r, _ in text), mentioned, rates.wrong_class)
    assert _within(sum(len(r["brand"]) for _, r, _ in text), mentioned, rates.brand)
    assert _within(sum(bool(r["extra"]) for _, r, _ in text), len(text), rates.extra)
    assert _within(sum(r["seo"] for _, r, _ in text), len(text), rates.seo)
    # the records describe the text: which objects it names, with which class, colour and brand
    assert all(_describes(parse_mentions(alt), r, {o["id"]: o for o in s.graph["objects"]}) for alt, r, s in text)


def _describes(found, record, truth) -> bool:
    """Whether the alt-text's mentions, in order, are the recorded objects (plus the hallucinated extra at
    some position), each with the recorded class, colour and brand defects."""
    def expected(i):
        obj = truth[i]
        colour = None if i not in record["colour_stated"] else obj["colour"]
        return (i in record["wrong_class"], obj["class"], colour, i in record["wrong_colour"],
                obj["brand"] if i in record["brand"] else None)

    def matches(m, i):
        wrong_class, cls, colour, wrong_colour, brand = expected(i)
        return ((m["class"] != cls) == wrong_class and m["brand"] == brand
                and (m["colour"] is None) == (colour is None) and (colour is None or (m["colour"] != colour) == wrong_colour))

    ids = record["mentioned"]
    for at in (range(len(ids) + 1) if record["extra"] else [None]):
        rest = list(found)
        if at is not None:
            extra = rest.pop(at) if at < len(rest) else None
            if extra is None or (extra["class"], extra["colour"]) != (record["extra"][0]["class"],
                                                                     record["extra"][0]["colour"]):
                continue
        if len(rest) == len(ids) and all(matches(m, i) for m, i in zip(rest, ids)):
            return True
    return False


def test_splits_draw_disjoint_fashion_items():
    _, test_labels = load_fashion_mnist("test")
    half = len(test_labels) // 2
    seen = {split: {(o["item_split"], o["item"]) for i in range(300)
                    for o in make_scene(CFG, split, i).graph["objects"]} for split in ("train", "val", "test")}
    assert {s for s, _ in seen["train"]} == {"train"}
    assert {s for s, _ in seen["val"] | seen["test"]} == {"test"}
    assert all(i < half for _, i in seen["val"]) and all(i >= half for _, i in seen["test"])
    assert not (seen["train"] & seen["val"]) and not (seen["val"] & seen["test"]) and not (seen["train"] & seen["test"])


def _sample_with_sides():
    for i in range(100):
        sample = scene_sample(make_scene(CFG, "train", i))
        if any(o["position"] in ("left", "right") for o in sample["graph"]["objects"]):
            return sample
    raise AssertionError("no scene with a left/right object")


def test_flip_swaps_left_and_right_in_pixels_labels_and_text():
    sample = _sample_with_sides()
    flipped = RandomHorizontalFlip(p=1.0)(sample, torch.Generator().manual_seed(0))
    assert torch.equal(flipped["image"], sample["image"].flip(-1))
    assert torch.equal(flipped["instance"], sample["instance"].flip(-1))
    assert torch.equal(flipped["depth"], sample["depth"].flip(-1))
    assert flipped["caption"] == flip_text(sample["caption"]) != sample["caption"]
    for before, after in zip(sample["graph"]["objects"], flipped["graph"]["objects"]):
        swap = {"left": "right", "right": "left"}
        assert after["position"] == swap.get(before["position"], before["position"])
        # the flipped box still holds the flipped object's pixels
        x0, _, x1, _ = after["bbox"]
        _, xs = torch.nonzero(flipped["instance"] == after["id"], as_tuple=True)
        assert x0 <= xs.min() and xs.max() < x1
    assert flipped["realigned_caption"] == flip_text(sample["realigned_caption"])
    assert flipped["alt_texts"] == [flip_text(t) for t in sample["alt_texts"]]
    assert flipped["rounds"] == [flip_text(t) for t in sample["rounds"]]
    assert flip_text("On the Left, left of the right RIGHT") == "On the Right, right of the left LEFT"
    again = RandomHorizontalFlip(p=1.0)(flipped, torch.Generator())
    assert again["caption"] == sample["caption"] and again["graph"] == sample["graph"]
    assert RandomHorizontalFlip(p=0.0)(sample, torch.Generator()) is sample


def test_random_resized_crop_and_normalise():
    sample = scene_sample(make_scene(CFG, "train", 5))
    transform = Compose([RandomResizedCrop(32), RandomHorizontalFlip(), Normalize()])
    a = transform(sample, torch.Generator().manual_seed(7))
    b = transform(sample, torch.Generator().manual_seed(7))
    assert a["image"].shape == (3, 32, 32) and a["semantic"].shape == (32, 32) and a["depth"].shape == (32, 32)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["semantic"], b["semantic"])
    assert set(a["semantic"].unique().tolist()) <= set(sample["semantic"].unique().tolist())
    assert a["semantic"].dtype == torch.long and a["image"].min() < 0  # normalised
    top, left, h, w = RandomResizedCrop(32).box(64, 64, torch.Generator().manual_seed(1))
    assert 0.35 * 64 * 64 - 64 * 2 <= h * w <= 64 * 64 and 0 <= top <= 64 - h and 0 <= left <= 64 - w


def test_dataset_batches_and_epoch_seeded_transforms():
    ds = FashionScenes(SceneConfig(size=32), "val", 10, transform=RandomHorizontalFlip())
    batch = next(iter_batches(ds, 4))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["depth"].shape == (4, 32, 32)
    assert len(batch["alt_texts"]) == 4 and all(len(a) == 3 for a in batch["alt_texts"])
    flips = [ds[i]["caption"] for i in range(10)]
    assert flips == [ds[i]["caption"] for i in range(10)]
    ds.set_epoch(1)
    assert flips != [ds[i]["caption"] for i in range(10)]  # a new epoch draws new flips
    assert sum(len(b["image"]) for b in iter_batches(ds, 4, shuffle=True, drop_last=True)) == 8
    with pytest.raises(IndexError):
        ds[10]


def test_export_round_trip_and_user_index(tmp_path):
    from fmrecipes.data.image_text import ImageTextIndex, export_scenes

    cfg = SceneConfig(size=32)
    out = export_scenes(cfg, "test", 4, tmp_path / "exp", progress=False)
    ds = ImageTextIndex(out)
    for i in range(4):
        scene, row = make_scene(cfg, "test", i), ds[i]
        assert torch.equal(row["image"], scene_sample(scene)["image"])
        assert torch.equal(row["semantic"], torch.from_numpy(scene.semantic).long())
        assert torch.allclose(row["depth"], torch.from_numpy(scene.depth), atol=1e-3)
        assert row["alt_texts"] == scene.alt_texts and row["realigned_caption"] == scene.realigned_caption
    assert ImageTextIndex(out, image_size=16)[0]["semantic"].shape == (16, 16)
    export_scenes(cfg, "test", 2, out, progress=False)  # an earlier export is replaced
    assert len(ImageTextIndex(out)) == 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FmError, match="not a FashionScenes export"):
        export_scenes(cfg, "test", 2, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"

    # a user's real set: image path + alt_text string (+ caption), as jsonl or parquet
    user = tmp_path / "user.jsonl"
    user.write_text(json.dumps({"image": str(out / "images" / "test-000000.png"), "alt_text": "red dress"}) + "\n")
    row = ImageTextIndex(user)[0]
    assert row["alt_texts"] == ["red dress"] and row["image"].shape == (3, 32, 32) and "caption" not in row
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"image": "exp/images/test-000001.png", "alt_text": "x", "caption": "c"}]),
                   tmp_path / "user.parquet")
    assert ImageTextIndex(tmp_path / "user.parquet")[0]["caption"] == "c"

    user.write_text(json.dumps({"image": "a.png", "caption": "no alt"}) + "\n")
    with pytest.raises(FmError, match=r"row 1 has no alt-text"):
        ImageTextIndex(user)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    user.write_text(json.dumps({"image": "bad.png", "alt_text": ""}) + "\n")
    with pytest.raises(FmError, match=r"bad.png cannot be decoded"):
        ImageTextIndex(user)[0]


def test_config_and_input_errors(tmp_path):
    for bad in (SceneConfig(colours=["red"]), SceneConfig(backgrounds=["marble"]), SceneConfig(size=8),
                SceneConfig(alt_text=AltTextRates(empty=1.5)), SceneConfig(max_objects=6)):
        with pytest.raises(FmError):
            FashionScenes(bad, "train", 1)
    with pytest.raises(FmError, match="split 'dev'"):
        make_scene(CFG, "dev", 0)
    with pytest.raises(FmError, match=r"dataset-fashion-mnist.*fashion_dir"):
        make_scene(SceneConfig(fashion_dir=str(tmp_path)), "train", 0)


def test_cli_export_gallery_and_errors(tmp_path):
    r = run_cli("data", "scenes", "export", "--split", "val", "--n", "3", "--out", str(tmp_path / "e"),
                "--no-progress", "data.size=32")
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "e" / "index.jsonl").read_text().splitlines()) == 3
    r = run_cli("data", "scenes", "gallery", "--n", "4", "--out", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    r = run_cli("data", "scenes", "gallery", "--out", str(tmp_path / "h.png"), f"data.fashion_dir={tmp_path}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "dataset-fashion-mnist" in r.stderr
    r = run_cli("data", "scenes", "gallery", "--out", str(tmp_path / "h.png"), "data.colours=[red]")
    assert r.returncode == 2 and "data.colours" in r.stderr and "Traceback" not in r.stderr


def test_documented_config_is_the_default():
    from fmrecipes.config import load
    from fmrecipes.data.cli import ScenesJob

    assert load(ScenesJob, ROOT / "configs" / "scenes" / "default.yaml") == ScenesJob()


def test_human_captions_state_the_scene_in_phrasing_no_training_text_uses():
    """The held-out retrieval queries (issue 17): every object's colour, class, size and place, in a template
    family whose phrases never occur in the dense captions or alt-texts, and which avoids their words."""
    import re

    from fmrecipes.data import scene_human as human
    from fmrecipes.data.scene_pack import scene_pack

    pack = scene_pack(CFG, "train", 300)
    train_texts = " ".join(pack.captions + [t for ts in pack.alt_texts for t in ts]).lower()
    own_phrases = [p for ps in human.WHERE.values() for p in ps] + [w for ws in human.SIZE_WORDS.values() for w in ws]
    own_phrases += [t.split("{")[0].strip() for t in human.OPENERS + human.BACKDROPS + human.PLAIN_BACKDROPS]
    own_phrases += ["overlaps the", "is covered by", "surface"]
    for phrase in own_phrases:
        assert not re.search(rf"\b{re.escape(phrase.lower())}\b", train_texts), phrase
    captions = human.human_captions(pack.graphs, "train")
    assert captions == human.human_captions(pack.graphs, "train") != human.human_captions(pack.graphs, "val")
    for caption, graph in zip(captions, pack.graphs):
        for word in ("background", "texture", "small", "large", "items", "there is", "nearest", "on the left",
                     "at the top", "in the centre", "in front of", "hidden"):
            assert word not in caption.lower(), (word, caption)
        for obj in graph["objects"]:
            assert f"{obj['colour']} {obj['class']}" in caption
            assert any(w in caption for w in human.SIZE_WORDS[obj["size"]])
            assert any(w in caption for w in human.WHERE[obj["position"]])
        assert graph["background"]["name"] in caption
