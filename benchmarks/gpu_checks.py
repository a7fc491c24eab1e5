"""The GPU path, checked on a CUDA device (``benchmarks/gpu.sh`` runs it first): prints one JSON object of named
checks and exits 1 if any fails.

- ``run.precision=auto`` trains in bf16 autocast on the GPU (the loss's logits come out in bf16);
- causal attention of the GPT runs SDPA's flash or memory-efficient kernel (kernel names in the profile), never
  the math fallback, with and without a padding mask;
- soft-capped attention runs flex_attention (cap as score_mod) and matches the explicit path, forward and
  backward, in fp32 and bf16;
- ``torch.compile`` works for the scoring forward and the training loss (no eager fallback taken).
"""

from __future__ import annotations

import json
import sys

import torch

from fmrecipes.core import dist
from fmrecipes.core.causal_lm import lm_loss
from fmrecipes.core.compile import Compiled, maybe_compile
from fmrecipes.core.gpt import GPT, CausalSelfAttention, GPTConfig
from fmrecipes.core.softcap_attention import capped_causal_attention


def kernels(fn) -> list[str]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [e.key for e in prof.key_averages()]


def main() -> int:
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 1
    dev = torch.device("cuda")
    checks: dict[str, object] = {"device_name": torch.cuda.get_device_name(dev)}
    env = dist.setup(dist.RunConfig(device="cuda", precision="auto", progress=False))
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=4096, seq_len=512, n_layer=2, n_head=8, d_model=512)
    model = GPT(cfg).to(dev)
    x = torch.randint(0, 4096, (8, 512), device=dev)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=env.bf16):
        logits = model(x)
    checks["precision_auto_is_bf16_autocast"] = env.bf16 and logits.dtype == torch.bfloat16

    def step(pad: bool):
        def run():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                mask = torch.ones_like(x, dtype=torch.bool) if pad else None
                model(x, pad_mask=mask).float().sum().backward()
        return run

    for name, pad in (("sdpa_causal", False), ("sdpa_padding_mask", True)):
        names = " ".join(kernels(step(pad))).lower()
        fused = any(k in names for k in ("flash", "fmha", "efficient", "cutlass"))
        checks[f"{name}_uses_flash_or_mem_efficient"] = fused and "math" not in names

    attn = CausalSelfAttention(GPTConfig(d_model=512, n_head=8, attn_logit_cap=50.0)).to(dev)
    for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 3e-2)):
        q, k, v = ((torch.randn(4, 8, 512, 64, device=dev) * 6).to(dtype).requires_grad_() for _ in range(3))
        out = capped_causal_attention(q, k, v, 50.0)
        grads = torch.autograd.grad(out.float().square().sum(), (q, k, v))
        ref = attn._explicit_attention(q, k, v, 0.0)
        ref_grads = torch.autograd.grad(ref.float().square().sum(), (q, k, v))
        err = max([(out.float() - ref.float()).abs().max().item()]
                  + [((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item() for a, b in zip(grads, ref_grads)])
        checks[f"flex_softcap_matches_explicit_{str(dtype)[6:]}"] = err < tol
        checks[f"flex_softcap_max_error_{str(dtype)[6:]}"] = err

    loss = maybe_compile(lm_loss, True, dev, "the training loss")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        value = loss(model, (x, x))
    value.backward()
    checks["torch_compile_training_loss"] = isinstance(loss, Compiled) and loss.compiled and bool(torch.isfinite(value))

    from fmrecipes.miniplm.score import Scorer

    scorer = Scorer(model.eval(), dev, None, batch_size=8, compile=True, bf16=True)
    scores = scorer(x.cpu(), x.cpu())
    checks["torch_compile_scoring_forward"] = isinstance(scorer.forward, Compiled) and scorer.forward.compiled \
        and bool(torch.isfinite(torch.from_numpy(scores)).all())
    ok = all(v for k, v in checks.items() if not k.startswith(("device_name", "flex_softcap_max_error")))
    checks["all_pass"] = ok
    print(json.dumps(checks, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
