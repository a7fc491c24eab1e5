"""Batched captioning that resumes after a kill: rows are appended to a jsonl file one batch at a time, and a
re-run continues after the last complete row."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..core.metrics import read_jsonl
from ..core.seeding import stream_seed
from ..errors import FmError
from .config import SamplingConfig
from .data import CaptionCodec
from .model import Captioner


def caption(model: Captioner, codec: CaptionCodec, image_emb: torch.Tensor, prompts: list[str], ids: list[str],
            sampling: SamplingConfig, path: Path, progress: bool = True) -> list[str]:
    """Captions of every image (with its alt-text ``prompts``, "" for none) into ``path`` (jsonl rows
    ``{"id", "prompt", "caption", "capped"}``, capped: stopped at ``target_len`` tokens without EOS); rows
    already there are kept."""
    rows = read_jsonl(path)  # a line cut by a kill is dropped and redone
    _check_continues(path, rows, ids, prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model.eval()
    temperature = 0.0 if sampling.greedy else sampling.temperature
    with path.open("a", encoding="utf-8") as f:
        starts = range(len(rows), len(prompts), sampling.batch_size)
        for start in tqdm(starts, desc=f"caption {path.stem}", disable=not progress, leave=False):
            stop = min(start + sampling.batch_size, len(prompts))
            g = torch.Generator().manual_seed(stream_seed(sampling.seed, start))
            out = model.generate(image_emb[start:stop], *codec.prompts(prompts[start:stop]), codec.target_len,
                                 codec.eos, temperature, sampling.top_p, g)
            for i, text, capped in zip(range(start, stop), codec.decode(out), codec.capped(out)):
                row = {"id": ids[i], "prompt": prompts[i], "caption": text, "capped": capped}
                rows.append(row)
                f.write(json.dumps(row) + "\n")
            f.flush()
    return [r["caption"] for r in rows]


def _check_continues(path: Path, rows: list[dict], ids: list[str], prompts: list[str]) -> None:
    """A one-line error unless the rows already in ``path`` are the first captions of these images with these
    prompts: continuing another index's (or another prompt setting's) file would keep foreign rows."""
    if len(rows) > len(ids):
        raise FmError(f"captions file {path} holds {len(rows)} rows, more than the index's {len(ids)} images; "
                      "choose a new --out")
    for n, (row, i, prompt) in enumerate(zip(rows, ids, prompts), 1):
        if row.get("id") != i or row.get("prompt") != prompt:
            raise FmError(f"captions file {path} row {n} is not image {i!r} with this run's prompt (it has "
                          f"{row.get('id')!r}): it holds captions of another index or prompt setting; choose a new "
                          "--out")


def capped_count(path: Path) -> int:
    """How many captions in a caption file stopped at the length cap without EOS."""
    return sum(bool(r.get("capped")) for r in read_jsonl(path))
