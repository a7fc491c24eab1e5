"""One replicate of ``fmrecipes altogether run`` / ``reproduce altogether``: re-aligning alt-text against raw
alt-text and captioning from scratch, and the downstream CLIP study (notes B.6-B.7).

Systems on the test scenes: ``alt_text`` (the joined alt-texts themselves), ``no_alt`` (the same two stages,
never shown an alt-text), ``stage1`` (after alt-text pre-training), ``altogether`` (after fine-tuning on
re-aligned captions) and ``gold`` (the re-aligned references: the ceiling). Downstream: CLIPs with equal
budgets on alt-text, on Altogether captions, and on alt-text replaced by the caption 15% of the time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..config import dump_yaml
from ..core import dist
from ..core.checkpoint import latest_checkpoint, load_model
from ..core.clip import CLIP
from ..core.fileio import atomic_write_json, ensure_dir
from ..core.fingerprint import digest, file_digest, guard_inputs
from ..core.retrieval import (
    class_embeddings,
    encode_texts,
    retrieval_r1,
    zeroshot_accuracy,
)
from ..core.text_encoder import TextCodec, text_codec
from ..core.tokenizer import load_tokenizer, train_bpe
from ..core.train import TrainConfig, train
from ..core.vit import ViT
from ..data.fashion_mnist import zeroshot_images
from ..data.image_text import image_text_pack
from ..data.scene_graph import BRANDS
from ..data.scene_human import human_captions
from ..data.scene_pack import ScenePack, scene_pack, to_float
from ..data.scene_text import class_phrases
from .caption import capped_count, caption
from .config import AltogetherConfig
from .copy_probe import copy_probes
from .data import CaptionCodec, CaptionData, inference_prompt, stage1_brand_share
from .decoder_lm import load_decoder, pretrain_decoder
from .encoder import embed_images, encoder_probes, image_encoder, random_alt_text, train_clip
from .evaluate import caption_metrics, diversity
from .losses import caption_loss
from .model import Captioner
from .paper import AUTO_ENCODERS, compared

SYSTEMS = ("alt_text", "no_alt", "stage1", "altogether", "gold")


@dataclass
class Corpus:
    pretrain: ScenePack
    finetune: ScenePack
    test: ScenePack


def corpus(cfg: AltogetherConfig) -> Corpus:
    """Stage-1 scenes, a disjoint small set of re-aligned ones for stage 2 (the next train indices), test scenes;
    your ``pretrain_data`` / ``finetune_data`` (images resized to the encoder's input) in place of the first two."""
    size = cfg.encoder.vit.image_size
    pretrain = (image_text_pack(cfg.pretrain_data, size) if cfg.pretrain_data else
                scene_pack(cfg.data, "train", cfg.n_pretrain))
    finetune = (image_text_pack(cfg.finetune_data, size, ("realigned_caption",)) if cfg.finetune_data else
                scene_pack(cfg.data, "train", cfg.n_finetune, start=cfg.n_pretrain))
    return Corpus(pretrain=pretrain, finetune=finetune, test=scene_pack(cfg.data, "test", cfg.n_test))


def data_sources(cfg: AltogetherConfig) -> dict[str, str]:
    """What the encoder, tokenizers and captioners of ``cfg.out`` are trained on (see :func:`guard_inputs`)."""
    scenes = digest({"data": cfg.data, "n_pretrain": cfg.n_pretrain, "n_finetune": cfg.n_finetune})
    return {f"{stage} data": f"{path} {file_digest(path)}" if path else f"FashionScenes {scenes}"
            for stage, path in (("pretrain", cfg.pretrain_data), ("finetune", cfg.finetune_data))}


def caption_codec(cfg: AltogetherConfig, data: Corpus, out: Path) -> CaptionCodec:
    """The decoder's tokenizer: the Hugging Face decoder's own, or a BPE trained on stage-1 alt-texts and
    stage-2 captions (``out/tokenizer``)."""
    c = cfg.captioner
    if c.hf_decoder:
        return CaptionCodec(load_tokenizer(c.hf_decoder), c.prompt_len, c.target_len)
    tok = out / "tokenizer"
    if not (tok / "tokenizer.json").is_file():
        texts = [a for alts in data.pretrain.alt_texts for a in alts] + data.finetune.realigned
        train_bpe(texts, cfg.tokenizer_vocab, tok, prefix_space=cfg.tokenizer_prefix_space)
    return CaptionCodec(load_tokenizer(tok), c.prompt_len, c.target_len)


def new_captioner(cfg: AltogetherConfig, embed_dim: int, codec: CaptionCodec) -> Captioner:
    """A captioner whose decoder is the Hugging Face one, the pre-trained GPT of ``captioner.decoder_init``, or a
    new GPT; the mapper is initialised from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    decoder = None
    if cfg.captioner.hf_decoder:
        from ..core.hf import load_causal_lm

        decoder = load_causal_lm(cfg.captioner.hf_decoder)
    elif cfg.captioner.decoder_init:
        decoder = load_decoder(cfg.captioner.decoder_init, cfg, len(codec.tokenizer))
    return Captioner(cfg.captioner, embed_dim, len(codec.tokenizer), decoder)


def train_stage(model: Captioner, data: CaptionData, cfg: TrainConfig, run_dir: Path, init: Path | None,
                seed: int, env: dist.DistEnv) -> Captioner:
    """One stage in ``run_dir`` (resumable), starting from the final weights of ``init`` (stage 1) if given;
    every stage has its own warm-up and schedule (the released code's shared schedule is a bug, notes B.4)."""
    if init is not None and latest_checkpoint(run_dir) is None:
        load_model(latest_checkpoint(init), into=model)
    train(model, data, None, replace(cfg, seed=seed), run_dir, env, loss_fn=caption_loss)
    return model.eval()


def captioner_pair(cfg: AltogetherConfig, data: Corpus, emb: dict[str, torch.Tensor], codec: CaptionCodec,
                   out: Path, p_blank: float, name: str, env: dist.DistEnv) -> tuple[Captioner, Captioner]:
    """Stage 1 then stage 2 with prompt blanking ``p_blank``; returns (after stage 1, after stage 2)."""
    dim = emb["pretrain"].shape[1]
    stage1 = train_stage(new_captioner(cfg, dim, codec),
                         CaptionData(emb["pretrain"], data.pretrain.alt_texts, codec, "pretrain", p_blank),
                         cfg.pretrain, out / f"{name}_stage1", None, cfg.seed, env)
    stage2 = train_stage(new_captioner(cfg, dim, codec),
                         CaptionData(emb["finetune"], data.finetune.alt_texts, codec, "finetune", p_blank,
                                     data.finetune.realigned),
                         cfg.finetune, out / name, out / f"{name}_stage1", cfg.seed, env)
    return stage1, stage2


def downstream(cfg: AltogetherConfig, data: Corpus, captions: list[str], clip_codec: TextCodec, make_clip,
               out: Path, env: dist.DistEnv) -> dict[str, float]:
    """CLIPs on alt-text, on Altogether captions and on the 15% mix: zero-shot and text-to-image R@1 (queries:
    held-out human-style captions, and the re-aligned references)."""
    d = cfg.downstream
    alt = random_alt_text(data.pretrain)

    def mixed(i: int, g: torch.Generator) -> str:
        return captions[i] if float(torch.rand((), generator=g)) < d.mix_ratio else alt(i, g)

    texts = {"alt_text": alt, "altogether": lambda i, g: captions[i], "mix15": mixed}
    fashion, labels = zeroshot_images(d.n_zeroshot, cfg.data.size, cfg.data.fashion_dir)
    result: dict[str, float] = {}
    for name, text in texts.items():
        torch.manual_seed(cfg.seed)
        clip = train_clip(make_clip(), data.pretrain.images, text, clip_codec, d.train, cfg.global_scale,
                          out / f"clip_{name}", cfg.seed, env)
        classes = class_embeddings(clip.text, clip_codec, class_phrases())
        result[f"clip_zeroshot.{name}"] = 100 * zeroshot_accuracy(clip.encode_images(fashion), classes, labels)
        # headline queries: held-out human-style captions, which no captioner and no CLIP trained on (as in tips);
        # "_realigned": the re-aligned references, the phrasing the Altogether captions were trained to write
        images = clip.encode_images(to_float(data.test.images))
        for suffix, queries in (("", human_captions(data.test.graphs, "test")), ("_realigned", data.test.realigned)):
            t2i = retrieval_r1(images, encode_texts(clip.text, clip_codec, queries))[1]
            result[f"clip_t2i_r1{suffix}.{name}"] = 100 * t2i
    return result


@dataclass
class Setup:
    cfg: AltogetherConfig  # with captioner.decoder_init set when decoder pre-training ran
    data: Corpus
    clip_codec: TextCodec
    make_clip: Any
    vit: Any
    emb: dict[str, torch.Tensor]
    codec: CaptionCodec
    env: dist.DistEnv
    gates: dict[str, float]  # the pre-trained decoder's (decoder_lm.*), when this run trained it


def setup(cfg: AltogetherConfig, env: dist.DistEnv) -> Setup:
    """Scenes, the CLIP tokenizer, the frozen encoder (stage 0 if needed), image embeddings, the decoder's
    tokenizer and, with ``decoder_lm.enabled``, the pre-trained decoder: what every verb needs, each built once in
    ``cfg.out``."""
    out = ensure_dir(cfg.out)
    data = corpus(cfg)
    guard_inputs(out, data_sources(cfg), "an encoder, tokenizers and captioners")
    enc = cfg.encoder
    clip_codec = text_codec(enc.text, cfg.tokenizer_vocab, [a for alts in data.pretrain.alt_texts for a in alts]
                            + data.pretrain.captions + data.finetune.realigned, out / "clip_tokenizer")

    def make_clip() -> CLIP:
        return CLIP(enc.vit, enc.text)

    vit = image_encoder(enc.path, data.pretrain, clip_codec, make_clip, enc.train, cfg.global_scale,
                        out / "encoder", cfg.seed, env)
    emb = {k: embed_images(vit, getattr(data, k).images) for k in ("pretrain", "finetune", "test")}
    codec = caption_codec(cfg, data, out)
    if env.is_main:  # what `altogether caption` reads, once the inputs have loaded
        dump_yaml(cfg, out / "config.yaml")
    gates: dict[str, float] = {}
    if cfg.decoder_lm.enabled and not cfg.captioner.decoder_init:
        init, gates = pretrain_decoder(cfg, codec.tokenizer, out, env)
        cfg = replace(cfg, captioner=replace(cfg.captioner, decoder_init=str(init)))
    return Setup(cfg, data, clip_codec, make_clip, vit, emb, codec, env, gates)


def run_experiment(cfg: AltogetherConfig, env: dist.DistEnv) -> dict[str, Any]:
    s = setup(cfg, env)
    cfg = s.cfg
    out, data, emb, codec, clip_codec, make_clip = Path(cfg.out), s.data, s.emb, s.codec, s.clip_codec, s.make_clip
    systems = {"altogether": captioner_pair(cfg, data, emb, codec, out, cfg.captioner.p_blank, "altogether", env),
               "no_alt": captioner_pair(cfg, data, emb, codec, out, 1.0, "no_alt", env)}
    prompts = [inference_prompt(a) for a in data.test.alt_texts]
    ids = [f"test-{i:06d}" for i in range(cfg.n_test)]
    caps = {"alt_text": prompts, "gold": data.test.realigned,
            "stage1": caption(systems["altogether"][0], codec, emb["test"], prompts, ids, cfg.sampling,
                              out / "captions" / "stage1.jsonl", env.progress),
            "altogether": caption(systems["altogether"][1], codec, emb["test"], prompts, ids, cfg.sampling,
                                  out / "captions" / "altogether.jsonl", env.progress),
            "no_alt": caption(systems["no_alt"][1], codec, emb["test"], [""] * cfg.n_test, ids, cfg.sampling,
                              out / "captions" / "no_alt.jsonl", env.progress)}
    summary: dict[str, Any] = {**s.gates, **encoder_probes(emb["pretrain"], data.pretrain.graphs, emb["test"],
                                                           data.test.graphs)}
    for system in SYSTEMS:
        metrics = {**caption_metrics(caps[system], data.test.realigned, data.test.graphs, data.test.alt_text_errors),
                   **diversity(caps[system], prompts)}
        summary.update({f"{m}.{system}": (round(v, 3) if v is not None else None) for m, v in metrics.items()})
    summary["prompts_truncated"] = codec.prompts_truncated
    summary["prompts_seen"] = codec.prompts_seen
    summary["targets_truncated"] = codec.targets_truncated  # training targets cut at target_len (per draw)
    summary["targets_seen"] = codec.targets_seen
    summary.update(copy_probes(systems["altogether"][1], codec, emb["test"], prompts, data.test.realigned))
    summary.update(copy_probes(systems["altogether"][0], codec, emb["test"], prompts, data.test.realigned,
                               "copy_probe_stage1"))
    summary.update({k: round(v, 4) for k, v in stage1_brand_share(data.pretrain.alt_texts, BRANDS).items()})
    for system in ("stage1", "altogether", "no_alt"):  # generations cut at target_len tokens
        summary[f"captions_capped.{system}"] = capped_count(out / "captions" / f"{system}.jsonl")
    pretrain_caps = caption(systems["altogether"][1], codec, emb["pretrain"],
                            [inference_prompt(a) for a in data.pretrain.alt_texts],
                            [f"train-{i:06d}" for i in range(cfg.n_pretrain)], cfg.sampling,
                            out / "captions" / "pretrain_altogether.jsonl", env.progress)
    summary.update({k: round(v, 3) for k, v in downstream(cfg, data, pretrain_caps, clip_codec, make_clip,
                                                          out, env).items()})
    atomic_write_json(out / "captions" / "examples.json",
                      [{"alt_text": caps["alt_text"][i], "altogether": caps["altogether"][i],
                        "no_alt": caps["no_alt"][i], "gold": caps["gold"][i]} for i in range(min(8, cfg.n_test))])
    summary.update(encoder_comparison(cfg, s, out))
    from .plots import caption_gallery, metric_bars

    metric_bars(summary, out / "caption_metrics.png")
    caption_gallery(data.test, caps, out / "caption_gallery.png")
    return summary


def compare_paths(cfg: AltogetherConfig) -> list[Path]:
    """``compare_encoders`` with "auto" expanded to the encoders of :data:`AUTO_ENCODERS` from the same seed's
    replicate of a ``reproduce tips`` run beside this one (``OUT/tips/seed<k>/<variant>/vit``); a line says when
    there is none."""
    paths: list[Path] = []
    for entry in cfg.compare_encoders:
        if entry == "auto":
            tips = Path(cfg.out).parent.parent / "tips" / Path(cfg.out).name
            found = [tips / v / "vit" for v in AUTO_ENCODERS if (tips / v / "vit" / "config.json").is_file()]
            if not found:
                print(f"[altogether] compare_encoders=[auto]: no tips run at {tips} (run `reproduce tips` with the "
                      "same --out first); the encoder claims stay unmeasured", flush=True)
            paths += found
        else:
            paths.append(Path(entry))
    return paths


def encoder_comparison(cfg: AltogetherConfig, s: Setup, out: Path) -> dict[str, Any]:
    """The same captioner (both stages) on each encoder of ``compare_encoders``: ``<metric>.enc_<name>``,
    where name is the encoder's directory (a tips variant)."""
    result: dict[str, Any] = {}
    prompts = [inference_prompt(a) for a in s.data.test.alt_texts]
    for path in compare_paths(cfg):
        name = compared(path.parent.name)
        vit = load_model(path, expect=ViT).eval()
        emb = {k: embed_images(vit, getattr(s.data, k).images) for k in ("pretrain", "finetune", "test")}
        result.update(encoder_probes(emb["pretrain"], s.data.pretrain.graphs, emb["test"], s.data.test.graphs, name))
        model = captioner_pair(cfg, s.data, emb, s.codec, out, cfg.captioner.p_blank, name, s.env)[1]
        caps = caption(model, s.codec, emb["test"], prompts, [f"test-{i:06d}" for i in range(cfg.n_test)],
                       cfg.sampling, out / "captions" / f"{name}.jsonl", s.env.progress)
        metrics = caption_metrics(caps, s.data.test.realigned, s.data.test.graphs, s.data.test.alt_text_errors)
        result.update({f"{m}.{name}": (round(v, 3) if v is not None else None) for m, v in metrics.items()})
    return result
