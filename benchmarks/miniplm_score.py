"""Scoring throughput (instances/s) of ``fmrecipes miniplm score`` against the public scripts' plain loop.

The baseline is what MiniPLM's ``PretrainLMInferer`` does per batch: a Hugging Face forward with an
attention mask (KV cache on, as by default) under ``torch.no_grad``, fp32 cross-entropy per token, masked
sum / mask count. Ours is :func:`fmrecipes.miniplm.score.score` (inference mode, no cache, no mask for
packed full-length instances, chunked and resumable), on the same model, data and batch size, in the same
process. Prints one JSON object with both rates and their ratio.

    python benchmarks/miniplm_score.py [--d-model 256 --n-layer 4 --instances 512 --batch 32]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fmrecipes.core.dist import DistEnv
from fmrecipes.core.gpt import GPTConfig
from fmrecipes.core.hf import llama_like
from fmrecipes.data.tokens import PackedDataset, TokenShard, write_shard
from fmrecipes.miniplm.score import score
from shape_args import shape_parser


@torch.no_grad()
def plain_loop(model, data, indices: np.ndarray, batch: int, device: torch.device) -> np.ndarray:
    out = []
    for s in range(0, len(indices), batch):
        x, y = data.batch(indices[s:s + batch])
        x, y = x.to(device), y.to(device)
        mask = torch.ones_like(x)
        logits = model(input_ids=x, attention_mask=mask).logits
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1), reduction="none").view(y.shape)
        out.append(((loss * mask).sum(1) / mask.sum(1)).cpu().numpy())
    return np.concatenate(out)


def main() -> None:
    p = shape_parser(__doc__.splitlines()[0], seq_len=128, batch=32, rounds=3)
    p.add_argument("--instances", type=int, default=512)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = llama_like(GPTConfig(vocab_size=args.vocab, seq_len=args.seq_len, n_layer=args.n_layer,
                                 n_head=args.n_head, d_model=args.d_model)).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        write_shard(Path(tmp) / "s", [rng.integers(0, args.vocab, args.instances * args.seq_len + 1).tolist()],
                    None, args.vocab)
        data = PackedDataset(TokenShard(Path(tmp) / "s"), args.seq_len)
        idx = np.arange(args.instances)
        plain_loop(model, data, idx[: args.batch], args.batch, device)  # warm-up
        times: dict[str, list[float]] = {"fmrecipes_score": [], "plain_hf_loop": []}
        for r in range(args.rounds):
            t0 = time.perf_counter()
            ours = score(model, data, idx, Path(tmp) / f"scores{r}", "bench", "bench", batch_size=args.batch,
                         chunk=args.instances, env=DistEnv(device=device, progress=False))
            times["fmrecipes_score"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref = plain_loop(model, data, idx, args.batch, device)
            times["plain_hf_loop"].append(time.perf_counter() - t0)
        rate = {k: args.instances / float(np.median(v)) for k, v in times.items()}
        print(json.dumps({
            "benchmark": "miniplm_scoring_throughput", "device": str(device), "threads": torch.get_num_threads(),
            "model": f"LlamaForCausalLM d={args.d_model} layers={args.n_layer} vocab={args.vocab}",
            "instances": args.instances, "seq_len": args.seq_len, "batch": args.batch,
            "instances_per_s": {k: round(v, 1) for k, v in rate.items()},
            "ratio_ours_vs_plain_loop": round(rate["fmrecipes_score"] / rate["plain_hf_loop"], 3),
            "max_abs_score_difference": float(np.abs(ours - ref).max()),
        }, indent=2))


if __name__ == "__main__":
    main()
