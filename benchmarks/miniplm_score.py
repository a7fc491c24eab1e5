"""Scoring throughput (instances/s) of ``fmrecipes miniplm score`` against the public scripts' plain loop.

The baseline is what MiniPLM's ``PretrainLMInferer`` does per batch: a Hugging Face forward with an
attention mask (KV cache on, as by default) under ``torch.no_grad``, fp32 cross-entropy per token, summed
under the loss mask (positions whose input is EOS excluded) and divided by the mask's sum. Ours is
:func:`fmrecipes.miniplm.score.score` (the split forward of :mod:`fmrecipes.miniplm.scorer`, chunked and
resumable), eager and compiled, on the same model, documents (EOS between them) and batch size, in the same
process, interleaved over rounds (median). Prints one JSON object: the rates, the ratios to the plain loop
beside the target, each path's FLOP utilisation (forward model FLOPs from the shapes, :mod:`fmrecipes.core.flops`,
over the peak GEMM rate measured in the same run, :mod:`machine_peak`), the largest score difference, and with
``--profile`` the top operators of a batch of each.

    python benchmarks/miniplm_score.py [--d-model 256 --n-layer 4 --instances 1024 --batch 32 --profile]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine_peak import peak
from shape_args import shape_parser
from timing import interleaved_medians, significant

from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.core.flops import forward_flops_per_token, utilisation
from fmrecipes.core.gpt import GPTConfig
from fmrecipes.core.hf import llama_like
from fmrecipes.data.tokens import PackedDataset, TokenShard, write_shard
from fmrecipes.miniplm.score import score

EOS = 0
TARGET = 1.5
MFU_TARGET = 0.6  # of the measured peak, on CPU (issue 32)


@torch.no_grad()
def plain_loop(model, data, indices: np.ndarray, batch: int, device: torch.device) -> np.ndarray:
    out = []
    for s in range(0, len(indices), batch):
        x, y = data.batch(indices[s:s + batch])
        x, y = x.to(device), y.to(device)
        logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1), reduction="none").view(y.shape)
        mask = (x != EOS).float()  # the official collate's loss mask: no prediction from an EOS (= pad) input
        out.append(((loss * mask).sum(1) / mask.sum(1)).cpu().numpy())
    return np.concatenate(out)


def profile_of(fn, rows: int = 6) -> list[str]:
    """The ``rows`` operators with the most self CPU time over one call of ``fn``: "name ms (% of the call)"."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [f"{e.key[:60]} {e.self_cpu_time_total / 1e3:.1f} ms ({100 * e.self_cpu_time_total / total:.0f}%)"
            for e in events[:rows]]


def main() -> None:
    p = shape_parser(__doc__.splitlines()[0], seq_len=128, batch=32, rounds=5)
    p.add_argument("--instances", type=int, default=1024)
    p.add_argument("--profile", action="store_true", help="also print each path's top operators on one batch")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = GPTConfig(vocab_size=args.vocab, seq_len=args.seq_len, n_layer=args.n_layer, n_head=args.n_head,
                      d_model=args.d_model)
    model = llama_like(shape).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        docs, total = [], 0
        while total <= args.instances * args.seq_len:  # documents of seq_len/8 to 3·seq_len tokens, EOS after each
            docs.append(rng.integers(1, args.vocab, rng.integers(args.seq_len // 8 + 2, 3 * args.seq_len)).tolist())
            total += len(docs[-1]) + 1
        write_shard(Path(tmp) / "s", docs, EOS, args.vocab)
        data = PackedDataset(TokenShard(Path(tmp) / "s"), args.seq_len)
        idx = np.arange(args.instances)
        results: dict[str, np.ndarray] = {}
        rounds = iter(range(10**6))

        def ours(compiled: bool):
            env = DistEnv(device=device, run=RunConfig(progress=False, compile=compiled))
            name = "fmrecipes_compiled" if compiled else "fmrecipes_eager"

            def run() -> None:
                results[name] = score(model, data, idx, Path(tmp) / f"{name}{next(rounds)}", "bench", "bench",
                                      batch_size=args.batch, chunk=args.instances, env=env, eos_id=EOS)
            return run

        def plain() -> None:
            results["plain_hf_loop"] = plain_loop(model, data, idx, args.batch, device)

        t0 = time.perf_counter()
        ours(True)()  # the first call compiles; timed alone, before the rounds
        compile_s = time.perf_counter() - t0
        seconds = interleaved_medians({"plain_hf_loop": plain, "fmrecipes_eager": ours(False),
                                       "fmrecipes_compiled": ours(True)}, args.rounds, device)
        rate = {k: args.instances / v for k, v in seconds.items()}
        machine = peak(args.d_model, args.vocab, args.batch * args.seq_len, device, args.peak_seconds)
        limit = machine["fp32"]["peak_flops_per_s"]  # scoring runs in fp32 here (bf16 only by run.precision)
        per_instance = forward_flops_per_token(shape) * args.seq_len
        report = {
            "benchmark": "miniplm_scoring_throughput", "device": str(device), "threads": torch.get_num_threads(),
            "model": f"LlamaForCausalLM d={args.d_model} layers={args.n_layer} vocab={args.vocab}",
            "instances": args.instances, "seq_len": args.seq_len, "batch": args.batch, "rounds": args.rounds,
            "instances_per_s": {k: round(v, 1) for k, v in rate.items()},
            "ratio_eager_vs_plain_loop": round(rate["fmrecipes_eager"] / rate["plain_hf_loop"], 3),
            "ratio_compiled_vs_plain_loop": round(rate["fmrecipes_compiled"] / rate["plain_hf_loop"], 3),
            "target_ratio": TARGET,
            "peak_flops_per_s": limit, "mfu_target": MFU_TARGET,
            "mfu": {k: significant(utilisation(v * per_instance, limit)) for k, v in rate.items()},
            "first_compiled_call_s": round(compile_s, 1),
            "max_abs_score_difference": {k: float(np.abs(results[k] - results["plain_hf_loop"]).max())
                                         for k in ("fmrecipes_eager", "fmrecipes_compiled")},
            "eos_positions_skipped": int((data.batch(idx)[0] == EOS).sum()),
        }
        if args.profile:
            one = idx[:args.batch]
            report["profile_one_batch"] = {
                "plain_hf_loop": profile_of(lambda: plain_loop(model, data, one, args.batch, device)),
                "fmrecipes_compiled": profile_of(lambda: score(
                    model, data, one, Path(tmp) / "profile", "bench", "bench", batch_size=args.batch,
                    chunk=args.batch, env=DistEnv(device=device, run=RunConfig(progress=False, compile=True)),
                    eos_id=EOS)),
            }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
