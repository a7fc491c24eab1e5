"""The verdict rule and the aggregation over seeds (fmrecipes.claims), against hand-computed values."""

import math
from statistics import stdev

import pytest

from fmrecipes.claims import Claim, aggregate, judge, verdict

LOWER = Claim("lower_loss", "a beats b", "3.28 vs 3.35", "loss.a", "loss.b", "lower")


def test_verdict_needs_three_seeds_and_two_standard_errors():
    assert verdict([0.5, 0.6], "higher")[0] == "inconclusive"  # n < 3 never decides, however large
    assert verdict([], "higher") == ("inconclusive", None, None)
    v, mean, se = verdict([1.0, 2.0, 3.0], "higher")
    assert v == "holds" and mean == pytest.approx(2.0) and se == pytest.approx(1.0 / math.sqrt(3))
    assert verdict([1.0, 2.0, 3.0], "lower")[0] == "fails"
    # mean 0.2, se = stdev/sqrt(3) = 0.3: within 2 se of zero
    d = [-0.1, 0.2, 0.5]
    assert verdict(d, "higher") == ("inconclusive", pytest.approx(0.2), pytest.approx(stdev(d) / math.sqrt(3)))
    # just past and just short of 2 se (mean 1, se 0.5 -> 2 se = 1.0)
    assert verdict([1.0 - math.sqrt(3) * 0.5 * 1.01, 1.0, 1.0 + math.sqrt(3) * 0.5 * 1.01], "higher")[0] == \
        "inconclusive"
    assert verdict([1.0 - math.sqrt(3) * 0.5 * 0.99, 1.0, 1.0 + math.sqrt(3) * 0.5 * 0.99], "higher")[0] == "holds"
    # identical seeds: se = 0, a non-zero mean decides, a zero mean does not
    assert verdict([0.1, 0.1, 0.1], "lower")[0] == "fails"
    assert verdict([0.0, 0.0, 0.0], "lower")[0] == "inconclusive"


def test_paired_differences_use_each_seed_once_and_skip_censored_values():
    reps = {0: {"loss.a": 3.0, "loss.b": 3.5}, 1: {"loss.a": 3.1, "loss.b": 3.4}, 2: {"loss.a": 3.2, "loss.b": 3.3},
            3: {"loss.a": ">= 0.3", "loss.b": 3.0}, 4: {"loss.a": float("nan"), "loss.b": 3.0}, 5: {"loss.b": 1.0}}
    out = judge([LOWER], reps)
    assert out["claims.lower_loss.n_seeds"] == 3  # censored, NaN and missing replicates give no difference
    assert out["claims.lower_loss.mean"] == pytest.approx(-0.3)
    assert out["claims.lower_loss.std"] == pytest.approx(0.2)
    assert out["claims.lower_loss.se"] == pytest.approx(0.2 / math.sqrt(3))
    assert out["claims.lower_loss.verdict"] == "holds"
    assert out["claims.lower_loss.paper"] == "3.28 vs 3.35"
    assert out["claims.lower_loss.metric"] == "loss.a - loss.b"
    # paired: each seed's a minus its own b (a constant -0.3 here, though a and b each vary over seeds)
    flipped = judge([LOWER], {0: {"loss.a": 3.0, "loss.b": 3.3}, 1: {"loss.a": 3.1, "loss.b": 3.4},
                              2: {"loss.a": 3.2, "loss.b": 3.5}})
    assert flipped["claims.lower_loss.std"] == pytest.approx(0.0, abs=1e-12)


def test_log_ratio_and_margin():
    claim = Claim("gain", "a raises b by 1.5x", "1.5x", "lr.a", "lr.b", "higher", "log_ratio", margin=math.log(1.5))
    reps = {s: {"lr.a": 0.3 * (1 + 0.01 * s), "lr.b": 0.1} for s in range(3)}
    out = judge([claim], reps)
    expected = [math.log(0.3 * (1 + 0.01 * s) / 0.1) - math.log(1.5) for s in range(3)]
    assert out["claims.gain.mean"] == pytest.approx(sum(expected) / 3, rel=1e-5)
    assert out["claims.gain.verdict"] == "holds"  # 3x clears the claimed 1.5x
    reps = {s: {"lr.a": 0.12 + 0.001 * s, "lr.b": 0.1} for s in range(3)}
    assert judge([claim], reps)["claims.gain.verdict"] == "fails"  # 1.2x is significantly short of 1.5x
    assert claim.difference({"lr.a": 0.0, "lr.b": 0.1}) is None  # no log of a non-positive value
    assert claim.metric() == "ln(lr.a / lr.b) - 0.4055"


def test_aggregate_means_spreads_and_per_seed_values():
    reps = {0: {"x": 1.0, "n": 3, "label": "converged", "lr": 0.1, "only0": 5.0},
            1: {"x": 2.0, "n": 3, "label": "converged", "lr": ">= 0.3"},
            2: {"x": 4.0, "n": 3, "label": "converged", "lr": 0.1}}
    out = aggregate(reps)
    assert out["x"] == pytest.approx(7 / 3) and out["spread.x"] == pytest.approx(stdev([1.0, 2.0, 4.0]))
    assert out["per_seed.x"] == [1.0, 2.0, 4.0]
    assert out["n"] == 3 and out["spread.n"] == 0.0
    assert out["label"] == "converged" and "spread.label" not in out
    assert out["lr"] == "0.1 / >= 0.3 / 0.1"  # a censored seed is never averaged in
    assert out["per_seed.lr"] == [0.1, ">= 0.3", 0.1]
    assert out["only0"] == 5.0 and out["per_seed.only0"] == [5.0, None, None] and "spread.only0" not in out
    single = aggregate({7: {"x": 1.5}})
    assert single == {"x": 1.5, "per_seed.x": [1.5]}  # one seed: no spread


def test_a_claim_whose_ceiling_does_not_clear_its_floor_is_not_testable():
    claim = Claim("seg", "a beats b", "75.9 vs 64.4", "miou.a", "miou.b", "higher",
                  testable_if=("miou.ceiling", "miou.floor", 10.0))
    reps = {s: {"miou.a": 12.0 + s, "miou.b": 8.0, "miou.ceiling": 30.0, "miou.floor": 8.0} for s in range(3)}
    assert judge([claim], reps)["claims.seg.verdict"] == "holds"  # the ceiling clears the floor by 22
    low = {s: {**r, "miou.ceiling": 8.0 + 9.0 + 0.5 * s} for s, r in reps.items()}  # mean gap 9.5 < 10
    out = judge([claim], low)
    assert out["claims.seg.verdict"] == "not testable" and out["claims.seg.mean"] == pytest.approx(5.0)
    edge = {s: {**r, "miou.ceiling": 18.0} for s, r in reps.items()}  # a gap of exactly 10 is enough
    assert judge([claim], edge)["claims.seg.verdict"] == "holds"
    unmeasured = {s: {k: v for k, v in r.items() if k != "miou.ceiling"} for s, r in reps.items()}
    assert judge([claim], unmeasured)["claims.seg.verdict"] == "holds"  # no ceiling run: judged as usual
