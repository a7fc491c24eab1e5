"""The machine's own limit: the largest sustained GEMM FLOP/s, in fp32 and in bf16, at the matrix shapes a GPT
of the benchmarks' size multiplies (its QKV/projection, MLP and LM-head GEMMs, forward and as the backward's
transposes), and the memory bandwidth of a large copy (the bound of memory-bound steps such as sampling with a KV
cache). The other benchmarks call :func:`peak` in the same run, so their model FLOP utilisation (MFU) is against
what this machine did then.

    python benchmarks/machine_peak.py [--device cpu|cuda] [--d-model 256] [--vocab 4096] [--tokens 2048]

Prints one JSON object: per dtype the FLOP/s of each shape and the best, and the copy bandwidth in bytes/s.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def gpt_shapes(d_model: int, vocab: int, tokens: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the GEMMs a GPT of width ``d_model`` runs over ``tokens`` tokens: QKV, projection, MLP up and
    down, LM head, and the weight gradient's (d, tokens) x (tokens, 4d)."""
    d = d_model
    return [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, 4 * d), (tokens, 4 * d, d), (tokens, d, vocab),
            (d, tokens, 4 * d)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_flops_per_s(m: int, k: int, n: int, dtype: torch.dtype, device: torch.device, seconds: float) -> float:
    """Sustained FLOP/s (2·m·k·n per product) of repeated ``(m, k) @ (k, n)`` for about ``seconds``, after a
    warm-up; the best of three timed stretches."""
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b, out=out)
    _sync(device)
    t0 = time.perf_counter()
    torch.matmul(a, b, out=out)
    _sync(device)
    reps = max(1, int(seconds / 3 / max(time.perf_counter() - t0, 1e-6)))
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        _sync(device)
        best = max(best, 2.0 * m * k * n * reps / (time.perf_counter() - t0))
    return best


def copy_bandwidth(device: torch.device, mib: int = 256, reps: int = 5) -> float:
    """Bytes/s of a large tensor copy (read + write), the best of ``reps``."""
    src = torch.ones(mib * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = 0.0
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = max(best, 2 * src.numel() * 4 / (time.perf_counter() - t0))
    return best


def peak(d_model: int, vocab: int, tokens: int, device: torch.device, seconds: float = 0.5) -> dict:
    """Per dtype: each GPT shape's FLOP/s and the best (``peak_flops_per_s``); the copy bandwidth."""
    out: dict = {"device": str(device), "threads": torch.get_num_threads(),
                 "shapes": [list(s) for s in gpt_shapes(d_model, vocab, tokens)]}
    for name, dtype in DTYPES.items():
        rates = [gemm_flops_per_s(m, k, n, dtype, device, seconds) for m, k, n in gpt_shapes(d_model, vocab, tokens)]
        out[name] = {"flops_per_s": [round(r) for r in rates], "peak_flops_per_s": round(max(rates))}
    out["bf16_vs_fp32_peak"] = round(out["bf16"]["peak_flops_per_s"] / out["fp32"]["peak_flops_per_s"], 3)
    out["copy_bytes_per_s"] = round(copy_bandwidth(device))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--seconds", type=float, default=0.5, help="timed seconds per shape and dtype")
    args = p.parse_args()
    print(json.dumps({"benchmark": "machine_peak",
                      **peak(args.d_model, args.vocab, args.tokens, torch.device(args.device), args.seconds)}))


if __name__ == "__main__":
    main()
