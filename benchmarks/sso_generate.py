"""On-policy sampling throughput (tokens/s) of SSO's generator against Hugging Face ``generate``.

Ours: :func:`fmrecipes.core.generation.sample_batch` on the core GPT (left-padded batch, key/value cache,
temperature 0.7, top-p 0.8). Baseline: ``LlamaForCausalLM.generate`` with the same width, depth, heads and
vocabulary, the same left-padded prompts, sampling settings and number of new tokens (neither stops early: both
decode ``--new-tokens`` steps), with its own cache, as a user would sample with TRL or by hand. Also
reported: our GPT recomputing every prefix (no cache), to show what the cache buys. Interleaved rounds,
medians; prints one JSON object.

A freshly initialised model's next-token distribution is nearly flat, so its top-p nucleus holds most of the
vocabulary; a trained policy's holds a few tokens. The benchmark times both: as initialised (``flat``) and with
both models' LM heads scaled by ``--peaked-scale`` (``peaked``; the same scale for both), and reports each
setting's mean nucleus size beside its ratio. ``bandwidth_utilisation``: the bytes the cached decoding steps must
read (weights and the cached keys and values, fp32) per second, over a large copy's bandwidth in the same run.

    python benchmarks/sso_generate.py [--d-model 96 --n-layer 3 --batch 128 --prompt-len 80 --new-tokens 48]
"""

from __future__ import annotations

import json

import torch
from machine_peak import copy_bandwidth
from shape_args import shape_parser
from timing import interleaved_medians, significant

from fmrecipes.core.generation import left_pad, sample_batch
from fmrecipes.core.gpt import GPT, GPTConfig, outside_nucleus, sample_next
from fmrecipes.core.hf import llama_like


def main() -> None:
    p = shape_parser(__doc__.splitlines()[0], seq_len=160, batch=128, rounds=3)
    p.set_defaults(d_model=96, n_layer=3, vocab=1024)
    p.add_argument("--prompt-len", type=int, default=80)
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--peaked-scale", type=float, default=8.5,
                   help="LM-head scale of the peaked setting: a nucleus of a few tokens at the first step, wider "
                        "at some, as the SSO quick preset's SFT policy's")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=args.vocab, seq_len=args.seq_len, n_layer=args.n_layer, n_head=args.n_head,
                    d_model=args.d_model)
    gpt, llama = GPT(cfg).to(device).eval(), llama_like(cfg).to(device).eval()
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(args.prompt_len // 2, args.prompt_len + 1, (args.batch,), generator=g).tolist()
    prompts = [torch.randint(1, args.vocab, (n,), generator=g).tolist() for n in lengths]
    def ours():  # EOS (id 0) ends a row only when all rows have ended: effectively every step runs
        sample_batch(gpt, prompts, 0, args.new_tokens, 0.7, 0.8, seed=0)

    def recompute():
        ids, mask = left_pad(prompts, 0)
        with torch.no_grad():
            for _ in range(args.new_tokens):
                nxt = gpt(ids.to(device), mask.to(device))[:, -1].argmax(-1, keepdim=True).cpu()
                ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt, dtype=torch.bool)], 1)

    def hf():
        ids, mask = left_pad(prompts, 0)
        with torch.no_grad():
            llama.generate(input_ids=ids.to(device), attention_mask=mask.long().to(device), do_sample=True,
                           temperature=0.7, top_p=0.8, max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, pad_token_id=0, eos_token_id=None)

    def last_logits() -> torch.Tensor:
        ids, mask = left_pad(prompts, 0)
        with torch.no_grad():
            return gpt(ids.to(device), mask.to(device))[:, -1].float()

    def nucleus() -> float:
        probs = torch.softmax(last_logits() / 0.7, -1)
        return round((~outside_nucleus(probs, 0.8)).sum(-1).float().mean().item(), 1)

    def sampling_share(decode_s: float) -> float:
        """The share of our decoding time spent choosing tokens from the logits (softmax, nucleus sort, the
        exponential draw of torch.multinomial: the work Hugging Face's sampler also does), by timing
        :func:`sample_next` alone on the batch's logits once per decoded token."""
        logits, g = last_logits(), torch.Generator(device).manual_seed(0)
        seconds = interleaved_medians({"draw": lambda: [sample_next(logits, 0.7, None, 0.8, g)
                                                        for _ in range(args.new_tokens)]}, args.rounds, device)
        return significant(seconds["draw"] / decode_s)

    runs = {"fmrecipes_kv_cache": ours, "hf_llama_generate": hf, "fmrecipes_recompute": recompute}
    seconds = interleaved_medians(runs, args.rounds, device)
    tokens = args.batch * args.new_tokens
    rate = {k: tokens / s for k, s in seconds.items()}
    flat_nucleus, flat_sampling = nucleus(), sampling_share(seconds["fmrecipes_kv_cache"])
    # the memory the cached decoding steps must read (the weights, the keys and values cached so far) per second,
    # over the copy bandwidth measured in this run: how far the memory-bound part is from its limit
    weights = sum(p.numel() * p.element_size() for p in {id(p): p for p in gpt.parameters()}.values())
    kv_row = 2 * args.n_layer * args.d_model * 4  # keys and values of one position, fp32
    context = sum(lengths) / len(lengths)
    read = sum(weights + args.batch * kv_row * (context + t) for t in range(args.new_tokens))
    bandwidth = read / seconds["fmrecipes_kv_cache"]
    with torch.no_grad():
        for head in (gpt.lm_head, llama.get_output_embeddings()):  # a new weight: the tied input embedding stays
            head.weight = torch.nn.Parameter(head.weight * args.peaked_scale)
    peaked = interleaved_medians({"fmrecipes_kv_cache": ours, "hf_llama_generate": hf}, args.rounds, device)
    print(json.dumps({
        "benchmark": "sso_generate", "device": str(device), "threads": torch.get_num_threads(),
        "shape": {"d_model": args.d_model, "n_layer": args.n_layer, "vocab": args.vocab, "batch": args.batch,
                  "prompt_len_max": args.prompt_len, "new_tokens": args.new_tokens},
        "tokens_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_vs_hf_generate": round(rate["fmrecipes_kv_cache"] / rate["hf_llama_generate"], 3),
        "ratio_cache_vs_recompute": round(rate["fmrecipes_kv_cache"] / rate["fmrecipes_recompute"], 3),
        "mean_nucleus_tokens": flat_nucleus,
        "sampling_share": flat_sampling,
        "decode_bytes_per_s": round(bandwidth),
        "bandwidth_utilisation": significant(bandwidth / copy_bandwidth(device)),
        "peaked": {"head_scale": args.peaked_scale, "mean_nucleus_tokens": nucleus(),
                   "sampling_share": sampling_share(peaked["fmrecipes_kv_cache"]),
                   "tokens_per_s": {k: round(tokens / v, 1) for k, v in peaked.items()},
                   "ratio_vs_hf_generate": round(peaked["hf_llama_generate"] / peaked["fmrecipes_kv_cache"], 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
