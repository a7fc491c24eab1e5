"""Your own image-text data (issue 20): the formats tips and altogether train on (a jsonl / parquet index, a
directory of images with sidecar texts, a saved `datasets` dataset with an image column), images of any size and
mode resized as the config says, and end-to-end training on each recipe's verbs."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from conftest import ROOT, run_cli
from fmrecipes.data.image_text import image_text_pack
from fmrecipes.errors import FmError

# four images of different sizes and modes: RGB, greyscale, RGBA, palette
SIZES_MODES = [((40, 30), "RGB"), ((20, 20), "L"), ((50, 50), "RGBA"), ((24, 36), "P")]
N = 24  # rows: enough for a smoke training batch


def _image(i: int) -> Image.Image:
    (w, h), mode = SIZES_MODES[i % len(SIZES_MODES)]
    rng = np.random.default_rng(i)
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return rgb.convert(mode) if mode != "P" else rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)


def _texts(i: int) -> dict:
    return {"alt_text": f"zorblax item {i} sale", "caption": f"a photo of item {i}, a quixotic red hat",
            "realigned_caption": f"a quixotic red hat, item {i}"}


@pytest.fixture(scope="module")
def user_sets(tmp_path_factory):
    """The same rows in every format (PNG files, so the pixels are the same)."""
    root = tmp_path_factory.mktemp("mine")
    (root / "images").mkdir()
    rows = []
    for i in range(N):
        _image(i).save(root / "images" / f"{i:03d}.png")
        rows.append({"image": f"images/{i:03d}.png", **_texts(i)})
    (root / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), root / "index.parquet")
    sidecars = root / "sidecars"
    sidecars.mkdir()
    for i in range(N):
        _image(i).save(sidecars / f"{i:03d}.png")
        (sidecars / f"{i:03d}.json").write_text(json.dumps(_texts(i)))
    from datasets import Dataset, Features
    from datasets import Image as HFImage
    from datasets import Value

    features = Features({"image": HFImage(), **{k: Value("string") for k in _texts(0)}})
    Dataset.from_dict({"image": [str(root / r["image"]) for r in rows], **{k: [r[k] for r in rows] for k in _texts(0)}},
                      features=features).save_to_disk(str(root / "hf"))
    return {"jsonl": root / "index.jsonl", "parquet": root / "index.parquet", "sidecars": sidecars,
            "datasets": root / "hf", "root": root}


def test_every_format_reads_the_same_images_and_texts_resized_to_the_config(user_sets):
    packs = {name: image_text_pack(user_sets[name], 16, ("caption", "realigned_caption"))
             for name in ("jsonl", "parquet", "sidecars", "datasets")}
    ref = packs["jsonl"]
    assert ref.images.shape == (N, 16, 16, 3) and ref.images.dtype == torch.uint8
    assert ref.alt_texts[5] == ["zorblax item 5 sale"] and ref.realigned[5] == "a quixotic red hat, item 5"
    for name, pack in packs.items():
        assert torch.equal(pack.images, ref.images), name
        assert (pack.alt_texts, pack.captions, pack.realigned) == (ref.alt_texts, ref.captions, ref.realigned), name
    # the resize is of the whole image (no crop), whatever its mode: image 2 is RGBA 50x50
    direct = torch.from_numpy(np.asarray(_image(2).convert("RGB"))).permute(2, 0, 1).float()[None] / 255
    small = torch.nn.functional.interpolate(direct, size=(16, 16), mode="bilinear", antialias=True)[0]
    assert (ref.images[2].permute(2, 0, 1).float() / 255 - small).abs().max() < 1 / 255 + 1e-6


def test_a_text_sidecar_is_the_alt_text_and_missing_texts_are_one_line_errors(tmp_path):
    _image(0).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("a red hat\n")
    pack = image_text_pack(tmp_path, 16)
    assert pack.alt_texts == [["a red hat"]] and pack.captions == [""]
    with pytest.raises(FmError, match=r"row 1 has no 'caption' text, which this run trains on"):
        image_text_pack(tmp_path, 16, ("caption",))
    _image(1).save(tmp_path / "b.png")
    with pytest.raises(FmError, match=r"image .*b.png has no sidecar text \(b.txt with its alt-text, or b.json\)"):
        image_text_pack(tmp_path, 16)


def _cli(*args):
    res = run_cli(*args, timeout=600)
    return res.returncode, res.stdout, res.stderr


def test_tips_trains_on_your_data_and_refuses_to_resume_on_changed_data(user_sets, tmp_path):
    out = tmp_path / "tips"
    code, _, err = _cli("tips", "train", "--config", str(ROOT / "configs/tips/smoke.yaml"), "--out", str(out),
                        f"train_data={user_sets['datasets']}")
    assert code == 0, err
    assert (out / "tips" / "checkpoints").is_dir()
    vocab = json.loads((out / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
    assert any("zorblax" in token or "quixotic" in token for token in vocab)  # trained on your texts
    code, _, err = _cli("tips", "train", "--config", str(ROOT / "configs/tips/smoke.yaml"), "--out", str(out),
                        f"train_data={user_sets['jsonl']}", "variant=clip_alt")
    assert code == 2 and "made from other inputs (training data changed)" in err, err


def test_tips_variant_with_captions_needs_them(tmp_path):
    for i in range(4):
        _image(i).save(tmp_path / f"{i}.png")
        (tmp_path / f"{i}.txt").write_text(f"alt {i}")
    code, _, err = _cli("tips", "train", "--config", str(ROOT / "configs/tips/smoke.yaml"), "--out",
                        str(tmp_path / "o"), f"train_data={tmp_path}", "variant=dual_cls")
    assert code == 2 and "has no 'caption' text, which this run trains on" in err, err


def test_altogether_stages_train_on_your_data(user_sets, tmp_path):
    out = tmp_path / "alt"
    common = ["--config", str(ROOT / "configs/altogether/smoke.yaml"), "--out", str(out),
              f"pretrain_data={user_sets['sidecars']}", f"finetune_data={user_sets['parquet']}"]
    code, _, err = _cli("altogether", "pretrain", *common)
    assert code == 0, err
    code, _, err = _cli("altogether", "finetune", *common)
    assert code == 0, err
    captions = tmp_path / "captions.jsonl"
    code, _, err = _cli("altogether", "caption", str(out), "--index", str(user_sets["jsonl"]), "--out", str(captions))
    assert code == 0, err
    rows = [json.loads(line) for line in captions.read_text().splitlines()]
    assert len(rows) == N and rows[0]["prompt"] == "zorblax item 0 sale"


# ---- sim: a directory of your images, and a diffusers UNet2DModel teacher ----

SIM_CONFIG = ["--config", str(ROOT / "configs/sim/smoke.yaml")]
SIM_SMOKE = ["run_toy=false", "images.resolution=8", "images.knn_k=1"]


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """60 images in two class folders (mixed sizes and modes, PNG and JPEG), and the same files unlabelled."""
    root = tmp_path_factory.mktemp("folders")
    for i in range(60):
        labelled = root / "labelled" / ("hats" if i % 2 else "shoes")
        flat = root / "flat"
        for d in (labelled, flat):
            d.mkdir(parents=True, exist_ok=True)
            image = _image(i).convert("RGB") if i % 5 == 0 else _image(i)
            image.save(d / f"{i:03d}.{'jpg' if i % 5 == 0 else 'png'}")
    return root


def test_an_image_folder_is_a_dataset_with_classes_a_hashed_test_split_and_the_configured_size(image_folders):
    from fmrecipes.sim.image_folder import scan
    from fmrecipes.sim.images import image_shape, load_images, num_classes

    root = image_folders / "labelled"
    assert scan(root).classes == ["hats", "shoes"] and num_classes(str(root)) == 2
    assert num_classes(str(image_folders / "flat")) == 0
    x_train, y_train = load_images(str(root), "train", 8, 3)
    x_test, y_test = load_images(str(root), "test", 8, 3)
    assert x_train.shape[1:] == (3, 8, 8) == image_shape(str(root), 8) and len(x_train) + len(x_test) == 60
    assert 2 <= len(x_test) <= 15 and set(y_train.tolist()) == {0, 1}
    assert x_train.min() >= -1 and x_train.max() <= 1
    grey, _ = load_images(str(root), "train", 8, 1)
    assert grey.shape[1] == 1 and torch.allclose(grey[:, 0], (x_train * torch.tensor([0.299, 0.587, 0.114])
                                                               [:, None, None]).sum(1), atol=1e-5)


@pytest.mark.parametrize("folder", ["labelled", "flat"])
def test_sim_distils_on_your_images(image_folders, tmp_path, folder):
    out = tmp_path / "sim"
    code, _, err = _cli("sim", "run", *SIM_CONFIG, "--out", str(out), *SIM_SMOKE,
                        f"images.dataset={image_folders / folder}")
    assert code == 0, err
    summary = json.loads((out / "seed0" / "summary.json").read_text())
    assert np.isfinite(summary["fd.sim_phuber"]) and np.isfinite(summary["fd.teacher.nfe35"])
    assert ("classes.real_test" in summary) == (folder == "labelled")  # no class coverage without classes


def test_unlabelled_images_cannot_be_conditional(image_folders, tmp_path):
    code, _, err = _cli("sim", "run", *SIM_CONFIG, "--out", str(tmp_path / "o"), *SIM_SMOKE,
                        f"images.dataset={image_folders / 'flat'}", "images.conditional=true",
                        "images.pixel_ar.enabled=false")
    assert code == 2 and "images.conditional needs labelled images" in err, err


def _unet_teacher(directory, channels: int = 3, size: int = 8):
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=(16, 16),
                layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8).save_pretrained(str(directory / "unet"))
    DDPMScheduler(num_train_timesteps=500, beta_end=0.03).save_pretrained(str(directory / "scheduler"))


def test_a_local_diffusers_unet_is_the_teacher_as_it_is(image_folders, tmp_path):
    from fmrecipes.sim.diffusers_teacher import load_diffusers_teacher

    teacher_dir = tmp_path / "pipeline"
    _unet_teacher(teacher_dir)
    wrapped = load_diffusers_teacher(teacher_dir, (3, 8, 8), 0)
    betas = torch.linspace(1e-4, 0.03, 500, dtype=torch.float64)  # the table comes from scheduler_config.json
    assert torch.allclose(wrapped.sigmas, (1 / torch.cumprod(1 - betas, 0) - 1).sqrt())
    out = tmp_path / "sim"
    code, _, err = _cli("sim", "run", *SIM_CONFIG, "--out", str(out), *SIM_SMOKE,
                        f"images.dataset={image_folders / 'labelled'}",
                        f"images.teacher_path={teacher_dir}", "methods=[sim_phuber]",
                        "images.size_sweep=[]")  # smoke's sweep trains teachers of other sizes: not yours
    assert code == 0, err
    assert not (out / "seed0" / "images" / "teacher").exists()  # used as it is, not trained here
    code, stdout, err = _cli("sim", "sample", str(out / "seed0"), "--n", "4", "--png", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0, err
    code, _, err = _cli("sim", "run", *SIM_CONFIG, "--out", str(tmp_path / "o2"), "run_toy=false",
                        "images.resolution=16",
                        f"images.dataset={image_folders / 'labelled'}", f"images.teacher_path={teacher_dir}",
                        "images.size_sweep=[]")
    assert code == 2 and "is for 3-channel 8px images; the data is 3-channel 16px" in err, err
