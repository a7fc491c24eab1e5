"""Configuration of the Altogether captioner and its experiment (arXiv 2410.17251; notes part B)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.dist import RunConfig
from ..core.gpt import GPTConfig
from ..core.text_encoder import TextConfig
from ..core.train import TrainConfig
from ..core.vit import ViTConfig
from ..data.scene_config import SceneConfig
from ..errors import ConfigError


@dataclass
class EncoderConfig:
    """The frozen image encoder. ``path``: a core ViT directory (``vit/`` of a tips variant, or of this
    recipe's stage 0); empty: stage 0 trains a CLIP on alt-text with the core contrastive loss."""

    path: str = ""
    vit: ViTConfig = field(default_factory=ViTConfig)
    text: TextConfig = field(default_factory=TextConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=200, batch_size=64, micro_batch_size=64,
                                                                   lr=2e-3, weight_decay=0.05))


@dataclass
class CaptionerConfig:
    """ClipCap mapper + decoder (notes B.3; the paper: 40 prefix tokens, an 8-layer mapper with mlp ratio 2,
    OPT-1.3B, 128 prompt and 192 target tokens)."""

    prefix_len: int = 10
    mapper_depth: int = 2
    mapper_heads: int = 4
    prompt_len: int = 48        # alt-text tokens, left-padded; longer prompts are truncated (and counted)
    target_len: int = 64        # caption tokens + EOS, right-padded
    p_blank: float = 0.5        # the alt-text prompt is blanked with this probability in training
    decoder: GPTConfig = field(default_factory=lambda: GPTConfig(n_layer=3, n_head=4, d_model=128))
    hf_decoder: str = ""        # a local Hugging Face causal LM directory replaces the core GPT (with its tokenizer)
    # a core GPT checkpoint (or its run directory) as the decoder's initial weights, as the paper starts from a
    # pretrained OPT; `decoder_lm.enabled` trains one in OUT/decoder_lm and uses it when this is empty
    decoder_init: str = ""


@dataclass
class DecoderLMConfig:
    """Decoder pre-training before stages 1 and 2 (the paper's decoder is a pretrained LM, notes B.3): the core
    GPT trained as a language model on alt-text documents, each one image's ``alts_per_doc`` alt-texts joined as
    the inference prompt joins them, from ``n_docs`` scenes no other stage uses; ``induction_share`` of all
    documents are instead a random token sequence of ``induction_len`` tokens written twice (to grow induction
    heads). The gates measure copying on the next ``n_gate`` scenes' documents and on ``n_gate`` random
    sequences (see :mod:`fmrecipes.altogether.decoder_lm`)."""

    enabled: bool = False
    n_docs: int = 3000
    alts_per_doc: int = 10
    induction_share: float = 0.0
    induction_len: int = 24
    n_gate: int = 300
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=400, batch_size=32, micro_batch_size=32, lr=2e-3, beta2=0.98, eps=1e-6, weight_decay=0.1,
        warmup_steps=40, min_lr_ratio=0.1))


@dataclass
class SamplingConfig:
    """Inference (notes B.5): alt-texts joined by "; ", temperature 0.2, top-p 0.7; ``greedy`` overrides."""

    temperature: float = 0.2
    top_p: float = 0.7
    greedy: bool = False
    batch_size: int = 64
    seed: int = 0


@dataclass
class DownstreamConfig:
    """CLIPs trained with equal budgets on alt-text, on Altogether captions, and on alt-text replaced by the
    caption with probability ``mix_ratio`` (MetaCLIP 1.2's syn_ratio, notes B.6)."""

    mix_ratio: float = 0.15
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=200, batch_size=64, micro_batch_size=64,
                                                                   lr=2e-3, weight_decay=0.05))
    n_zeroshot: int = 1000


@dataclass
class AltogetherConfig:
    out: str = "runs/altogether"
    data: SceneConfig = field(default_factory=SceneConfig)
    n_pretrain: int = 4000      # stage 1 images (the paper: 22.8M web images)
    n_finetune: int = 200       # stage 2 re-aligned captions (the paper: 15k, about 0.07% of stage 1)
    n_test: int = 300
    # Your own image-text sets instead of FashionScenes (every row; n_pretrain / n_finetune are then unused): an
    # index (.jsonl/.parquet), a directory of images with sidecar texts, or a saved `datasets` dataset with an image
    # column. Stage 1 reads alt_text(s); stage 2 also its re-aligned caption (`realigned_caption`). The evaluation
    # (brands, hallucination, CIDEr-D) still measures on FashionScenes test scenes, whose ground truth it needs.
    pretrain_data: str | None = None
    finetune_data: str | None = None
    tokenizer_vocab: int = 1024
    # the decoder's BPE reads a text's first word as if a space preceded it: a brand then has one id wherever it
    # stands (without it, an alt-text that starts with the brand gives it another id, so copying it fails)
    tokenizer_prefix_space: bool = True
    global_scale: tuple[float, float] = (0.7, 1.0)  # CLIP training crops (captioner images are never cropped)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    captioner: CaptionerConfig = field(default_factory=CaptionerConfig)
    decoder_lm: DecoderLMConfig = field(default_factory=DecoderLMConfig)
    # Official AdamW (notes B.4): lr 2e-4, betas (0.9, 0.98), eps 1e-6, wd 0.2, warmup then cosine to 0; small
    # models here take a larger lr. Stage 2 has its own schedule (the released code's shared one is a bug).
    pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=400, batch_size=64, micro_batch_size=64, lr=1e-3, beta2=0.98, eps=1e-6, weight_decay=0.2,
        warmup_steps=40, min_lr_ratio=0.0))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=100, batch_size=32, micro_batch_size=32, lr=5e-4, beta2=0.98, eps=1e-6, weight_decay=0.2,
        warmup_steps=10, min_lr_ratio=0.0))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)
    # Encoders to compare under the same captioner (core ViT directories, e.g. OUT/tips/tips/vit, trained with
    # image self-supervision, vs OUT/tips/clip_alt/vit, contrastive only). "auto": the tips and clip_alt
    # encoders of a `reproduce tips` run beside this one (same --out), if present.
    compare_encoders: list[str] = field(default_factory=list)
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])  # `run` / reproduce: one full replicate per seed
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        if self.data.size != self.encoder.vit.image_size and not self.encoder.path:
            raise ConfigError(f"data.size={self.data.size} must equal encoder.vit.image_size="
                              f"{self.encoder.vit.image_size}")
        if self.encoder.text.kind == "scratch" and self.encoder.text.width != self.encoder.vit.width:
            raise ConfigError("encoder.text.width must equal encoder.vit.width (one embedding width)")
        if not 0.0 <= self.captioner.p_blank <= 1.0:
            raise ConfigError(f"captioner.p_blank={self.captioner.p_blank} is not a probability")
        need = self.captioner.prefix_len + self.captioner.prompt_len + self.captioner.target_len
        if not self.captioner.hf_decoder and self.captioner.decoder.seq_len < need:
            raise ConfigError(f"captioner.decoder.seq_len={self.captioner.decoder.seq_len} is shorter than "
                              f"prefix_len + prompt_len + target_len = {need}")
        if self.captioner.hf_decoder and (self.captioner.decoder_init or self.decoder_lm.enabled):
            raise ConfigError("captioner.hf_decoder is already pretrained: leave captioner.decoder_init empty and "
                              "decoder_lm.enabled false")
        if not 0.0 <= self.decoder_lm.induction_share < 1.0:
            raise ConfigError(f"decoder_lm.induction_share={self.decoder_lm.induction_share} must be in [0, 1)")
        if not self.captioner.hf_decoder and self.captioner.decoder.vocab_size < self.tokenizer_vocab:
            raise ConfigError(f"captioner.decoder.vocab_size must be at least tokenizer_vocab={self.tokenizer_vocab}")
