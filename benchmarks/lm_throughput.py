"""Training throughput (tokens/s) of fmrecipes' GPT against Hugging Face's LlamaForCausalLM.

Both models get the same width, depth, heads, vocabulary and sequence length, SDPA attention and
untied embeddings, and are timed in the same process on the same batches (forward + backward +
AdamW step), interleaved over several rounds; the median round counts. Llama's SwiGLU MLP has three
matrices, so its intermediate size is 8/3·d to match the parameters (and FLOPs) of our 4·d GELU MLP.

    python benchmarks/lm_throughput.py [--device cpu|cuda] [--d-model 256] ...

Prints one JSON object with both figures and their ratio (ours / Hugging Face).
"""

from __future__ import annotations

import json
import statistics
import time

import torch
import torch.nn.functional as F

from fmrecipes.core.gpt import GPT, GPTConfig
from shape_args import shape_parser


def llama(args) -> torch.nn.Module:
    from fmrecipes.core.hf import llama_like

    return llama_like(GPTConfig(vocab_size=args.vocab, seq_len=args.seq_len, n_layer=args.n_layer,
                                n_head=args.n_head, d_model=args.d_model, tie_embeddings=False))


def ours(args, **switches) -> torch.nn.Module:
    return GPT(GPTConfig(vocab_size=args.vocab, seq_len=args.seq_len, n_layer=args.n_layer, n_head=args.n_head,
                         d_model=args.d_model, tie_embeddings=False, **switches))


def step_fn(model: torch.nn.Module, device: torch.device, bf16: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            logits = out.logits if hasattr(out, "logits") else out
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def time_steps(step, x, y, n: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        step(x, y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = shape_parser(__doc__.splitlines()[0], seq_len=256, batch=8, rounds=6)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    args = p.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    torch.manual_seed(0)
    models = {"fmrecipes_gpt": ours(args), "hf_llama": llama(args),
              "fmrecipes_gpt_softcap50": ours(args, attn_logit_cap=50.0)}
    steps = {name: step_fn(m.to(device).train(), device, bf16) for name, m in models.items()}
    x = torch.randint(0, args.vocab, (args.batch, args.seq_len), device=device)
    y = torch.randint(0, args.vocab, (args.batch, args.seq_len), device=device)
    for step in steps.values():  # warm-up
        time_steps(step, x, y, 3, device)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.rounds):  # rotate the order each round so no model always runs first
        for name in order[r % len(order):] + order[:r % len(order)]:
            seconds[name].append(time_steps(steps[name], x, y, args.steps, device))
    tokens = args.batch * args.seq_len * args.steps
    tps = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    print(json.dumps({
        "benchmark": "lm_training_throughput", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "precision": "bf16 autocast" if bf16 else "fp32",
        "shape": {k: getattr(args, k) for k in ("d_model", "n_layer", "n_head", "vocab", "seq_len", "batch")},
        "params": {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()},
        "tokens_per_s": {k: round(v, 1) for k, v in tps.items()},
        "ratio_ours_vs_hf_llama": round(tps["fmrecipes_gpt"] / tps["hf_llama"], 3),
        "ratio_softcap_vs_fused_sdpa": round(tps["fmrecipes_gpt_softcap50"] / tps["fmrecipes_gpt"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
