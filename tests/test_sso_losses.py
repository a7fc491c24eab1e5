"""SSO losses: DPO/IPO against TRL's DPOTrainer, W and each SSO term against hand-computed values, and
gradients flowing exactly as the options say."""

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from fmrecipes.sso.losses import (
    SEQUENCES,
    LossConfig,
    dpo_loss,
    generator_loss,
    ipo_loss,
    pair_loss,
    sso_loss,
    steering_weight,
)

sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731


def trl_loss(loss_type: str, beta: float, chosen_tok: torch.Tensor, rejected_tok: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor) -> float:
    """TRL 1.x DPOTrainer._compute_loss on given per-token log-probs (0 where masked), with precomputed
    reference log-probs: the library's own loss code, fed by a stub model."""
    from trl.trainer.dpo_trainer import DPOTrainer

    per_token = torch.cat([chosen_tok, rejected_tok])  # (2B, T-1), batch is [chosen, rejected]
    completion = torch.cat([torch.zeros(per_token.shape[0], 1), (per_token != 0).float()], dim=1)
    B2, T1 = per_token.shape
    outputs = SimpleNamespace(log_probs=per_token, entropy=torch.zeros(B2, T1), mean_logits=torch.zeros(B2, T1),
                              is_top1=torch.zeros(B2, T1, dtype=torch.bool))
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device="cpu", gather_for_metrics=lambda t: t, gather=lambda t: t),
        aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl",
        loss_types=[loss_type], loss_weights=[1.0], beta=beta, use_weighting=False,
        _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.zeros(B2, T1 + 1, dtype=torch.long), "attention_mask": torch.ones(B2, T1 + 1),
              "completion_mask": completion, "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
    return float(DPOTrainer._compute_loss(stub, lambda **kw: outputs, inputs, False))


def _example(B=4, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, T + 1, (2, B), generator=g)
    tok = -torch.rand(2, B, T, generator=g) * 3
    mask = torch.arange(T)[None, None] < lengths[..., None]
    tok = tok * mask
    return tok[0], tok[1], lengths[0], lengths[1], -torch.rand(B, generator=g) * 20, -torch.rand(B, generator=g) * 20


def test_dpo_and_ipo_equal_trl():
    ct, rt, lc, lr, ref_c, ref_r = _example()
    ours_dpo = dpo_loss(ct.sum(1), rt.sum(1), ref_c, ref_r, beta=0.1).mean()
    assert float(ours_dpo) == pytest.approx(trl_loss("sigmoid", 0.1, ct, rt, ref_c, ref_r), rel=1e-6)
    ours_ipo = ipo_loss(ct.sum(1), rt.sum(1), ref_c, ref_r, lc, lr, beta=0.2).mean()
    assert float(ours_ipo) == pytest.approx(trl_loss("ipo", 0.2, ct, rt, ref_c, ref_r), rel=1e-6)


def test_dpo_and_ipo_hand_values():
    # h = (-10 - -12) - (-14 - -13) = 3 ; DPO = -log sigmoid(0.1 * 3)
    t = lambda v: torch.tensor([v])  # noqa: E731
    assert float(dpo_loss(t(-10.), t(-14.), t(-12.), t(-13.), 0.1)) == pytest.approx(-math.log(sig(0.3)))
    # IPO with lengths 5 and 2: h = 2/5 - (-1)/2 = 0.9 ; (0.9 - 1/(2·0.2))² = (0.9 - 2.5)²
    assert float(ipo_loss(t(-10.), t(-14.), t(-12.), t(-13.), t(5), t(2), 0.2)) == pytest.approx(1.6 ** 2)


def _six(values):
    return {s: torch.tensor([float(v)], requires_grad=True) for s, v in zip(SEQUENCES, values)}


POL = [-8, -12, -6, -14, -9, -11]   # x,y+  x,y-  x+,y+  x+,y-  x-,y0  x-,y+
REF = [-9, -11, -7, -13, -10, -10]
LEN = [4, 6, 4, 6, 5, 4]


def _hand(beta=0.2, theta=0.1, alpha=0.66):
    a = [p / n for p, n in zip(POL, LEN)]
    ipo = lambda c, r: ((POL[c] - REF[c]) / LEN[c] - (POL[r] - REF[r]) / LEN[r] - 1 / (2 * beta)) ** 2  # noqa: E731
    base, g = ipo(0, 1), ipo(2, 3) + ipo(4, 5)
    w = sig(-(alpha * a[0] + (1 - alpha) * a[1]))
    return base, g, w


def test_steering_weight_and_sso_loss_hand_values():
    base, g, w = _hand()
    lengths = {s: torch.tensor([n]) for s, n in zip(SEQUENCES, LEN)}
    ref = {s: torch.tensor([float(v)]) for s, v in zip(SEQUENCES, REF)}
    W = steering_weight(torch.tensor(-8 / 4), torch.tensor(-12 / 6), 0.66)
    assert float(W) == pytest.approx(w) and 0.5 < float(W) < 1
    cases = [(LossConfig(), base + w * 0.1 * g),
             (LossConfig(w_scope="all"), w * base + w * 0.1 * g),
             (LossConfig(weight=False), base + 0.1 * g),
             (LossConfig(steering=False), w * base),  # the official code's W_function without G_function
             (LossConfig(steering=False, weight=False), base)]
    for cfg, expected in cases:
        loss, metrics = sso_loss(cfg, _six(POL), ref, lengths)
        assert loss.item() == pytest.approx(expected, rel=1e-6), cfg
    _, metrics = sso_loss(LossConfig(), _six(POL), ref, lengths)
    assert float(metrics["W"]) == pytest.approx(w) and float(metrics["G"]) == pytest.approx(g)
    assert float(metrics["n_rewards/margins"]) == pytest.approx(0.2 * ((-9 + 10) - (-11 + 10)))
    # DPO base and the pref_ftx SFT term
    loss, _ = sso_loss(LossConfig(base="dpo", weight=False), _six(POL), ref, lengths)
    dpo = lambda c, r: -math.log(sig(0.1 * ((POL[c] - REF[c]) - (POL[r] - REF[r]))))  # noqa: E731
    assert loss.item() == pytest.approx(dpo(0, 1) + 0.1 * (dpo(2, 3) + dpo(4, 5)), rel=1e-6)
    loss, _ = sso_loss(LossConfig(sft_weight=0.5), _six(POL), ref, lengths)
    sft = -(-8 / 4) - 0.1 * ((-6 / 4) + (-9 / 5))
    assert loss.item() == pytest.approx(base + w * 0.1 * g + 0.5 * sft, rel=1e-6)


def test_generator_loss_hand_value():
    beta = 0.2
    ipo = lambda c, r: ((POL[c] - REF[c]) / LEN[c] - (POL[r] - REF[r]) / LEN[r] - 1 / (2 * beta)) ** 2  # noqa: E731
    lengths = {s: torch.tensor([n]) for s, n in zip(SEQUENCES, LEN)}
    ref = {s: torch.tensor([float(v)]) for s, v in zip(SEQUENCES, REF)}
    loss, _ = generator_loss(LossConfig(variant="v2"), _six(POL), ref, lengths)
    expected = ipo(2, 3) + 0.1 * (6 / 4) + ipo(4, 5) + 0.1 * (9 / 5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("detach_w", [False, True])
def test_w_gradient_follows_detach_option(detach_w):
    """d loss / d s(y+|x): through L_base always, and through W (times θ·G) only when W is not detached;
    checked against central finite differences of the closed form."""
    lengths = {s: torch.tensor([n]) for s, n in zip(SEQUENCES, LEN)}
    ref = {s: torch.tensor([float(v)]) for s, v in zip(SEQUENCES, REF)}
    pol = _six(POL)
    loss, _ = sso_loss(LossConfig(detach_w=detach_w), pol, ref, lengths)
    loss.backward()

    def closed(s_plus_x, w_input):
        beta, a0 = 0.2, w_input / 4
        base = ((s_plus_x - REF[0]) / 4 - (POL[1] - REF[1]) / 6 - 1 / (2 * beta)) ** 2
        _, g, _ = _hand()
        w = sig(-(0.66 * a0 + 0.34 * (-12 / 6)))
        return base + w * 0.1 * g

    eps = 1e-3
    if detach_w:  # W held at its value: only the base term moves
        fd = (closed(-8 + eps, -8) - closed(-8 - eps, -8)) / (2 * eps)
    else:
        fd = (closed(-8 + eps, -8 + eps) - closed(-8 - eps, -8 - eps)) / (2 * eps)
    assert float(pol["x,y+"].grad) == pytest.approx(fd, rel=1e-4)
    # s(y+|x+) only enters G: its gradient is W·θ·dG either way
    assert float(pol["x+,y+"].grad) != 0.0


def test_baselines_read_only_the_main_pair():
    assert LossConfig(steering=False, weight=False).sequences() == ("x,y+", "x,y-")
    assert LossConfig().sequences() == SEQUENCES
    lengths = {s: torch.tensor([n]) for s, n in zip(SEQUENCES[:2], LEN)}
    ref = {s: torch.tensor([float(v)]) for s, v in zip(SEQUENCES[:2], REF)}
    pol = {s: torch.tensor([float(v)]) for s, v in zip(SEQUENCES[:2], POL)}
    assert float(pair_loss(LossConfig(), pol, ref, lengths, "x,y+", "x,y-")) == pytest.approx(_hand()[0])
