"""TIPS: losses on hand-checked inputs, EMA, masking, the variants, resume, probes, CLI."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, run_cli

from fmrecipes import config as configlib
from fmrecipes.errors import FmError
from fmrecipes.tips.config import VARIANTS, TIPSConfig
from fmrecipes.tips.losses import dino_loss, ibot_loss
from fmrecipes.tips.ssl import (
    PrototypeHead,
    cosine_schedule,
    ema_update,
    random_patch_mask,
    update_center,
    warmup,
)

SMOKE = ROOT / "configs" / "tips" / "smoke.yaml"


def smoke_cfg(tmp_path, *overrides) -> TIPSConfig:
    return configlib.load(TIPSConfig, SMOKE, [f"out={tmp_path}", *overrides])


def test_dino_loss_by_hand():
    s = torch.tensor([[[1.0, 0.0, -1.0]], [[0.5, 0.5, 0.0]]])  # M=2 local crops, B=1
    t = torch.tensor([[2.0, 1.0, 0.0]])
    c = torch.tensor([0.5, 0.0, 0.0])
    q = [math.exp((2 - .5) / .04), math.exp(1 / .04), math.exp(0)]
    q = [x / sum(q) for x in q]
    expect = 0.0
    for row in ([1.0, 0.0, -1.0], [0.5, 0.5, 0.0]):
        z = [x / 0.1 for x in row]
        lse = math.log(sum(math.exp(v) for v in z))
        expect += -sum(qi * (zi - lse) for qi, zi in zip(q, z)) / 2
    assert dino_loss(s, t, c, 0.1, 0.04).item() == pytest.approx(expect, rel=1e-5)
    assert dino_loss(s, t, c, 0.1, 0.04).requires_grad is False  # nothing here requires grad
    s.requires_grad_(True)
    t.requires_grad_(True)
    dino_loss(s, t, c, 0.1, 0.04).backward()
    assert t.grad is None and s.grad is not None  # the teacher gets no gradient


def test_dino_collapse_diagnostics_by_hand():
    """Teacher entropy per image and of the batch mean, and KL(teacher || student), against hand values."""
    from fmrecipes.tips.losses import dino_diagnostics

    k = 4
    flat = dino_diagnostics(torch.zeros(2, 3, k), torch.zeros(3, k), torch.zeros(k), 0.1, 0.04)
    assert flat["teacher_entropy"].item() == pytest.approx(math.log(k))  # uniform collapse: log K
    assert flat["teacher_batch_entropy"].item() == pytest.approx(math.log(k)) and flat["kl"].item() == pytest.approx(0)
    one = torch.tensor([[50.0, 0, 0, 0]]).repeat(3, 1)  # every image on prototype 0: the batch entropy is 0
    d = dino_diagnostics(torch.zeros(1, 3, k), one, torch.zeros(k), 0.1, 0.04)
    assert d["teacher_entropy"].item() < 1e-6 and d["teacher_batch_entropy"].item() < 1e-6
    assert d["kl"].item() == pytest.approx(math.log(k), rel=1e-4)  # a uniform student against a one-hot teacher
    t = torch.tensor([[1.0, 0.0, 0.5, -1.0], [0.0, 2.0, 0.0, 0.0]])
    s = torch.tensor([[[0.3, 0.1, 0.0, 0.2], [0.0, 0.4, 0.0, -0.1]]])
    c = torch.tensor([0.1, 0.0, 0.0, 0.0])
    q = torch.softmax((t - c) / 0.04, -1)
    p = torch.softmax(s[0] / 0.1, -1)
    kl = (q * (q.log() - p.log())).sum(-1).mean()
    d = dino_diagnostics(s, t, c, 0.1, 0.04)
    assert d["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert d["kl"].item() == pytest.approx(dino_loss(s, t, c, 0.1, 0.04).item() - d["teacher_entropy"].item(),
                                           rel=1e-5)
    mean_q = q.mean(0)
    assert d["teacher_batch_entropy"].item() == pytest.approx(-(mean_q * mean_q.log()).sum().item(), rel=1e-5)


def test_koleo_by_hand_and_in_the_objective(tmp_path):
    """DINOv2's KoLeo: -mean log(distance to the nearest other L2-normalised row); its gradient spreads the two
    closest rows apart. Off by default (TIPS does not state it); ssl.koleo_weight adds it on the distilled [CLS]."""
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips.data import TIPSData
    from fmrecipes.tips.losses import koleo_loss, tips_loss
    from fmrecipes.tips.model import TIPSModel

    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])  # normalised: nearest distances 0.765, 0.765, 0.765
    near = math.sqrt((1 - 1 / math.sqrt(2)) ** 2 + 0.5)
    assert koleo_loss(x).item() == pytest.approx(-math.log(near), rel=1e-5)
    y = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]], requires_grad=True)
    koleo_loss(y).backward()
    assert y.grad[0, 1] > 0 and y.grad[1, 1] < 0  # descending the loss pushes rows 0 and 1 apart
    cfg = smoke_cfg(tmp_path)
    assert cfg.ssl.koleo_weight == 0.0
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    batch = TIPSData(pack, codec, cfg, "tips").batch(torch.arange(8))
    losses = {}
    for weight in (0.0, 0.1):
        torch.manual_seed(0)
        model = TIPSModel(smoke_cfg(tmp_path, f"ssl.koleo_weight={weight}"), "tips")
        losses[weight] = tips_loss(model, batch)
    assert "koleo" not in losses[0.0][1]
    torch.manual_seed(0)
    cls = TIPSModel(cfg, "tips").vit(batch["image"]).cls[:, cfg.ssl.distill_cls - 1]
    assert losses[0.1][1]["koleo"].item() == pytest.approx(koleo_loss(cls).item(), rel=1e-5)
    assert losses[0.1][0].item() == pytest.approx(losses[0.0][0].item() + 0.1 * koleo_loss(cls).item(), rel=1e-5)


def test_ibot_loss_uses_masked_patches_only():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    mask = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=torch.bool)
    c = torch.zeros(7)
    loss = ibot_loss(s, t, mask, c, 0.1, 0.05)
    q = F.softmax(t / 0.05, -1)
    ce = -(q * F.log_softmax(s / 0.1, -1)).sum(-1)
    assert loss.item() == pytest.approx(((ce[0, 0] + ce[0, 2]) / 2 + ce[1, 3]).item() / 2, rel=1e-6)
    s2 = s.clone()
    s2[~mask] = torch.randn_like(s2[~mask])
    assert ibot_loss(s2, t, mask, c, 0.1, 0.05).item() == pytest.approx(loss.item(), rel=1e-6)


def test_center_ema_and_schedules():
    c = torch.tensor([1.0, 2.0])
    update_center(c, torch.tensor([[3.0, 0.0], [5.0, 2.0]]), 0.9)
    assert torch.allclose(c, torch.tensor([0.9 + 0.1 * 4, 1.8 + 0.1 * 1]))
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.99)
    assert torch.allclose(a.weight, 0.99 * before + 0.01 * b.weight)
    assert cosine_schedule(0.994, 1.0, 0, 100) == pytest.approx(0.994)
    assert cosine_schedule(0.994, 1.0, 50, 100) == pytest.approx(0.997)
    assert cosine_schedule(0.994, 1.0, 100, 100) == 1.0
    assert warmup(0.04, 0.07, 5, 10) == pytest.approx(0.055) and warmup(0.04, 0.07, 20, 10) == 0.07


def test_teacher_momentum_scales_with_the_run_length(tmp_path):
    """DINOv2's m0 = 0.994 leaves the teacher 70% its random init after 120 steps and 16.5% after 600 (issue
    17); the default sets m0 from a half-life of 5% of the steps, which leaves 0.1% at any length."""
    from fmrecipes.tips.config import SSLConfig
    from fmrecipes.tips.model import TeacherHooks, TIPSModel
    from fmrecipes.tips.ssl import teacher_init_share, teacher_momentum

    assert teacher_init_share(0.994, 120) == pytest.approx(0.699, abs=1e-3)
    assert teacher_init_share(0.994, 600) == pytest.approx(0.165, abs=1e-3)
    for steps in (120, 600, 100_000):
        m0 = SSLConfig().start_momentum(steps)
        assert m0 ** (0.05 * steps) == pytest.approx(0.5)  # the half-life at step 0
        assert 5e-4 < teacher_init_share(m0, steps) < 2e-3
    assert SSLConfig(momentum_start=0.994).start_momentum(120) == 0.994
    # the product is what repeated EMA updates towards a zero student leave of a unit teacher
    a, zero = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(a.weight), torch.nn.init.zeros_(zero.weight)
    for step in range(1, 31):
        ema_update(a, zero, teacher_momentum(0.9, step, 30))
    assert a.weight.item() == pytest.approx(teacher_init_share(0.9, 30), rel=1e-5)
    # the training hook applies the derived schedule, or the explicit m0
    for overrides, m0 in (((), None), (("ssl.momentum_start=0.994",), 0.994)):
        cfg = smoke_cfg(tmp_path, *overrides)
        model = TIPSModel(cfg, "tips")
        m0 = m0 or 0.5 ** (1 / (0.05 * cfg.train.steps))
        assert TeacherHooks().after_step(3, model)["teacher_momentum"] == pytest.approx(
            teacher_momentum(m0, 3, cfg.train.steps))


def test_masking_ratio_is_exact_and_random():
    g = torch.Generator().manual_seed(0)
    mask = random_patch_mask(64, 16, 0.75, g)
    assert (mask.sum(1) == 12).all()
    assert len({tuple(r.tolist()) for r in mask}) > 50
    assert 0.6 < mask.float().mean(0).min() and mask.float().mean(0).max() < 0.9  # every position gets masked
    assert torch.equal(mask, random_patch_mask(64, 16, 0.75, torch.Generator().manual_seed(0)))


def test_prototype_head_normalises_and_fixes_the_gain():
    head = PrototypeHead(8, 16, 4, 10)
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    assert not any("original0" in n for n in trainable)
    assert head(torch.randn(3, 8)).shape == (3, 10)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_trains_the_parts_it_should(tmp_path, variant):
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips.data import TIPSData
    from fmrecipes.tips.losses import tips_loss
    from fmrecipes.tips.model import TeacherHooks, TIPSModel

    cfg = smoke_cfg(tmp_path)
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    torch.manual_seed(0)
    model = TIPSModel(cfg, variant)
    loss, metrics = tips_loss(model, TIPSData(pack, codec, cfg, variant).batch(torch.arange(8)))
    flags = VARIANTS[variant]
    assert ("clip_syn" in metrics, "distill" in metrics, "mim" in metrics) == (
        flags["dual_cls"], flags["distill"], flags["mim"])
    loss.backward()
    assert model.vit.cls_tokens.shape[1] == (2 if flags["dual_cls"] else 1)
    assert model.vit.cls_tokens.grad is not None and model.vit.cls_tokens.grad.abs().sum() > 0
    if flags["dual_cls"]:
        assert model.vit.cls_tokens.grad[0, 1].abs().sum() > 0  # CLS2 learns from the synthetic captions
    if flags["distill"] or flags["mim"]:
        assert all(p.grad is None for p in model.teacher.parameters())
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
        before = [p.detach().clone() for p in model.teacher.parameters()]
        momentum = TeacherHooks().after_step(1, model)["teacher_momentum"]
        for old, new, student in zip(before, model.teacher.parameters(), model.student().parameters()):
            assert torch.allclose(new, momentum * old + (1 - momentum) * student, atol=1e-7)
        gap = sum((a - b).abs().sum() for a, b in zip(before, model.student().parameters()))
        assert sum((a - b).abs().sum() for a, b in zip(model.teacher.parameters(), model.student().parameters())) < gap


def test_objective_composes_the_papers_terms_from_the_features(tmp_path):
    """tips_loss = ½·[CLIP(cls1, alt) + CLIP(cls2, syn)] + 1·DINO + 2·iBOT (notes A.3), computed from the model's
    features with the centres as they were, which move only afterwards; the teacher sees the unmasked crop."""
    from fmrecipes.core.contrastive import clip_loss
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips.data import TIPSData
    from fmrecipes.tips.losses import tips_loss
    from fmrecipes.tips.model import TIPSModel

    cfg = smoke_cfg(tmp_path)
    assert (cfg.ssl.distill_weight, cfg.ssl.mim_weight) == (1.0, 2.0)
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    torch.manual_seed(0)
    model = TIPSModel(cfg, "tips")
    model.center_cls.normal_()  # non-zero centres, so that using them after their update would show
    model.center_patch.normal_()
    batch = TIPSData(pack, codec, cfg, "tips").batch(torch.arange(8))
    with torch.no_grad():
        f = model(batch)
        teacher_patches = model.teacher["vit"](batch["image"]).patches
        assert torch.allclose(f["teacher_patch"], model.teacher["ibot_head"](teacher_patches), atol=1e-6)
    s, temp = cfg.ssl, model.teacher_temp()
    c_cls, c_patch = model.center_cls.clone(), model.center_patch.clone()
    expect = (0.5 * (clip_loss(f["cls"][:, 0], f["alt"], f["scale"])[0] + clip_loss(f["cls"][:, 1], f["syn"],
                                                                                       f["scale"])[0])
              + 1.0 * dino_loss(f["student_local"], f["teacher_global"], c_cls, s.student_temp, temp)
              + 2.0 * ibot_loss(f["student_patch"], f["teacher_patch"], batch["mask"], c_patch, s.student_temp, temp))
    loss, metrics = tips_loss(model, batch)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    m = s.center_momentum
    assert torch.allclose(model.center_cls, m * c_cls + (1 - m) * f["teacher_global"].mean(0), atol=1e-6)
    assert torch.allclose(model.center_patch,
                          m * c_patch + (1 - m) * f["teacher_patch"][batch["mask"]].mean(0), atol=1e-6)


def test_each_feature_comes_from_the_view_and_text_the_paper_assigns(tmp_path):
    """CLS1/CLS2 in order from the unmasked global crop; the alt-text and the synthetic caption of the same scene
    through the text tower; iBOT's student branch on the masked crop, its teacher on the unmasked one; DINO's
    student on the local crops (issue 17: a swap of the captions or of the views must fail a test)."""
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.data.scene_text import flip_text
    from fmrecipes.tips.data import TIPSData
    from fmrecipes.tips.model import TIPSModel

    cfg = smoke_cfg(tmp_path)
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    torch.manual_seed(0)
    model = TIPSModel(cfg, "tips").eval()
    with torch.no_grad():
        model.vit.cls_tokens.normal_()  # zero-initialised, the two [CLS] would be indistinguishable
    torch.manual_seed(1)
    batch = TIPSData(pack, codec, cfg, "tips").batch(torch.arange(8))
    for i in range(8):  # the batch's texts are scene i's own: an alt-text as alt, the dense caption as syn
        alt = codec.tokenizer.decode(batch["alt_ids"][i][batch["alt_keep"][i]], skip_special_tokens=True).strip()
        syn = codec.tokenizer.decode(batch["syn_ids"][i][batch["syn_keep"][i]], skip_special_tokens=True).strip()
        alts = {t.lower()[:40] for a in pack.alt_texts[i] for t in (a, flip_text(a)) if a.strip()}
        assert alt[:40] in alts or (not alts and alt == "")
        assert syn[:40] in {pack.captions[i].lower()[:40], flip_text(pack.captions[i]).lower()[:40]}
    with torch.no_grad():
        f = model(batch)
        torch.testing.assert_close(f["cls"], model.vit(batch["image"]).cls)
        assert f["cls"].shape[1] == 2 and not torch.allclose(f["cls"][:, 0], f["cls"][:, 1])
        torch.testing.assert_close(f["alt"], model.text(batch["alt_ids"], batch["alt_keep"]))
        torch.testing.assert_close(f["syn"], model.text(batch["syn_ids"], batch["syn_keep"]))
        masked = model.ibot_head(model.vit(batch["image"], batch["mask"]).patches)
        torch.testing.assert_close(f["student_patch"], masked)
        assert not torch.allclose(masked, model.ibot_head(model.vit(batch["image"]).patches), atol=1e-4)
        m, b = batch["locals"].shape[:2]
        local = model.head(model.vit(batch["locals"].flatten(0, 1)).cls[:, 0]).view(m, b, -1)
        torch.testing.assert_close(f["student_local"], local)
        teacher = model.teacher["head"](model.teacher["vit"](batch["image"]).cls[:, 0])
        torch.testing.assert_close(f["teacher_global"], teacher)


def test_training_resumes_exactly_with_teacher_and_centres(tmp_path):
    import shutil

    from fmrecipes.core.dist import single_process
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips.experiment import train_variant

    cfg = smoke_cfg(tmp_path, "train.steps=4", "train.ckpt_every=2", "train.warmup_steps=1")
    pack = scene_pack(cfg.data, "train", cfg.n_train)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    env = single_process(cfg.run)
    straight = train_variant(cfg, "tips", pack, codec, tmp_path / "a", env).state_dict()
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # as if killed after the step-2 checkpoint
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step_00000004")
    resumed = train_variant(cfg, "tips", pack, codec, tmp_path / "b", env).state_dict()
    assert set(straight) == set(resumed) and any("teacher" in k for k in straight)
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_retrieval_headline_queries_are_the_held_out_human_captions(tmp_path, monkeypatch):
    """i2t_r1/t2i_r1 query with the human-style captions of the test scenes; *_realigned with the re-aligned ones."""
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_human import human_captions
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips import experiment
    from fmrecipes.tips.model import TIPSModel

    cfg = smoke_cfg(tmp_path)
    ev = experiment.eval_set(cfg)
    assert ev.human == human_captions(ev.test.graphs, "test") and ev.human != ev.test.realigned
    queries, real = [], experiment.encode_texts

    def spy(text, codec, texts):
        queries.append(list(texts))
        return real(text, codec, texts)

    monkeypatch.setattr(experiment, "encode_texts", spy)
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    torch.manual_seed(0)
    out = experiment.evaluate(TIPSModel(cfg, "clip_alt").eval(), codec, ev, cfg)
    assert queries == [ev.human, ev.test.realigned] and {"i2t_r1", "t2i_r1_realigned"} <= set(out)


def test_evaluate_probes_the_test_scenes_with_the_probes_layers_from_one_encoding(tmp_path, monkeypatch):
    """evaluate encodes the test scenes once, with ``probe.layers``: its dense probes equal dense_probes on their
    own (which encodes them itself), and its retrieval reads the last block's [CLS] as with one layer."""
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips import experiment
    from fmrecipes.tips.model import TIPSModel

    cfg = smoke_cfg(tmp_path, "vit.depth=2", "probe.layers=2", "probe.batch_norm=true")
    ev = experiment.eval_set(cfg)
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    torch.manual_seed(0)
    model = TIPSModel(cfg, "clip_alt").eval()
    calls = []
    real = experiment.encode_images
    monkeypatch.setattr(experiment, "encode_images", lambda vit, x, **kw: calls.append(kw) or real(vit, x, **kw))
    out = experiment.evaluate(model, codec, ev, cfg)
    # Fashion-MNIST and the one-object scenes ([CLS] only), then the test scenes once and the probe's training
    # scenes, both with the probe's layers
    assert calls == [{}, {}, {"layers": 2}, {"layers": 2}]
    alone = experiment.dense_probes({"": model.vit}, ev, cfg)
    for key, value in alone.items():
        assert out[key] == value, key
    one = experiment.evaluate(model, codec, ev, smoke_cfg(tmp_path, "vit.depth=2"))
    assert out["t2i_r1"] == one["t2i_r1"] and out["i2t_r1_realigned"] == one["i2t_r1_realigned"]


def test_teacher_probes_read_the_ema_tower_and_only_when_asked(tmp_path):
    """A distilled variant's ``<metric>_teacher`` probes the EMA teacher's ViT (not the student's), the same
    probes as ``dense_probes`` on that tower; ``probe.teacher=false`` drops them and leaves the student's as
    they were."""
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips import experiment
    from fmrecipes.tips.model import TIPSModel

    cfg = smoke_cfg(tmp_path)
    ev = experiment.eval_set(cfg)
    pack = scene_pack(cfg.data, "train", 16)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    torch.manual_seed(0)
    model = TIPSModel(cfg, "clip_alt_distill").eval()
    with torch.no_grad():  # the teacher differs from the student, as after training
        for p in model.teacher["vit"].parameters():
            p.add_(0.5 * torch.randn_like(p))
    out = experiment.evaluate(model, codec, ev, cfg)
    teacher = experiment.dense_probes({"": model.teacher["vit"]}, ev, cfg)
    student = experiment.dense_probes({"": model.vit}, ev, cfg)
    assert out["depth_rmse_teacher"] == teacher["depth_rmse"] != student["depth_rmse"]
    assert out["seg_miou_teacher"] == teacher["seg_miou"]
    without = experiment.evaluate(model, codec, ev, smoke_cfg(tmp_path, "probe.teacher=false"))
    assert not any(k.endswith("_teacher") for k in without)
    assert without["depth_rmse"] == out["depth_rmse"] == student["depth_rmse"]


def test_probes_measure_what_they_should():
    from fmrecipes.core.retrieval import retrieval_r1
    from fmrecipes.tips.config import ProbeConfig
    from fmrecipes.tips.probes import depth_probe, iou_parts, mean_depth_rmse, mean_iou, segmentation_probe

    e = torch.eye(5)
    assert retrieval_r1(e, e) == (1.0, 1.0)
    assert retrieval_r1(e, e[[1, 0, 2, 3, 4]]) == pytest.approx((0.6, 0.6))
    pred, target = torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]])
    assert mean_iou(pred, target, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # the mIoU's parts: background 0 vs predicted {0}: 1/2; classes 1 (2/3) and 2 (absent); any object 2/3
    assert iou_parts(pred, target, 3) == pytest.approx({"background": 1 / 2, "classes": 2 / 3, "foreground": 2 / 3})
    two = torch.tensor([[0, 2], [1, 1]]), torch.tensor([[0, 1], [1, 2]])  # right foreground, wrong classes
    assert iou_parts(*two, 3) == pytest.approx({"background": 1.0, "classes": (1 / 3 + 0) / 2, "foreground": 1.0})
    # patch features that encode each patch's class: the linear probe must find it; random ones must not
    g = torch.Generator().manual_seed(0)
    classes = torch.randint(0, 3, (40, 2, 2), generator=g)
    masks = classes.repeat_interleave(4, 1).repeat_interleave(4, 2)
    informative = F.one_hot(classes.flatten(1), 3).float()
    cfg = ProbeConfig(steps=200, lr=0.1, batch_size=16)
    good, _ = segmentation_probe(informative[:30], masks[:30], informative[30:], masks[30:], cfg, n_classes=3)
    noise = torch.randn(40, 4, 3, generator=g)
    bad, _ = segmentation_probe(noise[:30], masks[:30], noise[30:], masks[30:], cfg, n_classes=3)
    assert good > 0.6 > bad
    depth = masks.float()
    assert depth_probe(informative[:30], depth[:30], informative[30:], depth[30:], cfg) < 0.5 * depth.std()
    # depth far from 0 (the scenes' mean is about 8): the targets are centred, so a short probe on features that
    # carry no depth still lands on the mean, the floor mean_depth_rmse reports; uncentred it would sit near 8
    far = 8.0 + 0.1 * depth
    short = ProbeConfig(steps=100, lr=0.03, batch_size=16)
    floor = mean_depth_rmse(far[:30], far[30:])
    assert floor == pytest.approx(((far[30:] - far[:30].mean()) ** 2).mean().sqrt().item())
    assert depth_probe(noise[:30], far[:30], noise[30:], far[30:], short) < floor + 0.2


def test_config_errors(tmp_path):
    with pytest.raises(FmError, match="variant 'clip'"):
        smoke_cfg(tmp_path, "variant=clip").validate()
    with pytest.raises(FmError, match="text.width"):
        smoke_cfg(tmp_path, "text.width=48").validate()
    with pytest.raises(FmError, match="data.size"):
        smoke_cfg(tmp_path, "data.size=32").validate()
    with pytest.raises(FmError, match="ssl.teacher_halflife=0.0 must be positive"):
        smoke_cfg(tmp_path, "ssl.teacher_halflife=0").validate()


def test_frozen_minilm_text_tower(tmp_path):
    from fmrecipes.core.text_encoder import text_codec
    from fmrecipes.data.scene_pack import pack_texts, scene_pack
    from fmrecipes.tips.model import TIPSModel

    cfg = smoke_cfg(tmp_path, "text.kind=minilm", "variant=clip_alt")
    pack = scene_pack(cfg.data, "train", 8)
    codec = text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), tmp_path / "tok")
    model = TIPSModel(cfg, "clip_alt").train()
    ids, keep = codec(["a small red dress on the left", "Nordvik bag | Free Shipping"])
    emb = model.text(ids, keep)
    assert emb.shape == (2, cfg.vit.width) and not model.text.encoder.training
    emb.sum().backward()
    assert all(p.grad is None for p in model.text.encoder.parameters()) and model.text.proj.weight.grad is not None


def test_reproduce_smoke_and_cli(smoke_all, tmp_path):
    exp = smoke_all / "tips" / "seed0"  # the shared smoke reproduction's replicate
    summary = json.loads((exp.parent / "summary.json").read_text())
    for metric in ("zeroshot_acc", "i2t_r1", "t2i_r1", "seg_miou", "depth_rmse"):
        assert f"{metric}.clip_alt" in summary and f"{metric}.tips" in summary
    assert "i2t_r1_cls2.tips" in summary and "i2t_r1_cls2.clip_alt" not in summary
    assert "t2i_r1_realigned.clip_alt" in summary and "t2i_r1_realigned_cls2.tips" in summary  # the second table
    # dense probes on the EMA teacher too, and on an untrained tower: the floor they must clear
    assert "seg_miou_teacher.tips" in summary and "seg_miou_teacher.clip_alt" not in summary
    assert "seg_miou.random_init" in summary and "depth_rmse.random_init" in summary
    # and on the supervised ceiling, which decides whether the dense claims are testable at all
    assert "seg_miou.supervised" in summary and "zeroshot_acc.supervised" not in summary
    assert summary["claims.ssl_segmentation.verdict"] == ("not testable" if summary["seg_miou.supervised"] -
                                                          summary["seg_miou.random_init"] < 10 else "inconclusive")
    # the EMA teacher's share of its random init, from the schedule the run used (DINOv2's 0.994 would keep ~all)
    from fmrecipes.tips.ssl import teacher_init_share

    steps = smoke_cfg(tmp_path).train.steps
    share = summary["teacher_init_share.tips"]
    assert share == pytest.approx(teacher_init_share(summary["teacher_momentum_start.tips"], steps))
    assert share < 0.5 * teacher_init_share(0.994, steps)
    assert "teacher_init_share.dual_cls" not in summary
    # the DINO collapse diagnostics at the last logged step, for the variants that distil
    last = [r for r in map(json.loads, (exp / "tips" / "metrics.jsonl").read_text().splitlines()) if "dino_kl" in r][-1]
    assert summary["dino_kl.tips"] == pytest.approx(last["dino_kl"], abs=1e-4) and "dino_kl.clip_alt" not in summary
    assert 0 <= summary["dino_teacher_entropy.tips"] <= math.log(smoke_cfg(tmp_path).ssl.prototypes) + 1e-3
    # what max_len cuts is reported, not silent
    for texts in ("synthetic", "alt", "retrieval_queries", "retrieval_queries_realigned"):
        assert 0 <= summary[f"text_truncated_frac.{texts}"] <= 1
    assert summary["paper.i2t_r1.tips"] == 89.2
    assert (exp / "ablation.png").is_file() and (exp / "segmentation_probe.png").is_file()
    r = run_cli("tips", "probe", str(exp / "tips"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["seg_miou"] == pytest.approx(
        json.loads((exp / "tips" / "probes.json").read_text())["seg_miou"], abs=1e-3)
    r = run_cli("tips", "probe", str(tmp_path))
    assert r.returncode == 2 and "no config.yaml" in r.stderr
    r = run_cli("tips", "train", "--config", str(SMOKE), "--out", str(tmp_path / "cli"), "variant=dual_cls")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli" / "dual_cls" / "probes.json").is_file()


def test_two_processes_train_tips_as_one_does(tmp_path):
    """``torchrun --nproc_per_node 2 ... tips train`` equals one process at the same global batch (issue 20):
    augmentations and masks are drawn per example, not per rank; the contrastive loss all-gathers the batch with
    gradients and the DINO / iBOT centres average over ranks."""
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    args = ["tips", "train", "--config", str(SMOKE), "variant=tips", "train.steps=4", "train.ckpt_every=4"]
    one = run_cli(*args[:4], "--out", str(tmp_path / "one"), *args[4:])
    assert one.returncode == 0, one.stderr
    torchrun = Path(sys.executable).with_name("torchrun")
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "fmrecipes", *args[:4], "--out",
                          str(tmp_path / "two"), *args[4:]], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    rows = [[json.loads(line) for line in (tmp_path / run / "tips" / "metrics.jsonl").read_text().splitlines()]
            for run in ("one", "two")]
    assert len(rows[0]) == len(rows[1]) == 4
    for a, b in zip(*rows):
        for key in ("loss", "clip_alt", "clip_syn", "distill", "mim"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), (key, a["step"])
    w1, w2 = (load_file(str(tmp_path / run / "tips" / "vit" / "model.safetensors")) for run in ("one", "two"))
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-4


def test_the_dinov2_style_probe_reads_the_last_blocks_normed_and_batch_normalises():
    """``layers`` concatenates the last blocks' patch tokens, each through the final LayerNorm (DINOv2's
    get_intermediate_layers(n, norm=True)); the [CLS] stays the last block's; the probe batch-normalises its
    input, so a feature on a far larger scale than the others does not dominate its steps."""
    from fmrecipes.core.vit import ViT, ViTConfig
    from fmrecipes.tips.config import ProbeConfig
    from fmrecipes.tips.probes import PatchLinear, depth_probe

    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=16, patch_size=4, width=8, depth=3, heads=2, n_cls=2)).eval()
    x = torch.rand(2, 3, 16, 16)
    hidden = []
    handles = [b.register_forward_hook(lambda m, i, o: hidden.append(o)) for b in vit.blocks]
    one, three = vit(x), vit(x, layers=3)
    for h in handles:
        h.remove()
    expect = torch.cat([vit.norm(h[:, 2:]) for h in hidden[3:]], -1)  # the second call's three blocks
    assert three.patches.shape == (2, 16, 24) and torch.allclose(three.patches, expect)
    assert torch.equal(three.cls, one.cls) and torch.allclose(three.patches[..., -8:], one.patches)
    with pytest.raises(ValueError, match="layers=4"):
        vit(x, layers=4)
    bn = PatchLinear(3, 1, batch_norm=True)
    assert isinstance(bn.norm, torch.nn.BatchNorm1d) and isinstance(PatchLinear(3, 1).norm, torch.nn.Identity)
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(256, 4, 3, generator=g)
    depth = feats[..., 0].reshape(256, 2, 2)  # read off feature 0 ...
    feats[..., 1] *= 1e4  # ... beside a huge, useless one
    cfg = ProbeConfig(steps=200, lr=3e-2)
    plain = depth_probe(feats[:200], depth[:200], feats[200:], depth[200:], cfg)
    normed = depth_probe(feats[:200], depth[:200], feats[200:], depth[200:], ProbeConfig(steps=200, lr=3e-2,
                                                                                          batch_norm=True))
    assert normed < 0.2 < plain


def test_the_supervised_ceiling_trains_on_each_scenes_own_masks_and_depth(tmp_path):
    """The ceiling's batch pairs each image with its own mask and depth; its loss is the per-pixel cross-entropy
    plus the squared depth error, the depth head predicting around the training mean; training lowers both."""
    import torch.nn.functional as F

    from fmrecipes.core import dist
    from fmrecipes.data.scene_pack import scene_pack, to_float
    from fmrecipes.tips.supervised import MaskData, SupervisedViT, supervised_loss, train_supervised

    cfg = smoke_cfg(tmp_path, "train.steps=30", "train.lr=3e-3")
    pack = scene_pack(cfg.data, "train", 24)
    batch = MaskData(pack).batch(torch.tensor([5, 2]))
    assert torch.equal(batch["image"], to_float(pack.images[[5, 2]]))
    assert torch.equal(batch["semantic"], pack.semantic[[5, 2]]) and torch.equal(batch["depth"], pack.depth[[5, 2]])
    torch.manual_seed(0)
    model = SupervisedViT(cfg, 8.0)
    logits, depth = model(batch["image"])
    assert logits.shape == (2, 11, 16, 16) and depth.shape == (2, 16, 16)
    raw = model.depth(model.vit(batch["image"]).patches, 16)[:, 0]
    assert torch.allclose(depth, raw + 8.0)  # the depth head predicts around the training mean
    loss, parts = supervised_loss(model, batch)
    expect = F.cross_entropy(logits, batch["semantic"]) + ((depth - batch["depth"]) ** 2).mean()
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    vit = train_supervised(cfg, pack, tmp_path / "sup", dist.single_process())
    records = [json.loads(line) for line in (tmp_path / "sup" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["seg_ce"] < records[0]["seg_ce"] and records[-1]["depth_mse"] < records[0]["depth_mse"]
    assert (tmp_path / "sup" / "vit" / "config.json").is_file() and vit.cfg == cfg.vit
