"""Sampling throughput (images/s) of a one-step SIM generator against its teacher's EDM sampler.

Ours: the distilled generator, x = G(sigma_init z; sigma_init): one network evaluation per batch. Baseline: what a
user would otherwise run, the teacher's deterministic EDM Heun sampler at ``--nfe`` evaluations (35 = EDM's
CIFAR-10 setting, the paper's teacher row). Same network (a diffusers UNet2DModel under EDM preconditioning),
same batch, same device; randomly initialised weights (speed does not depend on them). Interleaved rounds,
medians; prints one JSON object, with each sampler's FLOP utilisation: its network's FLOPs per image (counted by
``torch.utils.flop_counter`` on one evaluation: convolutions and matrix multiplies) times the evaluations per image
and the images per second, over the machine's best fp32 GEMM rate measured in the same run (:mod:`machine_peak`).

    python benchmarks/sim_sampling.py [--image-size 32 --channels 16,32,64 --batch 256 --nfe 35 --rounds 3]
"""

from __future__ import annotations

import argparse
import json

import torch
from machine_peak import peak
from timing import interleaved_medians, significant

from fmrecipes.core.flops import counted_forward_flops
from fmrecipes.sim.distill import one_step
from fmrecipes.sim.edm import EDMConfig, sample_nfe
from fmrecipes.sim.nets import NetConfig
from fmrecipes.sim.teacher import build_denoiser


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", default="16,32,64", help="UNet widths per resolution")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--nfe", type=int, default=35)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--peak-seconds", type=float, default=0.5, help="timed seconds per GEMM shape (machine_peak.py)")
    args = p.parse_args()
    device = torch.device(args.device)
    edm = EDMConfig()
    net = NetConfig(kind="unet", channels=[int(c) for c in args.channels.split(",")])
    teacher = build_denoiser(net, (1, args.image_size, args.image_size), edm).to(device).eval()
    generator = build_denoiser(net, (1, args.image_size, args.image_size), edm, seed=1).to(device).eval()
    z = torch.randn(args.batch, 1, args.image_size, args.image_size, device=device)

    def ours():
        with torch.no_grad():
            one_step(generator, z, 2.5)

    def teacher_sampler():
        sample_nfe(teacher, z, args.nfe, edm)

    seconds = interleaved_medians({"one_step": ours, f"teacher_nfe{args.nfe}": teacher_sampler}, args.rounds, device)
    rate = {k: args.batch / s for k, s in seconds.items()}
    per_image = counted_forward_flops(ours) / args.batch  # one network evaluation of the batch
    evaluations = {"one_step": 1, f"teacher_nfe{args.nfe}": args.nfe}
    limit = peak(256, 4096, 2048, device, args.peak_seconds)["fp32"]["peak_flops_per_s"]
    print(json.dumps({
        "benchmark": "sim_sampling", "device": str(device), "threads": torch.get_num_threads(),
        "shape": {"image_size": args.image_size, "channels": args.channels, "batch": args.batch, "nfe": args.nfe},
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_one_step_vs_teacher": round(rate["one_step"] / rate[f"teacher_nfe{args.nfe}"], 2),
        "flops_per_evaluation_per_image": round(per_image), "peak_flops_per_s": limit,
        "mfu": {k: significant(v * evaluations[k] * per_image / limit) for k, v in rate.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
