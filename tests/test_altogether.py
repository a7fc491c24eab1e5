"""Altogether: stage inputs, padding, target-only loss, metrics, resume, HF decoder, experiment and CLI."""

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run_cli

from fmrecipes import config as configlib
from fmrecipes.altogether.config import AltogetherConfig, CaptionerConfig
from fmrecipes.altogether.data import (
    CaptionCodec,
    distinct_alts,
    finetune_example,
    inference_prompt,
    pretrain_example,
)
from fmrecipes.altogether.evaluate import caption_metrics, cider_bleu, graph_counts
from fmrecipes.altogether.losses import caption_loss
from fmrecipes.altogether.model import Captioner
from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.tokenizer import load_tokenizer, train_bpe
from fmrecipes.data.scene_config import SceneConfig
from fmrecipes.data.scenes import make_scene
from fmrecipes.errors import FmError

SMOKE = ROOT / "configs" / "altogether" / "smoke.yaml"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    scenes = [make_scene(SceneConfig(size=16), "train", i) for i in range(60)]
    out = tmp_path_factory.mktemp("tok")
    train_bpe([t for s in scenes for t in [*s.alt_texts, s.realigned_caption]], 300, out)
    return load_tokenizer(out)


def test_stage_inputs_follow_the_released_data_code():
    alts = ["red dress", "", "Nordvik red dress | Sale", "red dress"]
    assert distinct_alts(alts) == ["red dress", "Nordvik red dress | Sale"]
    assert inference_prompt(alts) == "red dress; Nordvik red dress | Sale"
    g = torch.Generator().manual_seed(0)
    pairs = [pretrain_example(alts, g, 0.5) for _ in range(2000)]
    assert {t for _, t in pairs} == {"Nordvik red dress | Sale"}  # the longest distinct alt-text
    assert {p for p, _ in pairs} == {"", "red dress"}  # another alt-text, or blank
    assert abs(sum(p == "" for p, _ in pairs) / 2000 - 0.5) < 0.05
    assert pretrain_example(["", " "], g, 0.5) is None
    assert pretrain_example(["only one"], g, 0.0) == ("", "only one")
    ft = [finetune_example(alts, "gold caption", g, 0.5) for _ in range(2000)]
    assert {t for _, t in ft} == {"gold caption"} and {p for p, _ in ft} == {"", inference_prompt(alts)}
    assert finetune_example(alts, "c", g, 1.0) == ("", "c")  # the no-alt-text captioner


def test_stage1_brand_share_by_hand():
    from fmrecipes.altogether.data import stage1_brand_share

    alts = [["Nordvik red dress | Sale", "red dress", "Nordvik dress"],  # target has Nordvik; 1 of 2 prompts
            ["Alba bag", "bag"],                                            # target has Alba; no prompt has it
            ["plain coat", ""],                                             # no brand
            ["", " "]]                                                      # no alt-text: not a stage-1 example
    share = stage1_brand_share(alts, ("Nordvik", "Alba"))
    assert share == {"stage1_targets_with_brand": 2 / 3, "stage1_brand_in_prompt": 0.25}


def test_codec_pads_truncates_and_counts(tokenizer):
    codec = CaptionCodec(tokenizer, prompt_len=16, target_len=8)
    ids, keep = codec.prompts(["red", "", "a " * 40])
    n = len(tokenizer("red", add_special_tokens=False)["input_ids"])
    assert ids.shape == (3, 16) and keep[1].sum() == 0 and keep[2].all()
    assert keep[0].sum() == n and keep[0, -n:].all()  # left-padded
    assert (codec.prompts_truncated, codec.prompts_seen) == (1, 3)
    t_ids, t_keep = codec.targets(["red", "x " * 30])
    n = int(t_keep[0].sum())
    assert t_ids[0, n - 1] == codec.eos and t_keep[1].sum() == 8 and t_ids[1, 7] == codec.eos
    assert codec.decode(t_ids[:1]) == ["red"]
    assert (codec.targets_truncated, codec.targets_seen) == (1, 2)  # counted, not cut silently
    assert codec.capped(torch.tensor([[5, codec.eos, codec.eos], [5, 6, 7]])) == [False, True]


def _captioner(tokenizer, **kw):
    cfg = CaptionerConfig(prefix_len=3, mapper_depth=1, prompt_len=8, target_len=10,
                          decoder=GPTConfig(vocab_size=len(tokenizer), seq_len=32, n_layer=1, n_head=2, d_model=16))
    torch.manual_seed(0)
    return Captioner(cfg, 12, len(tokenizer), **kw), CaptionCodec(tokenizer, 8, 10)


def test_loss_is_on_the_caption_only_and_padding_is_invisible(tokenizer):
    model, codec = _captioner(tokenizer)
    emb = torch.randn(2, 12)
    p_ids, p_keep = codec.prompts(["red dress", "blue bag by Alba"])
    t_ids, t_keep = codec.targets(["a small red dress.", "a bag."])
    batch = {"image_emb": emb, "prompt_ids": p_ids, "prompt_keep": p_keep, "target_ids": t_ids, "target_keep": t_keep}
    loss, _ = caption_loss(model, batch)
    # by hand: the decoder on [prefix + prompt] + target, cross-entropy on target tokens only
    total, count = 0.0, 0
    for b in range(2):
        prompt = p_ids[b][p_keep[b]]
        n = int(t_keep[b].sum())
        seq = torch.cat([model.mapper(emb[b:b + 1])[0], model.embed(prompt), model.embed(t_ids[b, :n - 1])])
        logits = model.decoder(None, embeds=seq[None])[0, -n:]
        total += torch.nn.functional.cross_entropy(logits, t_ids[b, :n], reduction="sum").item()
        count += n
    assert loss.item() == pytest.approx(total / count, rel=1e-5)
    # what sits in the padding, and the other rows of a batch, change nothing
    garbage = p_ids.clone()
    garbage[~p_keep] = 7
    assert caption_loss(model, {**batch, "prompt_ids": garbage})[0].item() == pytest.approx(loss.item(), rel=1e-6)
    one = model.generate(emb[:1], p_ids[:1], p_keep[:1], 6, codec.eos, 0.0, None)
    two = model.generate(emb, p_ids, p_keep, 6, codec.eos, 0.0, None)
    assert torch.equal(one[0], two[0, :one.shape[1]])


def test_hugging_face_decoder(tmp_path, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(str(tmp_path / "tiny"))
    from fmrecipes.core.hf import load_causal_lm

    model, codec = _captioner(tokenizer, decoder=load_causal_lm(tmp_path / "tiny"))
    p_ids, p_keep = codec.prompts(["red dress", ""])
    t_ids, t_keep = codec.targets(["a red dress.", "a bag."])
    loss, _ = caption_loss(model, {"image_emb": torch.randn(2, 12), "prompt_ids": p_ids, "prompt_keep": p_keep,
                                   "target_ids": t_ids, "target_keep": t_keep})
    assert math.isfinite(loss.item()) and abs(loss.item() - math.log(len(tokenizer))) < 1.0
    loss.backward()
    assert model.mapper.linear.weight.grad is not None
    out = model.generate(torch.randn(2, 12), p_ids, p_keep, 5, codec.eos, 0.2, 0.7, torch.Generator().manual_seed(0))
    assert out.shape[0] == 2 and out.shape[1] <= 5


def test_bleu_and_cider_against_hand_values():
    _, bleu = cider_bleu(["The red dress, on the left."], [["the red dress on the left"]])
    assert bleu == pytest.approx(100.0, abs=1e-4)  # punctuation and case do not count
    # 7 candidate words against a 6-word reference: n-gram precisions 6/7, 5/6, 4/5, 3/4, brevity penalty 1
    _, bleu = cider_bleu(["a red dress on the left side"], [["a red dress on the left"]])
    assert bleu == pytest.approx(100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25, rel=1e-6)
    # CIDEr-D rewards the right caption over a wrong one for the same references
    refs = [["a small red dress on the left"], ["a large blue bag at the top"], ["a white sneaker in the middle"]]
    good, _ = cider_bleu([r[0] for r in refs], refs)
    bad, _ = cider_bleu(["a large blue bag at the top", "a white sneaker in the middle", "a small red dress"], refs)
    assert good > 5 * bad


def test_scene_graph_metrics_by_hand():
    graph = {"objects": [
        {"id": 1, "class": "dress", "colour": "red", "position": "left", "brand": "Nordvik"},
        {"id": 2, "class": "bag", "colour": "blue", "position": "top", "brand": "Alba"}]}
    records = [{"brand": [1], "wrong_class": [], "mentioned": [1], "colour_stated": [1], "wrong_colour": []}]
    caption = "A red Nordvik dress is on the left. A green sneaker is at the top. The Alba bag is nice."
    c = graph_counts(caption, graph, records)
    assert (c["objects"], c["recalled"]) == (2, 2)
    assert (c["mentions"], c["correct_class"], c["hallucinated"]) == (3, 2, 1)  # the green sneaker
    assert (c["coloured"], c["colour_ok"]) == (1, 1)
    assert (c["kept_brands"], c["retained"], c["brands"], c["invented"]) == (1, 1, 2, 1)  # Alba: not stated
    # a kept brand moved onto another object (or an invented one) is not retained: it is a brand hallucination
    for moved in ("A red dress is on the left. A Nordvik bag is at the top.",
                  "A red dress is on the left. A blue bag is at the top. A Nordvik coat is nice.",
                  "A blue Nordvik dress is on the left."):
        b = graph_counts(moved, graph, records)
        assert (b["kept_brands"], b["retained"], b["brands"], b["invented"]) == (1, 0, 1, 1), moved
        assert b["brand_named"] == 1, moved  # copied, onto the wrong object
    assert graph_counts("A red dress is on the left. An Alba bag.", graph, records)["brand_named"] == 0
    b = graph_counts("The Nordvik dress. A red Nordvik dress.", graph, records)  # twice on its own object
    assert (b["retained"], b["brands"], b["invented"]) == (1, 2, 0)
    assert (c["placed"], c["place_ok"]) == (1, 1)  # the sneaker sentence names no object of the scene
    m = caption_metrics([caption], [caption], [graph], [records])
    assert m["object_recall"] == 100.0 and m["hallucination"] == pytest.approx(100 / 3)
    assert m["brand_retention"] == 100.0 and m["brand_hallucination"] == 50.0 and m["brand_mention"] == 100.0
    assert caption_metrics(["nothing"], ["x"], [graph], [records])["position_acc"] is None


def test_captioning_resumes_after_a_kill(tmp_path, tokenizer):
    from fmrecipes.altogether.caption import caption
    from fmrecipes.altogether.config import SamplingConfig

    model, codec = _captioner(tokenizer)
    emb = torch.randn(7, 12)
    prompts = ["red dress", "", "blue bag", "a", "b", "c", "white coat"]
    ids = [str(i) for i in range(7)]
    s = SamplingConfig(batch_size=3)
    full = caption(model, codec, emb, prompts, ids, s, tmp_path / "a.jsonl", progress=False)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    (tmp_path / "b.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:5])  # killed mid-line
    resumed = caption(model, codec, emb, prompts, ids, s, tmp_path / "b.jsonl", progress=False)
    assert resumed == full and (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()


def test_captioning_feeds_each_image_its_own_alt_text_prompt(tmp_path, tokenizer):
    """The captioner reads the alt-texts at inference: generate receives exactly the encoded prompts (an empty
    prompt only where the image has none), and the rows record them."""
    from fmrecipes.altogether.caption import capped_count, caption
    from fmrecipes.altogether.config import SamplingConfig

    model, codec = _captioner(tokenizer)
    seen = []
    real = model.generate

    def spy(image_emb, prompt_ids, prompt_keep, *args, **kwargs):
        seen.append((prompt_ids.clone(), prompt_keep.clone()))
        return real(image_emb, prompt_ids, prompt_keep, *args, **kwargs)

    model.generate = spy
    prompts = ["red dress; Nordvik red dress", "", "blue bag by Alba"]
    caption(model, codec, torch.randn(3, 12), prompts, ["a", "b", "c"], SamplingConfig(batch_size=8),
            tmp_path / "c.jsonl", progress=False)
    expect_ids, expect_keep = codec.prompts(prompts)
    assert torch.equal(seen[0][0], expect_ids) and torch.equal(seen[0][1], expect_keep)
    assert seen[0][1][0].any() and not seen[0][1][1].any()
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == prompts
    assert capped_count(tmp_path / "c.jsonl") == sum(r["capped"] for r in rows)


def test_stage_two_starts_from_stage_one_and_trains_on_realigned_captions(tmp_path, monkeypatch):
    """Stage 2 (notes B.4) fine-tunes the stage-1 weights on the re-aligned captions, with the inference prompt."""
    from fmrecipes.altogether import experiment
    from fmrecipes.core import dist

    cfg = configlib.load(AltogetherConfig, SMOKE, [f"out={tmp_path}"])
    s = experiment.setup(cfg, dist.setup(cfg.run))
    calls, real = [], experiment.train

    def spy(model, data, *args, **kwargs):
        calls.append({"stage": data.stage, "captions": data.captions, "batch": data.batch(torch.arange(4)),
                      "params": [p.detach().clone() for p in model.parameters()]})
        return real(model, data, *args, **kwargs)

    monkeypatch.setattr(experiment, "train", spy)
    stage1, _ = experiment.captioner_pair(cfg, s.data, s.emb, s.codec, tmp_path, 0.0, "pair", s.env)
    assert [c["stage"] for c in calls] == ["pretrain", "finetune"]
    assert calls[1]["captions"] == s.data.finetune.realigned != s.data.finetune.captions
    targets = s.codec.decode(calls[1]["batch"]["target_ids"])
    assert targets == [" ".join(t.split()) for t in s.codec.decode(s.codec.targets(
        s.data.finetune.realigned[:4])[0])]
    for start, final in zip(calls[1]["params"], stage1.parameters()):  # stage 2 begins where stage 1 ended
        assert torch.equal(start, final)
    assert not all(torch.equal(a, b) for a, b in zip(calls[0]["params"], calls[1]["params"]))


def test_config_errors(tmp_path):
    for override, key in (("captioner.decoder.seq_len=10", "seq_len"), ("data.size=32", "data.size"),
                          ("captioner.p_blank=2", "p_blank")):
        with pytest.raises(FmError, match=key):
            configlib.load(AltogetherConfig, SMOKE, [override]).validate()


def test_auto_encoders_are_the_pair_that_differs_in_image_self_supervision_alone(tmp_path, capsys):
    from fmrecipes.altogether.experiment import compare_paths
    from fmrecipes.altogether.paper import CLAIMS
    from fmrecipes.tips.config import VARIANTS

    out = tmp_path / "runs" / "altogether" / "seed1"
    cfg = configlib.load(AltogetherConfig, SMOKE, [f"out={out}", "compare_encoders=[auto]"])
    assert compare_paths(cfg) == [] and "no tips run" in capsys.readouterr().out
    for variant in ("tips", "clip_alt_distill_mim", "clip_alt"):
        (tmp_path / "runs" / "tips" / "seed1" / variant / "vit").mkdir(parents=True)
        (tmp_path / "runs" / "tips" / "seed1" / variant / "vit" / "config.json").write_text("{}")
    paths = compare_paths(cfg)
    assert [p.parent.name for p in paths] == ["clip_alt_distill_mim", "clip_alt"]
    assert all(p.parent.parent.name == "seed1" for p in paths)  # the same seed's replicate
    ssl, clip_only = (VARIANTS[p.parent.name] for p in paths)
    assert {k for k in ssl if ssl[k] != clip_only[k]} == {"distill", "mim"}
    claims = {c.id: c for c in CLAIMS if c.id.startswith("ssl_encoder")}
    assert {(c.a.split(".")[0], c.direction) for c in claims.values()} == {
        ("cider", "higher"), ("brand_retention", "higher"), ("hallucination", "lower")}
    assert all(c.a.endswith(".enc_clip_alt_distill_mim") and c.b.endswith(".enc_clip_alt") for c in claims.values())


def test_reproduce_smoke_caption_cli_and_bad_input(tmp_path):
    from fmrecipes.altogether.experiment import run_experiment
    from fmrecipes.core import dist
    from fmrecipes.core.checkpoint import save_model
    from fmrecipes.core.vit import ViT, ViTConfig

    torch.manual_seed(0)  # an encoder from elsewhere (a tips variant's vit/), compared under the same captioner
    vit = ViT(ViTConfig(image_size=16, patch_size=4, width=24, depth=1, heads=2, n_cls=2))
    save_model(vit, tmp_path / "tips" / "vit")
    out = tmp_path / "exp"
    cfg = configlib.load(AltogetherConfig, SMOKE, [f"out={out}", f"compare_encoders=[{tmp_path / 'tips' / 'vit'}]"])
    summary = run_experiment(cfg, dist.setup(cfg.run))
    assert "cider.enc_tips" in summary and "hallucination.enc_tips" in summary
    assert 0 <= summary["encoder_probe.class.enc_tips"] <= 100 and "encoder_probe.colour_majority.enc_tips" in summary
    for metric in ("cider", "bleu4", "object_recall", "object_precision", "hallucination", "brand_retention",
                   "brand_mention", "brand_hallucination"):
        for system in ("alt_text", "no_alt", "stage1", "altogether", "gold"):
            assert f"{metric}.{system}" in summary
    for key in ("clip_zeroshot", "clip_t2i_r1"):
        assert {f"{key}.{c}" for c in ("alt_text", "altogether", "mix15")} <= set(summary)
    # smoke's 300-token BPE spells the probed words in pieces, so no image qualifies and no key is written
    assert not any(k.startswith("copy_probe.") for k in summary)
    assert 0 < summary["stage1_targets_with_brand"] <= 1 and 0 <= summary["stage1_brand_in_prompt"] <= 1
    assert summary["cider.gold"] > summary["cider.alt_text"] and summary["object_recall.gold"] == 100.0
    assert summary["targets_seen"] > 0 and 0 <= summary["targets_truncated"] <= summary["targets_seen"]
    assert all(0 <= summary[f"captions_capped.{k}"] <= cfg.n_test for k in ("stage1", "altogether", "no_alt"))
    # stage 2 has its own warm-up: its first step runs at lr / warmup, not at the end of stage 1's schedule
    cfg = configlib.load(AltogetherConfig, SMOKE)
    first = json.loads((out / "altogether" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["lr"] == pytest.approx(cfg.finetune.lr / cfg.finetune.warmup_steps)
    assert (out / "caption_gallery.png").is_file() and (out / "caption_metrics.png").is_file()

    from fmrecipes.data.image_text import export_scenes

    export = export_scenes(SceneConfig(size=16), "test", 5, tmp_path / "export", progress=False)
    r = run_cli("altogether", "caption", str(out), "--index", str(export), "--out", str(tmp_path / "c.jsonl"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all("caption" in row for row in rows)
    (tmp_path / "noalt.jsonl").write_text(json.dumps({"image": str(export / "images" / "test-000000.png")}) + "\n")
    r = run_cli("altogether", "caption", str(out), "--index", str(tmp_path / "noalt.jsonl"), "--out",
                str(tmp_path / "d.jsonl"))
    assert r.returncode == 2 and "no alt-text" in r.stderr and "Traceback" not in r.stderr
    Path(tmp_path / "bad.png").write_bytes(b"junk")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"image": str(tmp_path / "bad.png"), "alt_text": "x"}) + "\n")
    r = run_cli("altogether", "caption", str(out), "--index", str(tmp_path / "bad.jsonl"), "--out",
                str(tmp_path / "e.jsonl"))
    assert r.returncode == 2 and "cannot be decoded" in r.stderr


class _Stub(torch.nn.Module):
    """A captioner stand-in: ``copier`` puts its weight on every prompt token, ``oracle`` on the true next
    token (whatever the prompt), otherwise uniform."""

    def __init__(self, vocab: int, kind: str):
        super().__init__()
        self.vocab, self.kind = vocab, kind

    def forward(self, image_emb, prompt_ids, prompt_keep, target_ids):
        logits = torch.zeros(*target_ids.shape, self.vocab)
        if self.kind == "oracle":
            return logits.scatter(-1, target_ids[..., None], 20.0)
        if self.kind == "copier":
            for b in range(len(prompt_ids)):
                logits[b, :, prompt_ids[b][prompt_keep[b]]] = 10.0
        return logits


def test_copy_probe_tells_a_copier_from_a_captioner_that_ignores_the_prompt(tmp_path):
    from fmrecipes.altogether.copy_probe import copy_probe

    words = ("red", "blue", "green", "pink")
    prompts = ["red dress", "Shop blue bag", "green coat | Sale", "no colour here"]
    captions = ["A large red dress is on the left.", "A small blue bag is at the top.",
                "There is a green coat in the middle.", "A white shirt."]
    train_bpe((prompts + captions + ["a pink sandal"]) * 20, 600, tmp_path)  # each colour one token
    tokenizer = load_tokenizer(tmp_path)
    codec = CaptionCodec(tokenizer, 24, 32)
    emb = torch.zeros(4, 12)
    ignorer = copy_probe(_Stub(len(tokenizer), "uniform"), codec, emb, prompts, captions, words)
    assert ignorer["n"] == 3 and ignorer["p_true"] == pytest.approx(ignorer["p_swapped"])
    copier = copy_probe(_Stub(len(tokenizer), "copier"), codec, emb, prompts, captions, words)
    assert copier["p_true"] > 0.1 > 1e-3 > copier["p_swapped"] and copier["p_swapped_in"] > 0.1
    oracle = copy_probe(_Stub(len(tokenizer), "oracle"), codec, emb, prompts, captions, words)
    assert oracle["p_true"] > 0.99 and oracle["p_swapped"] > 0.99  # read where the caption writes the word
    assert codec.prompts_seen == 0 and codec.targets_seen == 0  # the run's truncation counts are untouched
    assert copy_probe(_Stub(len(tokenizer), "copier"), codec, emb, ["x"], ["y"], words) == {}


def test_the_tokenizer_gives_a_word_one_id_wherever_it_stands(tmp_path):
    """With ``prefix_space`` a brand at the start of a text and inside it share one id; GPT-2's default splits
    them (the reason stage 1's copy signal was halved)."""
    texts = ["Brio red bag; red bag by Brio", "Brio shoes", "blue coat by Brio"] * 30
    ids = {}
    for prefix_space in (True, False):
        train_bpe(texts, 300, tmp_path / str(prefix_space), prefix_space=prefix_space)
        tok = load_tokenizer(tmp_path / str(prefix_space))  # as saved and read back
        ids[prefix_space] = [tok(t, add_special_tokens=False)["input_ids"] for t in ("Brio", "bag by Brio")]
    assert ids[True][0] == ids[True][1][-1:]
    assert ids[False][0] != ids[False][1][-1:]
    cfg = configlib.load(AltogetherConfig, SMOKE)
    assert cfg.tokenizer_prefix_space


class _LMStub(GPT):
    """A GPT stand-in: ``copier`` puts its weight on every token before the next one, else uniform."""

    def __init__(self, vocab: int, seq_len: int, kind: str):
        super().__init__(GPTConfig(vocab_size=vocab, seq_len=seq_len, n_layer=1, n_head=1, d_model=8))
        self.kind = kind

    def forward(self, idx, pad_mask=None, **kwargs):
        logits = torch.zeros(*idx.shape, self.config.vocab_size)
        if self.kind == "copier":
            for b in range(len(idx)):
                for t in range(idx.shape[1]):
                    logits[b, t, idx[b, : t + 1]] = 10.0
        return logits


@pytest.fixture(scope="module")
def brand_tokenizer(tmp_path_factory):
    from fmrecipes.data.scene_graph import BRANDS

    out = tmp_path_factory.mktemp("brandtok")
    texts = [f"{c} bag by {b}; {b} {c} coat" for b in BRANDS for c in ("red", "blue")] * 20
    train_bpe(texts, 400, out, prefix_space=True)
    return load_tokenizer(out)


def test_the_decoder_copy_gate_measures_copying_from_earlier_mentions(brand_tokenizer):
    """The gate reads the brand where it repeats an earlier mention; swapping the earlier mentions (and only
    them) takes a copier's probability away and gives it to the swapped-in brand; a model that ignores the
    context scores the same either way."""
    from fmrecipes.altogether.copy_probe import word_ids
    from fmrecipes.altogether.decoder_lm import copy_gate
    from fmrecipes.data.scene_graph import BRANDS

    b0, b1 = BRANDS[0], BRANDS[1]
    docs = [f"red bag by {b0}; blue coat by {b0}", f"{b1} coat; red bag; {b1} red bag", "red bag; blue coat",
            f"{b0} bag; {b1} coat"]  # the last two repeat no brand
    vocab = len(brand_tokenizer)
    ids = word_ids(brand_tokenizer, BRANDS)
    assert len(ids) == len(BRANDS)
    ignorer = copy_gate(_LMStub(vocab, 64, "uniform"), brand_tokenizer, docs)
    assert ignorer["n"] == 2 and ignorer["p_true"] == pytest.approx(ignorer["p_swapped"]) == pytest.approx(1 / vocab)
    copier = copy_gate(_LMStub(vocab, 64, "copier"), brand_tokenizer, docs)
    assert copier["n"] == 2 and copier["p_true"] > 0.05 > 1e-3 > copier["p_swapped"]
    assert copier["p_swapped_in"] == pytest.approx(copier["p_true"])  # the swapped-in brand takes its place
    assert copy_gate(_LMStub(vocab, 4, "copier"), brand_tokenizer, docs) == {}  # repeats past its context: none


def test_the_induction_gate_and_the_repeated_sequences():
    from fmrecipes.altogether.decoder_lm import induction_gate, repeated_sequences

    seq = repeated_sequences(50, 7, 30, eos=0, seed=1)
    assert seq.shape == (50, 14) and torch.equal(seq[:, :7], seq[:, 7:]) and bool((seq != 0).all())
    assert int(seq.max()) == 29 and torch.equal(seq, repeated_sequences(50, 7, 30, eos=0, seed=1))
    copier = induction_gate(_LMStub(30, 64, "copier"), 50, 7, eos=0, seed=1)
    ignorer = induction_gate(_LMStub(30, 64, "uniform"), 50, 7, eos=0, seed=1)
    assert ignorer["p_first"] == pytest.approx(ignorer["p_second"]) == pytest.approx(1 / 30)
    assert copier["p_second"] > 0.1 and copier["p_second"] > 3 * copier["p_first"]


def test_the_decoder_pretrains_on_alt_text_documents_of_unused_scenes(tmp_path, monkeypatch):
    """Decoder pre-training reads scenes after stage 1's and stage 2's (its gate the ones after those), each
    document an image's alt-texts joined as the inference prompt, with the configured share of repeated random
    sequences; both captioners of a pair (with and without alt-text) start from its weights."""
    from fmrecipes.altogether import decoder_lm, experiment
    from fmrecipes.core import dist
    from fmrecipes.core.checkpoint import load_model
    from fmrecipes.data.scene_pack import scene_pack

    cfg = configlib.load(AltogetherConfig, SMOKE, [f"out={tmp_path}", "decoder_lm.induction_share=0.5"])
    starts, real = [], decoder_lm.scene_pack

    def spy(data_cfg, split, n, start=0, **kwargs):
        starts.append((split, start, n, data_cfg.n_alt_texts))
        return real(data_cfg, split, n, start=start, **kwargs)

    monkeypatch.setattr(decoder_lm, "scene_pack", spy)
    s = experiment.setup(cfg, dist.setup(cfg.run))
    c = cfg.decoder_lm
    first = cfg.n_pretrain + cfg.n_finetune
    assert starts == [("train", first, c.n_docs, c.alts_per_doc), ("train", first + c.n_docs, c.n_gate,
                                                                      c.alts_per_doc)]
    docs = decoder_lm.corpus(cfg, s.codec.tokenizer, cfg.seed)
    pack = scene_pack(SceneConfig(size=16, n_alt_texts=c.alts_per_doc), "train", c.n_docs, start=first)
    written = {tuple(s.codec.tokenizer(inference_prompt(a), add_special_tokens=False)["input_ids"])
               for a in pack.alt_texts if distinct_alts(a)}
    text_docs = [d for d in docs if tuple(d) in written]
    repeated = [d for d in docs if tuple(d) not in written]
    assert len(text_docs) == len(written) and len(repeated) == len(text_docs)
    assert all(len(d) == 2 * c.induction_len and d[: c.induction_len] == d[c.induction_len:] for d in repeated)
    assert "decoder_lm.induction_gain" in s.gates
    lm = load_model(s.cfg.captioner.decoder_init)
    calls = []

    def spy_train(model, data, *args, **kwargs):
        calls.append([p.detach().clone() for p in model.decoder.parameters()])

    monkeypatch.setattr(experiment, "train", spy_train)
    monkeypatch.setattr(experiment, "load_model", lambda *a, **k: None)  # stage 2 starts from stage 1
    for p_blank, name in ((0.5, "a"), (1.0, "b")):
        experiment.captioner_pair(s.cfg, s.data, s.emb, s.codec, tmp_path, p_blank, name, s.env)
    assert len(calls) == 4
    for start in calls:
        assert all(torch.equal(a, b) for a, b in zip(start, lm.parameters()))


def test_decoder_init_errors(tmp_path):
    from fmrecipes.altogether.decoder_lm import load_decoder
    from fmrecipes.core.checkpoint import save_model

    with pytest.raises(FmError, match="hf_decoder"):
        configlib.load(AltogetherConfig, SMOKE, ["captioner.hf_decoder=x", "decoder_lm.enabled=true"]).validate()
    with pytest.raises(FmError, match="induction_share"):
        configlib.load(AltogetherConfig, SMOKE, ["decoder_lm.induction_share=1"]).validate()
    save_model(GPT(GPTConfig(vocab_size=100, seq_len=64, n_layer=1, n_head=2, d_model=16)), tmp_path / "lm")
    cfg = configlib.load(AltogetherConfig, SMOKE)
    with pytest.raises(FmError, match="reads 100 ids"):
        load_decoder(tmp_path / "lm", cfg, 300)


def test_encoder_probes_read_the_main_object_of_each_scene():
    """The probes label each scene by its object with the most visible pixels; an embedding that codes that
    object's class reads ~100% class and majority-level colour."""
    from fmrecipes.altogether.encoder import encoder_probes, main_object
    from fmrecipes.data.fashion_mnist import CLASSES

    graphs = [make_scene(SceneConfig(size=16, min_objects=2), "train", i).graph for i in range(200)]
    assert all(main_object(g)["visible"] == max(o["visible"] for o in g["objects"]) for g in graphs)
    labels = torch.tensor([CLASSES.index(main_object(g)["class"]) for g in graphs])
    emb = torch.nn.functional.one_hot(labels, 10).float() + 0.01 * torch.randn(200, 10)
    r = encoder_probes(emb[:150], graphs[:150], emb[150:], graphs[150:])
    assert r["encoder_probe.class"] > 95 and r["encoder_probe.colour"] < r["encoder_probe.colour_majority"] + 15
    first = torch.tensor([CLASSES.index(g["objects"][-1]["class"]) for g in graphs])  # another object's class
    emb = torch.nn.functional.one_hot(first, 10).float() + 0.01 * torch.randn(200, 10)
    assert encoder_probes(emb[:150], graphs[:150], emb[150:], graphs[150:])["encoder_probe.class"] < 80


def test_diversity_by_hand():
    from fmrecipes.altogether.evaluate import diversity
    from fmrecipes.data.scene_graph import BRANDS

    b0, b1, b2 = BRANDS[:3]
    caps = ["a red bag", "a red bag", f"a {b0} coat"]
    d = diversity(caps, [f"{b0} coat", f"{b1} bag; {b1}-style", "shirt"])
    # bigrams: (a red) (red bag) x2, (a b0) (b0 coat): 4 distinct of 6; words: a red bag b0 coat
    assert d["distinct2"] == pytest.approx(100 * 4 / 6) and d["vocabulary"] == 5
    assert d["entity_survival"] == pytest.approx(50.0)  # b0 and b1 named by the prompts, b0 kept
    assert diversity(caps, ["no brand", f"x{b2}"])["entity_survival"] is None  # not a whole word: none named


def test_downstream_retrieval_queries_are_held_out_human_captions(tmp_path, monkeypatch):
    """The CLIPs' headline text-to-image queries are the test scenes' human-style captions, which no captioner
    or CLIP trained on; the re-aligned references are the second table (the captions' own phrasing)."""
    from fmrecipes.altogether import experiment
    from fmrecipes.core import dist
    from fmrecipes.data.scene_human import human_captions

    cfg = configlib.load(AltogetherConfig, SMOKE, [f"out={tmp_path}", "decoder_lm.enabled=false"])
    s = experiment.setup(cfg, dist.setup(cfg.run))
    queries, real = [], experiment.encode_texts

    def spy(text, codec, texts):
        queries.append(list(texts))
        return real(text, codec, texts)

    monkeypatch.setattr(experiment, "encode_texts", spy)
    captions = [t[0] for t in s.data.pretrain.alt_texts]
    out = experiment.downstream(cfg, s.data, captions, s.clip_codec, s.make_clip, tmp_path, s.env)
    human = human_captions(s.data.test.graphs, "test")
    assert human != s.data.test.realigned and queries == [human, s.data.test.realigned] * 3
    assert {f"clip_t2i_r1{x}.{n}" for x in ("", "_realigned") for n in ("alt_text", "altogether", "mix15")} <= set(out)
