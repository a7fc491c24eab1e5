"""Command-line arguments shared by the benchmarks: device and model shape."""

from __future__ import annotations

import argparse

import torch


def shape_parser(description: str, seq_len: int, batch: int, rounds: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--seq-len", type=int, default=seq_len)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--peak-seconds", type=float, default=0.5,
                   help="timed seconds per shape and dtype of the machine's peak GEMM rate (machine_peak.py)")
    return p
