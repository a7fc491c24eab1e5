"""Training throughput (tokens/s) of fmrecipes' GPT against Hugging Face's LlamaForCausalLM, at two sizes.

Both models get the same width, depth, heads, vocabulary and sequence length, SDPA attention and
untied embeddings, and are timed in the same process on the same batches (the training loop's loss,
``core.causal_lm.lm_loss``: our GPT's fused head + cross-entropy, Llama's logits + cross-entropy; backward;
AdamW step), interleaved over rounds with the order rotated each round; the median round counts, and each
round's ratio is printed to show how steady it is. Llama's SwiGLU MLP has three matrices, so its
intermediate size is 8/3·d to match the parameters (and FLOPs) of our 4·d GELU MLP. The second size has 4x
the parameters per block (twice the width). ``--compile`` adds both models under ``torch.compile``.

    python benchmarks/lm_throughput.py [--device cpu|cuda] [--d-models 256 512] [--rounds 5] [--compile]

Prints one JSON object with the figures, the ratios (ours / Hugging Face; soft-capped / fused attention)
and their targets, and each model's FLOP utilisation (MFU: model FLOPs per second, counted from the shapes by
:mod:`fmrecipes.core.flops`, over the machine's peak GEMM rate at these shapes in the run's precision, measured in
the same run by :mod:`machine_peak`).
"""

from __future__ import annotations

import json
import math
import statistics
import time

import torch
from machine_peak import peak
from shape_args import shape_parser
from timing import significant

from fmrecipes.core.causal_lm import lm_loss
from fmrecipes.core.flops import train_flops_per_token, utilisation
from fmrecipes.core.gpt import GPT, GPTConfig

TARGETS = {"ours_vs_hf_llama": 1.2, "softcap50_vs_fused_sdpa": 0.95}
MFU_TARGET = 0.6  # of the measured peak, on CPU (issue 32)


def llama(args, d: int) -> torch.nn.Module:
    from fmrecipes.core.hf import llama_like

    return llama_like(shape(args, d))


def ours(args, d: int, **switches) -> torch.nn.Module:
    import dataclasses

    return GPT(dataclasses.replace(shape(args, d), **switches))


def step_fn(model: torch.nn.Module, device: torch.device, bf16: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = lm_loss(model, (x, y))
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


def shape(args, d: int) -> GPTConfig:
    return GPTConfig(vocab_size=args.vocab, seq_len=args.seq_len, n_layer=args.n_layer, n_head=args.n_head,
                     d_model=d, tie_embeddings=False)


def measure(args, d: int, device: torch.device, bf16: bool) -> dict:
    torch.manual_seed(0)
    models = {"fmrecipes_gpt": ours(args, d), "hf_llama": llama(args, d),
              "fmrecipes_gpt_softcap50": ours(args, d, attn_logit_cap=50.0)}
    if args.compile:
        models.update({"fmrecipes_gpt_compiled": torch.compile(ours(args, d)),
                       "hf_llama_compiled": torch.compile(llama(args, d))})
    steps = {name: step_fn(m.to(device).train(), device, bf16) for name, m in models.items()}
    x = torch.randint(0, args.vocab, (args.batch, args.seq_len), device=device)
    y = torch.randint(0, args.vocab, (args.batch, args.seq_len), device=device)
    for step in steps.values():  # warm-up (and compilation)
        time_steps(step, x, y, 2, device)
    # steps per round: enough for the slowest model's round to last --round-s, so that a round outlasts noise
    per_step = max(time_steps(step, x, y, 1, device) for step in steps.values())
    n_steps = args.steps or max(1, math.ceil(args.round_s / per_step))
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.rounds):  # rotate the order each round so no model always runs first
        for name in order[r % len(order):] + order[:r % len(order)]:
            seconds[name].append(time_steps(steps[name], x, y, n_steps, device))
    tokens = args.batch * args.seq_len * n_steps
    tps = {name: tokens / statistics.median(s) for name, s in seconds.items()}

    def ratio(a: str, b: str) -> dict:
        rounds = [sb / sa for sa, sb in zip(seconds[a], seconds[b])]
        return {"median": round(tps[a] / tps[b], 3), "rounds": [round(v, 3) for v in rounds]}

    machine = peak(d, args.vocab, args.batch * args.seq_len, device, args.peak_seconds)
    limit = machine["bf16" if bf16 else "fp32"]["peak_flops_per_s"]
    per_token = train_flops_per_token(shape(args, d))  # Llama's SwiGLU (3 x d x 8d/3) multiplies as much
    out = {"d_model": d, "steps_per_round": n_steps, "peak_flops_per_s": limit, "train_flops_per_token": per_token,
           "mfu": {k: significant(utilisation(v * per_token, limit)) for k, v in tps.items()},
           "params": {n: sum(p.numel() for p in m.parameters()) for n, m in models.items()},
           "tokens_per_s": {k: round(v, 1) for k, v in tps.items()},
           "ours_vs_hf_llama": ratio("fmrecipes_gpt", "hf_llama"),
           "softcap50_vs_fused_sdpa": ratio("fmrecipes_gpt_softcap50", "fmrecipes_gpt")}
    if args.compile:
        out["compiled_ours_vs_compiled_hf_llama"] = ratio("fmrecipes_gpt_compiled", "hf_llama_compiled")
    return out


def main() -> None:
    p = shape_parser(__doc__.splitlines()[0], seq_len=256, batch=8, rounds=5)
    p.add_argument("--steps", type=int, default=None, help="timed steps per round (default: --round-s worth)")
    p.add_argument("--round-s", type=float, default=3.0, help="seconds a round of the slowest model lasts")
    p.add_argument("--d-models", type=int, nargs="+", default=[256, 512], help="widths (the default: 1x, 4x)")
    p.add_argument("--compile", action="store_true", help="also time both models under torch.compile")
    args = p.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    sizes = [measure(args, d, device, bf16) for d in args.d_models]
    print(json.dumps({
        "benchmark": "lm_training_throughput", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "precision": "bf16 autocast" if bf16 else "fp32",
        "shape": {k: getattr(args, k) for k in ("n_layer", "n_head", "vocab", "seq_len", "batch", "rounds")},
        "targets": TARGETS, "mfu_target": MFU_TARGET, "sizes": sizes,
        "meets_targets": {k: all(s[k]["median"] >= t for s in sizes) for k, t in TARGETS.items()},
    }))


if __name__ == "__main__":
    main()
