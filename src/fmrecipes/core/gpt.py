"""A decoder-only transformer (GPT) with the stability switches of arXiv 2410.16682.

One readable file in the spirit of nanoGPT. The block is a standard pre-LN decoder
(Megatron/NeMo style, the paper's baseline, Sec. B.2 of the notes):

    h   = x + Proj(Attn(split(QKV(LN1(x)))))
    out = h + FC2(act(FC1(LN2(h))))

and each stability method is a named, combinable config field:

* ``qk_norm``: normalise queries and keys before q·kᵀ. ``qk_norm_style="per_head"`` is the
  Megatron-core / Rybakov et al. placement: a LayerNorm over ``head_dim`` applied to each head,
  after the split and before RoPE. ``qk_norm_style="olmo2"`` is OLMo-2's: an RMSNorm over the full
  projection width (all heads jointly), before the reshape into heads and before RoPE.
* ``qkv_norm``: remove LN1 and normalise the QKV projection output instead. The paper does not say
  whether that norm spans the fused QKV output or each of q, k, v separately (unverified), so
  ``qkv_norm_style`` offers ``"fused"`` (one norm over 3·d) and ``"per_tensor"`` (one norm each for
  q, k and v over d).
* ``post_proj_norm`` / ``post_fc2_norm``: a norm on the attention output projection and on FC2's
  output, before the residual add (QK_FC_norm = qk_norm + both).
* ``attn_logit_cap``: soft-capping z -> c·tanh(z/c) of the scaled attention logits, before the mask
  (c = 50 in the paper and Gemma 2). ``final_logit_cap`` caps the LM-head logits (30 in Gemma 2).

Without a cap, attention runs through ``F.scaled_dot_product_attention`` (fused kernels). With a cap,
plain causal attention runs :func:`fmrecipes.core.softcap_attention.capped_causal_attention` (flex_attention
on CUDA, a blockwise autograd function elsewhere); padding masks, a key/value cache, attention dropout and
the stability monitor's logit tracking run the explicit path, which materialises the logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .linear_cross_entropy import linear_cross_entropy
from .softcap_attention import capped_causal_attention, softcap


@dataclass
class GPTConfig:
    vocab_size: int = 4096
    seq_len: int = 128
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    bias: bool = False
    tie_embeddings: bool = True
    rope_theta: float = 10000.0
    norm_type: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_eps: float = 1e-5
    init_std: float = 0.02
    # Stability switches (arXiv 2410.16682); all off = the paper's baseline.
    qk_norm: bool = False
    qk_norm_style: Literal["per_head", "olmo2"] = "per_head"
    qkv_norm: bool = False
    qkv_norm_style: Literal["fused", "per_tensor"] = "fused"
    post_proj_norm: bool = False
    post_fc2_norm: bool = False
    attn_logit_cap: float | None = None
    final_logit_cap: float | None = None

    def validate(self) -> None:
        if self.d_model % self.n_head:
            raise ConfigError(f"model.d_model={self.d_model} must be divisible by model.n_head={self.n_head}")
        if (self.d_model // self.n_head) % 2:
            raise ConfigError(f"model head_dim={self.d_model // self.n_head} must be even for RoPE")
        for name in ("attn_logit_cap", "final_logit_cap"):
            cap = getattr(self, name)
            if cap is not None and cap <= 0:
                raise ConfigError(f"model.{name}={cap} must be positive (or null for no cap)")
        for name in ("vocab_size", "seq_len", "n_layer", "n_head", "d_model"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be positive")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


class _Fp32UnderAutocast:
    """A norm that runs in fp32 under autocast on every device, as CUDA autocast runs ``layer_norm`` (its fp32
    list); CPU autocast would keep it in bf16, so a CPU bf16 run would normalise queries and keys in bf16 where
    the paper's GPU runs do not. Outside autocast it is the plain norm; its parameters keep their names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())


class LayerNorm(_Fp32UnderAutocast, nn.LayerNorm):
    """:class:`torch.nn.LayerNorm`, fp32 under autocast."""


class RMSNorm(_Fp32UnderAutocast, nn.RMSNorm):
    """:class:`torch.nn.RMSNorm`, fp32 under autocast."""


def make_norm(kind: str, dim: int, eps: float, bias: bool) -> nn.Module:
    """LayerNorm (mean-subtracting; Megatron, ViT-22B) or RMSNorm (OLMo 2, Gemma), in fp32 under autocast."""
    if kind == "layernorm":
        return LayerNorm(dim, eps=eps, bias=bias)
    return RMSNorm(dim, eps=eps)


def rope_cache(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for rotary embeddings, half-rotation layout (as in Llama / OLMo 2)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, D) queries or keys by position."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class LayerCache:
    """One block's cached keys and values (B, H, T, D) during generation. With a ``capacity`` (the longest
    sequence it will hold), the first call allocates that much once and later positions are written in place
    (no copy of the whole cache per token); without one, each call concatenates."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self._length = 0

    @property
    def length(self) -> int:
        return self._length

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k``, ``v`` (B, H, T, D); the keys and values of every cached position so far."""
        end = self._length + k.shape[-2]
        if self.capacity is None:
            self.k = k if self.k is None else torch.cat([self.k, k], dim=-2)
            self.v = v if self.v is None else torch.cat([self.v, v], dim=-2)
            self._length = end
            return self.k, self.v
        if end > self.capacity:
            raise ValueError(f"key/value cache of capacity {self.capacity} cannot hold {end} positions")
        if self.k is None:
            self.k = k.new_empty(*k.shape[:-2], self.capacity, k.shape[-1])
            self.v = v.new_empty(*v.shape[:-2], self.capacity, v.shape[-1])
        self.k[..., self._length:end, :] = k
        self.v[..., self._length:end, :] = v
        self._length = end
        return self.k[..., :end, :], self.v[..., :end, :]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.d_model, cfg.head_dim
        self.qkv = nn.Linear(d, 3 * d, bias=cfg.bias)
        self.proj = nn.Linear(d, d, bias=cfg.bias)
        self.proj.residual_out = True  # type: ignore[attr-defined]
        norm = lambda dim, kind=cfg.norm_type: make_norm(kind, dim, cfg.norm_eps, cfg.bias)  # noqa: E731
        if cfg.qk_norm:
            dim, kind = (hd, cfg.norm_type) if cfg.qk_norm_style == "per_head" else (d, "rmsnorm")
            self.q_norm, self.k_norm = norm(dim, kind), norm(dim, kind)
        if cfg.qkv_norm:
            if cfg.qkv_norm_style == "fused":
                self.qkv_ln = norm(3 * d)
            else:
                self.q_ln, self.k_ln, self.v_ln = norm(d), norm(d), norm(d)
        self.post_proj_ln = norm(d) if cfg.post_proj_norm else None
        # Set by the stability monitor: the largest attention logit of the last forward.
        self.track_max_logit = False
        self.last_max_logit: torch.Tensor | None = None

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.cfg.n_head, self.cfg.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None = None, cache: LayerCache | None = None) -> torch.Tensor:
        """``mask`` (B, 1, T, T_keys), True = may attend, replaces the plain causal mask (left padding, or
        new tokens attending to ``cache``d keys and values of earlier positions, which it then extends)."""
        cfg = self.cfg
        B, T, C = x.shape
        qkv = self.qkv(x)
        if cfg.qkv_norm and cfg.qkv_norm_style == "fused":
            qkv = self.qkv_ln(qkv)
        q, k, v = qkv.split(C, dim=-1)
        if cfg.qkv_norm and cfg.qkv_norm_style == "per_tensor":
            q, k, v = self.q_ln(q), self.k_ln(k), self.v_ln(v)
        if cfg.qk_norm and cfg.qk_norm_style == "olmo2":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if cfg.qk_norm and cfg.qk_norm_style == "per_head":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.extend(k, v)
        dropout = cfg.dropout if self.training else 0.0
        if cache is not None and T == 1 and not self.track_max_logit:  # one decoding step: two small batched GEMMs
            y = self._explicit_attention(q, k, v, 0.0, mask)
        elif cfg.attn_logit_cap is None and not self.track_max_logit:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=mask is None)
        elif mask is None and dropout == 0.0 and not self.track_max_logit:
            y = capped_causal_attention(q, k, v, cfg.attn_logit_cap)
        else:
            y = self._explicit_attention(q, k, v, dropout, mask)
        y = self.proj(y.transpose(1, 2).reshape(B, T, C))
        return self.post_proj_ln(y) if self.post_proj_ln is not None else y

    def _explicit_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention with the logits materialised: scale, soft-cap, then mask (Gemma-2 eager order)."""
        T = q.shape[-2]
        z = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
        if self.track_max_logit:  # the raw logit, before capping: the quantity that grows when unstable
            self.last_max_logit = z.detach().amax()
        if self.cfg.attn_logit_cap is not None:
            z = softcap(z, self.cfg.attn_logit_cap)
        if mask is None:
            mask = torch.ones(T, k.shape[-2], dtype=torch.bool, device=q.device).tril()
        z = z.masked_fill(~mask, float("-inf"))
        att = torch.softmax(z.float(), dim=-1).to(q.dtype)
        att = F.dropout(att, p=dropout, training=self.training)
        return att @ v


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, hidden, bias=cfg.bias)
        self.fc2 = nn.Linear(hidden, cfg.d_model, bias=cfg.bias)
        self.fc2.residual_out = True  # type: ignore[attr-defined]
        self.post_fc2_ln = make_norm(cfg.norm_type, cfg.d_model, cfg.norm_eps, cfg.bias) if cfg.post_fc2_norm else None
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(x)))
        if self.post_fc2_ln is not None:
            y = self.post_fc2_ln(y)
        return self.dropout(y)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        # QKV_norm removes the attention pre-norm (its norm sits after the QKV projection instead).
        self.ln_1 = None if cfg.qkv_norm else make_norm(cfg.norm_type, cfg.d_model, cfg.norm_eps, cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = make_norm(cfg.norm_type, cfg.d_model, cfg.norm_eps, cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None = None, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x) if self.ln_1 is not None else x, cos, sin, mask, cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder LM: ``forward(idx) -> logits`` of shape (B, T, vocab)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = make_norm(cfg.norm_type, cfg.d_model, cfg.norm_eps, cfg.bias)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        cos, sin = rope_cache(cfg.seq_len, cfg.head_dim, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2 init: N(0, 0.02), residual-output projections scaled by 1/sqrt(2·n_layer).
        std = self.config.init_std
        if isinstance(module, nn.Linear):
            scale = 1 / math.sqrt(2 * self.config.n_layer) if getattr(module, "residual_out", False) else 1.0
            nn.init.normal_(module.weight, mean=0.0, std=std * scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def hidden(self, idx: torch.Tensor | None, pad_mask: torch.Tensor | None = None,
               cache: list[LayerCache] | None = None, embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Final-norm hidden states (B, T, d_model). ``pad_mask`` (B, T_past + T), True at real tokens, hides
        left padding from attention; RoPE is relative, so a left-padded row equals the unpadded one. With a
        ``cache`` (one :class:`LayerCache` per block) ``idx`` continues the cached positions. ``embeds``
        (B, T, d_model) replaces the token embeddings of ``idx`` (e.g. a visual prefix, ClipCap style)."""
        x = self.wte(idx) if embeds is None else embeds
        T = x.shape[1]
        past = cache[0].length if cache else 0
        if past + T > self.config.seq_len:
            raise ValueError(f"sequence of length {past + T} exceeds model.seq_len={self.config.seq_len}")
        dtype = self.wte.weight.dtype
        cos, sin = self.rope_cos[past:past + T].to(dtype), self.rope_sin[past:past + T].to(dtype)
        mask = None
        if pad_mask is not None or cache is not None:
            rows = torch.arange(past, past + T, device=x.device)[:, None]
            cols = torch.arange(past + T, device=x.device)[None, :]
            mask = (cols <= rows)[None, None]
            if pad_mask is not None:
                # A padded query row attends to itself only, so no softmax row is empty (its output is unused).
                mask = (mask & pad_mask[:, None, None, :].bool()) | (cols == rows)[None, None]
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache[i] if cache else None)
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor | None, pad_mask: torch.Tensor | None = None,
                cache: list[LayerCache] | None = None, embeds: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, vocab); with ``targets`` (B, T) the mean next-token cross-entropy instead, computed by
        :func:`fmrecipes.core.linear_cross_entropy.linear_cross_entropy` without the full logits."""
        if targets is not None:
            return linear_cross_entropy(self.hidden(idx, pad_mask, cache, embeds), self.lm_head.weight, targets,
                                        self.config.final_logit_cap)
        logits = self.lm_head(self.hidden(idx, pad_mask, cache, embeds))
        if self.config.final_logit_cap is not None:
            logits = softcap(logits, self.config.final_logit_cap)
        return logits

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, pad_mask: torch.Tensor | None = None,
                 eos_id: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample up to ``max_new_tokens`` tokens after ``idx`` (temperature 0 = greedy).

        Rows may be left-padded (``pad_mask`` False at padding). With ``eos_id``, a row that has emitted
        EOS keeps emitting EOS, and sampling stops early once every row has.
        """
        L = self.config.seq_len
        # Keys and values are cached while the whole sequence fits the context; beyond it, a sliding window.
        total = idx.shape[1] + max_new_tokens
        cache = [LayerCache(total) for _ in self.blocks] if total <= L else None
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            if cache is not None:
                h = self.hidden(idx[:, cache[0].length:], pad_mask, cache)[:, -1, :]
            else:
                window_mask = pad_mask[:, -L:] if pad_mask is not None else None
                h = self.hidden(idx[:, -L:], window_mask)[:, -1, :]
            logits = self.lm_head(h)  # the last position's only: the prompt's other logits are never read
            if self.config.final_logit_cap is not None:
                logits = softcap(logits, self.config.final_logit_cap)
            logits = logits.float()
            nxt = sample_next(logits, temperature, top_k, top_p, generator)
            if eos_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
                done |= nxt == eos_id
            idx = torch.cat([idx, nxt[:, None]], dim=1)
            if pad_mask is not None:
                pad_mask = torch.cat([pad_mask, torch.ones_like(pad_mask[:, :1])], dim=1)
            if eos_id is not None and bool(done.all()):
                break
        return idx


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from (B, V) logits: greedy at temperature 0, else temperature, top-k and nucleus
    (top-p: the smallest set of most likely tokens whose probability reaches ``top_p``) sampling.

    The draw is ``torch.multinomial``'s for one sample (argmax of p / q with q ~ Exp(1) drawn for every token from
    ``generator``): the same random numbers and so the same token, without renormalising the kept tokens'
    probabilities (the argmax does not see a row's scale) or re-checking them."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    if top_p is not None and top_p < 1.0:
        probs = probs.masked_fill(outside_nucleus(probs, top_p), 0.0)
    return (probs / exponential_like(probs, generator)).argmax(-1)


def exponential_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``torch.empty_like(x).exponential_(1, generator=generator)``, the same numbers, faster on the CPU.

    The CPU kernel draws one double uniform u per element from the generator, one after another, and stores
    -log1p(-u) rounded to ``x``'s dtype, a scalar log per element. Here the uniforms are drawn with the same
    kernel (``uniform_`` on doubles takes the same 64-bit draws) and the logs are taken vectorised. The vectorised
    log1p may differ from the scalar one in the last bit of a double, which survives rounding to float32 or below
    about once in 10^9 draws (none in 4e7 tested), so only those dtypes take this path; float64 and other devices
    call ``exponential_`` itself."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return torch.empty_like(x).exponential_(1, generator=generator)
    u = torch.empty(x.shape, dtype=torch.float64).uniform_(generator=generator)
    return u.neg_().log1p_().neg_().to(x.dtype)


NUCLEUS_CANDIDATES = 64  # tokens ranked second; a row whose nucleus is wider is sorted whole


def outside_nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(B, V) True at the tokens outside each row's nucleus: ranked by probability, a token is outside when the
    mass of the tokens before it already reaches ``top_p``. Each row is ranked as far as its nucleus needs: its
    first 8 tokens, else its first :data:`NUCLEUS_CANDIDATES`, else all (a partial sort gives the same cumulative
    sums as the full sort's prefix). A row skips a try when its largest probability shows that its first k-1
    tokens cannot reach ``top_p`` (a flat distribution), and only the rows a try leaves open go on to the next."""
    vocab = probs.shape[-1]
    inside = torch.zeros_like(probs, dtype=torch.bool)
    rows = torch.arange(probs.shape[0], device=probs.device)
    largest = probs.amax(-1)
    for k in (8, NUCLEUS_CANDIDATES, vocab):
        full = k >= vocab
        tried = rows if full else rows[(k - 1) * largest[rows] * (1 + 1e-4) >= top_p]  # the skip's bound
        if tried.numel() == 0:
            continue
        sub = probs if tried.numel() == probs.shape[0] else probs[tried]
        top, order = sub.sort(-1, descending=True) if full else sub.topk(k, dim=-1)
        before = top.cumsum(-1) - top
        ends = torch.ones_like(tried, dtype=torch.bool) if full else before[:, -1] >= top_p  # nucleus ends within k
        inside[tried[ends]] = torch.zeros_like(sub[ends], dtype=torch.bool).scatter(-1, order[ends],
                                                                                   before[ends] < top_p)
        if full:
            break
        rows = rows[~torch.isin(rows, tried[ends])]
        if rows.numel() == 0:
            break
    return ~inside
