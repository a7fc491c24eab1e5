"""Write stand-ins for your own data and models into DIR (``python make_data.py DIR``), for ``run.sh``: a jsonl
corpus (150 Wikipedia pages), prompts, 48 images of mixed sizes and modes with sidecar texts and as an index,
80 images in two class folders, a tiny Hugging Face Llama and a tiny chat model (each with its own tokenizer), and a
tiny diffusers UNet2DModel with a DDPM scheduler. Untrained models: the runs show the plumbing, not quality."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fmrecipes.core.gpt import GPTConfig
from fmrecipes.core.hf import llama_like
from fmrecipes.core.tokenizer import train_bpe
from fmrecipes.data.corpora import wiki_documents
from fmrecipes.sso.chat import CHAT_TEMPLATE, ROLE_TOKENS

SIZES_MODES = [((40, 30), "RGB"), ((20, 20), "L"), ((50, 50), "RGBA"), ((24, 36), "RGB")]


def image(i: int) -> Image.Image:
    (w, h), mode = SIZES_MODES[i % len(SIZES_MODES)]
    return Image.fromarray(np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)


def main(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    docs = [d.text for d in wiki_documents()[:150]]
    (root / "my.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    (root / "prompts.txt").write_text("\n".join(["Explain what a comet is.", "Give a tip for learning to cook.",
                                                 "Describe a rainy afternoon.", "How can I save money?"] * 8))
    (root / "images").mkdir(exist_ok=True)
    rows = []
    for i in range(48):
        image(i).save(root / "images" / f"{i:03d}.png")
        texts = {"alt_text": f"item {i} on sale", "caption": f"a photo of item {i}, a red hat on a table",
                 "realigned_caption": f"a red hat, item {i}, on a table"}
        (root / "images" / f"{i:03d}.json").write_text(json.dumps(texts))
        rows.append({"image": f"images/{i:03d}.png", **texts})
    (root / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i in range(80):
        folder = root / "folder" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image(i).save(folder / f"{i:03d}.png")
    tok = train_bpe(docs, 400, root / "hf_llama")
    llama_like(GPTConfig(vocab_size=len(tok), seq_len=128, n_layer=1, n_head=2, d_model=32)).save_pretrained(
        str(root / "hf_llama"))
    chat = train_bpe(docs, 512, root / "chat_model", special_tokens=ROLE_TOKENS, chat_template=CHAT_TEMPLATE)
    llama_like(GPTConfig(vocab_size=len(chat), seq_len=1024, n_layer=1, n_head=2, d_model=32)).save_pretrained(
        str(root / "chat_model"))
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(16, 16), layers_per_block=1,
                down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                norm_num_groups=8).save_pretrained(str(root / "ddpm" / "unet"))
    DDPMScheduler().save_pretrained(str(root / "ddpm" / "scheduler"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/byo_data"))
