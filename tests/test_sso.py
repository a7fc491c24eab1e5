"""SSO library pieces: principles, the synthetic world's judge, chat formatting, generation (determinism,
resume, TRL export), reward models (BT, RRM), iterative training and the smoke experiment."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from fmrecipes.config import load
from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.errors import ConfigError, FmError
from fmrecipes.presets import preset_path
from fmrecipes.sso.chat import lm_rows, prompt_ids, sequence_logps
from fmrecipes.sso.config import SSOConfig
from fmrecipes.sso.generate import generate_triples
from fmrecipes.sso.principles import load_principles, pick_features, system_prompt
from fmrecipes.sso.reward import Comparison, bt_loss, rrm_candidates
from fmrecipes.sso.world import AssistantWorld

QUIET = DistEnv(run=RunConfig(progress=False))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke config and its SFT policy (tokenizer + weights), trained once for the module."""
    from fmrecipes.sso.sft import sft_policy

    out = tmp_path_factory.mktemp("sso")
    cfg = load(SSOConfig, preset_path("sso", "smoke"), [f"out={out}", "run.device=cpu"])
    world = AssistantWorld(seed=cfg.seed)
    return cfg, world, sft_policy(cfg, world, out / "sft")


def test_principles_yaml_errors_name_the_feature(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("Safety: {good_adjective: Safe, bad_adjective: Unsafe, good: be safe}\n")
    with pytest.raises(ConfigError, match=r"feature 'Safety' lacks bad"):
        load_principles(p)
    p.write_text("")
    with pytest.raises(ConfigError, match="non-empty mapping"):
        load_principles(p)
    p.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="principles file .* must hold a mapping"):
        load_principles(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_principles(tmp_path / "missing.yaml")


def test_system_prompts_follow_the_official_template():
    w = AssistantWorld()
    feats = [w.features["Accuracy"], w.features["Engagement"]]
    plus, minus = system_prompt(feats, True), system_prompt(feats, False)
    assert plus.startswith("Your response should be Accurate and Engaging. Following these detailed guidelines:\n"
                           "Accuracy: Give the correct answer")
    assert "\n\nEngagement: Open with a warm" in plus and plus.endswith("when generating responses.")
    assert minus.startswith("Your response should be Inaccurate and Dull.") and "wrong answer" in minus


def test_pick_features_two_plus_concision_at_its_rate():
    rng = np.random.default_rng(0)
    picks = [pick_features(["Accuracy", "Logicality", "Engagement", "Concision"], rng) for _ in range(4000)]
    assert all(len(set(p[:2])) == 2 and "Concision" not in p[:2] for p in picks)
    assert np.mean(["Concision" in p for p in picks]) == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize("kind", ["arithmetic", "lookup", "harmful"])
def test_judge_scores_built_responses_exactly(kind):
    w = AssistantWorld()
    q = next(q for q in w.queries("train") if q.kind == kind)
    rng = np.random.default_rng(1)
    feats = w.applicable(q)
    good = w.respond(q, {f: True for f in feats}, rng)
    bad = w.respond(q, {f: False for f in feats}, rng)
    assert w.judge(q, good) == {f: 1.0 for f in feats}
    assert w.judge(q, bad) == {f: 0.0 for f in feats}
    assert w.judge(q, "") == {f: float(f == "Concision") for f in feats}


def test_world_splits_by_fact_and_are_deterministic():
    """No evaluation query asks about a fact (a sum's pair of numbers, a country, a harmful request's target) that
    a training query asks about; several hundred distinct evaluation queries, every kind in both splits."""
    a, b = AssistantWorld(seed=3), AssistantWorld(seed=3)
    assert [q.text for q in a.queries("eval")] == [q.text for q in b.queries("eval")]
    train, held = a.queries("train"), a.queries("eval")
    assert not {q.fact for q in held} & {q.fact for q in train}
    assert not {q.subject for q in held if q.kind == "lookup"} & {q.subject for q in train if q.kind == "lookup"}
    targets = lambda qs: {q.fact for q in qs if q.kind == "harmful"}  # noqa: E731
    assert targets(held) and targets(train) and not targets(held) & targets(train)
    assert len({q.text for q in held}) == len(held) >= 300 and {q.kind for q in held} == {q.kind for q in train}
    assert all(q.fact for q in train + held)
    assert [q.text for q in AssistantWorld(seed=4).queries("eval")] != [q.text for q in held]  # a split per seed


def test_each_iteration_has_its_own_queries_and_a_small_pool_is_an_error():
    from fmrecipes.sso.iterate import iteration_queries

    train = AssistantWorld().queries("train")
    slices = [iteration_queries(train, 500, k, seed=0) for k in (1, 2, 3)]
    texts = [q.text for s in slices for q in s]
    assert len(texts) == len(set(texts)) == 1500
    assert iteration_queries(train, 500, 2, seed=0) == slices[1]  # deterministic
    with pytest.raises(ConfigError, match="iteration 4 needs 2000 distinct training queries but the task has"):
        iteration_queries(train, 500, 4, seed=0)


def test_run_refuses_more_eval_or_iteration_queries_than_the_world_holds(tmp_path):
    for override, msg in (("eval_queries=5000", "eval_queries=5000: the world holds out only"),
                          ("queries_per_iteration=1000", "needs 2000 distinct training queries")):
        r = run_cli("sso", "run", "--config", str(preset_path("sso", "smoke")), override, "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "o" / "seed0" / "sft").exists()  # refused before any training


def _gold(world, query, text):
    return np.mean(list(world.judge(query, text).values()))


def test_gold_baseline_trains_on_off_policy_annotated_pairs(smoke, tmp_path):
    """The gold method's data: for the iteration's own queries, the annotated pairs drawn once (not by the policy:
    the same whichever policy and iteration asks), without principles; its label agreement is recorded."""
    import dataclasses

    from fmrecipes.sso.evaluate import annotated_pairs
    from fmrecipes.sso.iterate import iteration_queries, run_iterations
    from fmrecipes.sso.sft import load_policy

    cfg, world, start = smoke
    _, tok = load_policy(start)
    cfg = dataclasses.replace(cfg, iterations=1, gold_label_noise=0.0)
    run_iterations(cfg, "gold", world, tok, start, tmp_path, QUIET)
    records = json.loads((tmp_path / "iter1" / "data" / "gold_pairs.json").read_text())
    qs = iteration_queries(world.queries("train"), cfg.queries_per_iteration, 1, cfg.seed)
    by_text = {q.text: q for q in qs}
    assert records and all(r["system"] == "" and r["instruction"] in by_text for r in records)
    assert all(_gold(world, by_text[r["instruction"]], r["chosen"]) > _gold(world, by_text[r["instruction"]],
                                                                           r["rejected"]) for r in records)
    again = annotated_pairs(world, qs, 0.0, cfg.seed)  # no policy involved: the same pairs
    assert [(c.query, c.first, c.second) for c in again] == [(r["instruction"], r["chosen"], r["rejected"])
                                                             for r in records]
    assert json.loads((tmp_path / "iter1" / "label_agreement.json").read_text())["agree"] == 1.0
    assert not (tmp_path / "iter1" / "data" / "triples.jsonl").exists()  # no principle-steered data


def test_annotator_flips_the_judge_at_its_noise_rate():
    from fmrecipes.sso.evaluate import annotated_pairs
    from fmrecipes.sso.world import AssistantWorld

    world = AssistantWorld(seed=0)
    qs = world.queries("train")[:1500]
    by_text = {q.text: q for q in qs}
    for noise in (0.0, 0.25):
        pairs = annotated_pairs(world, qs, noise, seed=3)
        flipped = np.mean([_gold(world, by_text[c.query], c.first) < _gold(world, by_text[c.query], c.second)
                           for c in pairs])
        assert len(pairs) > 800 and abs(flipped - noise) < 0.04, (noise, flipped)
    assert annotated_pairs(world, qs[:50], 0.25, 3) == annotated_pairs(world, qs[:50], 0.25, 3)  # drawn once


def test_reward_test_pairs_differ_in_exactly_one_feature():
    """The independent RM test set: per feature, the first response has it and the second lacks it, every other
    feature the same (RewardBench-style categories)."""
    from fmrecipes.sso.evaluate import feature_contrasts
    from fmrecipes.sso.world import AssistantWorld

    world = AssistantWorld(seed=1)
    qs = world.queries("eval")[:60]
    by_text = {q.text: q for q in qs}
    tests = feature_contrasts(world, qs, seed=0)
    assert set(tests) == {"Accuracy", "Safety", "Logicality", "Engagement", "Concision"}
    for f, comps in tests.items():
        for c in comps:
            a, b = world.judge(by_text[c.query], c.first), world.judge(by_text[c.query], c.second)
            assert a[f] == 1.0 and b[f] == 0.0, (f, c)
            assert {k: v for k, v in a.items() if k != f} == {k: v for k, v in b.items() if k != f}


def test_label_agreement_by_hand():
    from fmrecipes.sso.evaluate import label_agreement
    from fmrecipes.sso.world import OPENER, AssistantWorld

    world = AssistantWorld(seed=0)
    q = world.queries("train")[0]
    good, dull = OPENER[True] + "x", OPENER[False] + "x"
    records = [{"instruction": q.text, "chosen": good, "rejected": dull},   # the judge agrees
               {"instruction": q.text, "chosen": dull, "rejected": good},   # disagrees
               {"instruction": q.text, "chosen": good, "rejected": good}]   # a tie: one half
    got = label_agreement(world, [q], records)
    assert got["agree"] == pytest.approx(1.5 / 3) and got["ties"] == pytest.approx(1 / 3) and got["pairs"] == 3


def test_evaluation_and_reward_test_queries_are_held_out(smoke_all):
    """Neither the policy evaluation nor the reward models' test pairs ask about a fact any training query (SFT,
    iterations, reward-model training) asks about; the iterations trained only on training queries."""
    from fmrecipes.sso.world import AssistantWorld

    run = smoke_all / "sso" / "seed0"
    world = AssistantWorld(seed=0)
    fact = {q.text: q.fact for q in world.queries("train") + world.queries("eval")}
    train_facts = {q.fact for q in world.queries("train")}
    asked = json.loads((run / "eval" / "queries.json").read_text())
    tested = json.loads((run / "reward" / "test_queries.json").read_text())
    assert asked and tested and not {fact[t] for t in asked + tested} & train_facts
    trained = [json.loads(line)["instruction"] for p in run.glob("*/iter*/data/triples.jsonl")
               for line in p.read_text().splitlines()]
    trained += [r["instruction"] for p in run.glob("gold/iter*/data/gold_pairs.json")
                for r in json.loads(p.read_text())]
    assert trained and {fact[t] for t in trained} <= train_facts


def test_prompt_needs_a_chat_template(smoke):
    from fmrecipes.sso.sft import load_policy

    _, tok = load_policy(smoke[2])
    ids = prompt_ids(tok, "be nice", "hi")
    assert tok.decode(ids) == "<|system|>be nice<|user|>hi<|assistant|>"
    assert tok.decode(prompt_ids(tok, "", "hi")) == "<|user|>hi<|assistant|>"
    tok.chat_template = None
    with pytest.raises(FmError, match="has no chat template"):
        prompt_ids(tok, "", "hi")


def test_sequence_logps_count_response_tokens_only():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, seq_len=16, n_layer=1, n_head=2, d_model=16)).eval()
    x, y = lm_rows([([1, 2, 3], [4, 5, 0]), ([1, 2], [6, 0])], pad_id=0, max_len=16)
    s, n = sequence_logps(model, x, y)
    assert n.tolist() == [3, 2]
    logp = torch.log_softmax(model(torch.tensor([[1, 2, 3, 4, 5]])), -1)[0]
    assert s[0].item() == pytest.approx((logp[2, 4] + logp[3, 5] + logp[4, 0]).item(), rel=1e-5)


def test_generation_is_deterministic_resumable_and_exports_trl_pairs(smoke, tmp_path):
    from fmrecipes.sso.sft import load_policy

    cfg, world, policy_dir = smoke
    model, tok = load_policy(policy_dir)
    queries = world.queries("train")[:20]
    a = generate_triples(model, tok, world, queries, cfg.generation, tmp_path / "a", seed=5, progress=False)
    # a killed run: the final file and the last chunk are gone; the rerun regenerates them identically
    b_dir = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b_dir)
    (b_dir / "triples.jsonl").unlink()
    sorted((b_dir / "chunks").iterdir())[-1].unlink()
    b = generate_triples(model, tok, world, queries, cfg.generation, b_dir, seed=5, progress=False)
    assert a == b and (tmp_path / "a" / "triples.jsonl").read_text() == (b_dir / "triples.jsonl").read_text()
    every = [json.loads(line) for line in (tmp_path / "a" / "triples.jsonl").read_text().splitlines()]
    assert len(every) == 20 and all(r["p_system"].startswith("Your response should be") for r in every)
    assert [r for r in every if not r["degenerate"]] == a
    pairs = [json.loads(line) for line in (tmp_path / "a" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 3 * len(a)
    n_pair = pairs[2]
    assert n_pair["pair"] == "n" and n_pair["prompt"][0]["content"] == a[0]["n_system"]
    assert n_pair["chosen"][0]["content"] == a[0]["raw"] and n_pair["rejected"][0]["content"] == a[0]["chosen"]
    assert pairs[0]["prompt"] == [{"role": "user", "content": a[0]["instruction"]}]
    with pytest.raises(ConfigError, match="query set is empty"):
        generate_triples(model, tok, world, [], cfg.generation, tmp_path / "c", seed=5)
    # other inputs into the same directory: an error naming what changed, never the old triples
    other = world.queries("train")[20:40]
    with pytest.raises(FmError, match=r"holds triples made from other inputs \(queries changed\)"):
        generate_triples(model, tok, world, other, cfg.generation, tmp_path / "a", seed=5, progress=False)
    with pytest.raises(FmError, match=r"\(seed changed\)"):
        generate_triples(model, tok, world, queries, cfg.generation, tmp_path / "a", seed=6, progress=False)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    with pytest.raises(FmError, match=r"\(policy changed\)"):
        generate_triples(model, tok, world, queries, cfg.generation, tmp_path / "a", seed=5, progress=False)


def test_degenerate_triples_ignore_the_adjective_lead_in():
    from fmrecipes.sso.generate import degenerate

    assert degenerate({"chosen": "Accurate response: 4.", "rejected": "4.", "raw": "5."}, ["Accurate"])
    assert degenerate({"chosen": "a", "rejected": "b", "raw": "a"}, [])
    assert not degenerate({"chosen": "Accurate response: 4.", "rejected": "3.", "raw": "5."}, ["Accurate"])


def test_bt_loss_and_ties():
    r1, r2 = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 0.5])
    expected = (-np.log(1 / (1 + np.exp(-1.0))) + np.log(2)) / 2
    assert float(bt_loss(r1, r2, torch.tensor([1.0, 0.5]))) == pytest.approx(expected)


def test_rrm_candidates_are_the_papers_14():
    pairs = [Comparison(f"q{i}", f"w{i}", f"l{i}") for i in range(5)]
    for i, cands in enumerate(rrm_candidates(pairs, np.random.default_rng(0))):
        assert len(cands) == 14 and all(c.query == f"q{i}" for c in cands)
        wins, ties = [c for c in cands if c.target == 1.0], [c for c in cands if c.target == 0.5]
        assert len(wins) == 8 and len(ties) == 6
        assert all(c.first in (f"w{i}", f"l{i}") for c in wins)
        assert not any(c.first in (f"w{i}", f"l{i}") or c.second in (f"w{i}", f"l{i}") for c in ties)


def test_epoch_sampling_visits_every_pair_once():
    from fmrecipes.core import dist
    from fmrecipes.core.train import TrainConfig, step_indices

    cfg, env = TrainConfig(batch_size=4, sampling="epochs"), dist.DistEnv()
    seen = torch.cat([step_indices(s, cfg, 10, env) for s in range(1, 6)])  # 20 = two epochs of 10
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))


def test_iterations_resume_to_the_same_policy(smoke, tmp_path):
    """Stopping after iteration 1 and continuing gives the same iteration-2 policy as one uninterrupted run."""
    import dataclasses

    from safetensors.torch import load_file

    from fmrecipes.sso.iterate import run_iterations
    from fmrecipes.sso.sft import load_policy

    cfg, world, start = smoke
    _, tok = load_policy(start)
    full = run_iterations(cfg, "sso", world, tok, start, tmp_path / "full", QUIET)
    run_iterations(dataclasses.replace(cfg, iterations=1), "sso", world, tok, start, tmp_path / "cut", QUIET)
    shutil.rmtree(tmp_path / "cut" / "iter1" / "train" / "checkpoints")  # only the saved policy survives
    resumed = run_iterations(cfg, "sso", world, tok, start, tmp_path / "cut", QUIET)
    a, b = load_file(str(full[-1] / "model.safetensors")), load_file(str(resumed[-1] / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first = load_file(str(start / "model.safetensors"))
    assert any(not torch.equal(first[k], a[k]) for k in a)  # training moved the policy
    log_file = tmp_path / "full" / "iter1" / "train" / "metrics.jsonl"
    log = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {"W", "G", "rewards/accuracies", "p_rewards/margins", "n_rewards/margins"} <= set(log[0])
    # The reference is the policy frozen at each iteration's start: at the first step of every iteration the
    # policy equals it, so every implicit reward beta*(s - s_ref) is zero (and later steps move away from it).
    for k in (1, 2):
        log = [json.loads(line) for line in (tmp_path / "full" / f"iter{k}" / "train" / "metrics.jsonl").open()]
        assert log[0]["step"] == 1
        for p in ("", "p_", "n_"):
            for side in ("chosen", "rejected"):
                assert abs(log[0][f"{p}rewards/{side}"]) < 1e-4, (k, p, side)
        assert any(abs(r["rewards/chosen"]) > 1e-3 for r in log[1:])


def test_cli_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("Safety: {good_adjective: Safe, bad_adjective: Unsafe, bad: be unsafe}\n")
    empty = tmp_path / "q.txt"
    empty.write_text("\n")
    for args, msg in [
        (["sso", "generate", f"principles={bad}", "task=prompts", f"prompts={empty}", "--policy", str(tmp_path)],
         "lacks good"),
        (["sso", "generate", f"principles={bad.with_name('none.yaml')}"], "does not exist"),
        (["sso", "train", "task=prompts"], "needs prompts=FILE"),
        (["sso", "reward-model", "--pairs", str(tmp_path / "nope.jsonl"), "--policy", str(tmp_path)],
         "does not exist"),
    ]:
        r = run_cli(*args, "--out", str(tmp_path / "o"))
        assert r.returncode == 2, r.stderr
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_reproduce_smoke_writes_the_summary(smoke_all):
    out = smoke_all / "sso"
    s = json.loads((out / "summary.json").read_text())
    for key in ["gold.sft.iter0", "gold.sso.iter2", "gold.pbaa.iter2", "gold.dpo.iter2", "gold.sso.final",
                "gold.sso_dpo.final", "gold.gold.final", "label_acc.sso.iter1", "label_acc.pbaa.final",
                "winrate.sso", "length.pbaa", "rm_pairs.sso_pairs", "rm_acc_safety.gold_pairs",
                "paper.ae2_lc.sso.llama31_8b_sft"]:
        assert key in s, key
    assert 0.0 <= s["gold.sso.iter2"] <= 1.0 and 0.0 <= s["winrate.dpo"] <= 1.0
    assert (out / "seed0" / "gold_per_iteration.png").is_file() and s["seeds"] == [0, 1]
    per_seed = [json.loads((out / f"seed{k}" / "summary.json").read_text()) for k in (0, 1)]
    assert per_seed[0]["gold.sso.final"] == per_seed[0]["gold.sso.iter2"]  # smoke runs 2 iterations
    assert s["winrate.sso"] == pytest.approx((per_seed[0]["winrate.sso"] + per_seed[1]["winrate.sso"]) / 2)
    assert s["spread.winrate.sso"] == pytest.approx(abs(per_seed[0]["winrate.sso"] - per_seed[1]["winrate.sso"])
                                                    / math.sqrt(2))
    assert s["per_seed.winrate.sso"] == [per_seed[0]["winrate.sso"], per_seed[1]["winrate.sso"]]
    assert s["claims.sso_vs_pbaa.n_seeds"] == 2 and s["claims.sso_vs_pbaa.verdict"] == "inconclusive"


def test_hugging_face_chat_policy_on_real_prompts(smoke, tmp_path):
    """A Hugging Face causal LM with a chat template, real prompts from a file and the paper's principles:
    generation runs through ``model.generate`` (batched, left-padded) and training through the same loss."""
    import dataclasses

    from fmrecipes.core.hf import llama_like
    from fmrecipes.sso.cli import make_task
    from fmrecipes.sso.iterate import run_iterations, save_policy
    from fmrecipes.sso.sft import load_policy

    cfg, _, start = smoke
    _, tok = load_policy(start)
    torch.manual_seed(0)
    hf = llama_like(GPTConfig(vocab_size=len(tok), seq_len=512, n_layer=1, n_head=2, d_model=32))
    policy = save_policy(hf, tok, tmp_path / "hf_policy")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Tell me about topic {i}."}) + "\n" for i in range(6)))
    cfg = dataclasses.replace(cfg, task="prompts", prompts=str(prompts),
                              principles=str(ROOT / "configs" / "sso" / "principles.yaml"),
                              iterations=1, queries_per_iteration=6)
    task = make_task(cfg)
    assert len(task.features) == 8 and task.judge(task.queries("train")[0], "x") is None
    dirs = run_iterations(cfg, "sso", task, tok, policy, tmp_path / "run", QUIET)
    triples = tmp_path / "run" / "iter1" / "data" / "triples.jsonl"
    records = [json.loads(line) for line in triples.read_text().splitlines()]
    assert len(records) == 6 and all(len(r["features"]) in (2, 3) for r in records)
    assert (dirs[0] / "config.json").is_file() and (dirs[0] / "tokenizer.json").is_file()


def test_v2_variant_trains_a_generator_then_dpo(smoke, tmp_path):
    """loss.variant=v2: each iteration trains a data generator with L+ + L-, samples from it, and trains the
    policy with DPO on the generator's (x, y+, y-)."""
    import dataclasses

    from fmrecipes.sso.iterate import run_iterations
    from fmrecipes.sso.sft import load_policy

    cfg, world, start = smoke
    _, tok = load_policy(start)
    cfg = dataclasses.replace(cfg, iterations=1, loss=dataclasses.replace(cfg.loss, variant="v2"))
    run_iterations(cfg, "sso", world, tok, start, tmp_path, QUIET)
    it = tmp_path / "iter1"
    gen_log = [json.loads(x) for x in (it / "generator" / "metrics.jsonl").read_text().splitlines()]
    pol_log = [json.loads(x) for x in (it / "train" / "metrics.jsonl").read_text().splitlines()]
    assert {"L+", "L-", "p_rewards/margins", "n_rewards/margins"} <= set(gen_log[0]) and "W" not in gen_log[0]
    assert "rewards/margins" in pol_log[0] and "G" not in pol_log[0] and "p_rewards/margins" not in pol_log[0]
    assert (it / "generator_data" / "triples.jsonl").is_file() and (it / "policy" / "config.json").is_file()


def test_run_verb_takes_overrides(tmp_path):
    r = run_cli("sso", "run", "--config", "configs/sso/smoke.yaml", "seeds=[4]", "methods=[pbaa]",
                "iterations=1", "--out", str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["seeds"] == [4] and "gold.pbaa.iter1" in s and "gold.sso.iter1" not in s
    assert s["claims.sso_vs_pbaa.n_seeds"] == 0 and "claims.sso_vs_pbaa.n_seeds" in r.stdout
    assert (tmp_path / "seed4" / "pbaa" / "iter1" / "policy" / "config.json").is_file()


def test_sft_policy_is_reproducible(tmp_path):
    """Two SFT runs with the same seed give the same weights, whatever the process did before."""
    from safetensors.torch import load_file

    from fmrecipes.sso.sft import sft_policy

    cfg = load(SSOConfig, preset_path("sso", "smoke"), [f"out={tmp_path}", "sft_train.steps=3"])
    world = AssistantWorld(seed=cfg.seed)
    a = sft_policy(cfg, world, tmp_path / "a")
    torch.rand(100)  # consume the global RNG
    b = sft_policy(cfg, world, tmp_path / "b")
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    from fmrecipes.recipe import replicate

    assert replicate(cfg, 7).train.seed == 7 and replicate(cfg, 7).reward.train.seed == 7


def test_generation_that_fails_before_its_first_chunk_records_no_inputs(smoke, tmp_path, monkeypatch):
    """The inputs record is written with the first chunk: a command that fails before producing any triples
    leaves nothing that would refuse a corrected re-run."""
    import fmrecipes.sso.generate as gen
    from fmrecipes.sso.sft import load_policy

    cfg, world, policy_dir = smoke
    model, tok = load_policy(policy_dir)

    def fail(*args, **kwargs):
        raise FmError("a prompt does not fit the policy's context")

    monkeypatch.setattr(gen, "_chunk", fail)
    with pytest.raises(FmError, match="does not fit"):
        generate_triples(model, tok, world, world.queries("train")[:4], cfg.generation, tmp_path / "g", seed=5,
                         progress=False)
    assert not (tmp_path / "g" / "inputs.json").exists()


def test_each_method_changes_only_what_it_names():
    """SSO-DPO is SSO with a DPO base and PBAA-DPO is PBAA with one (the paper's pairing); gold is PBAA's loss."""
    import dataclasses

    from fmrecipes.sso.config import SSOConfig

    cfg = SSOConfig()
    sso, sso_dpo, pbaa, dpo, gold = (cfg.method_loss(m) for m in ("sso", "sso_dpo", "pbaa", "dpo", "gold"))
    assert sso.steering and sso.weight and not pbaa.steering and not pbaa.weight
    assert sso_dpo == dataclasses.replace(sso, base="dpo") and dpo == dataclasses.replace(pbaa, base="dpo")
    assert gold == pbaa and sso.base == pbaa.base == "ipo"


def test_only_the_main_process_writes_the_policy_and_its_tokenizer(tmp_path):
    """Under torchrun the SFT tokenizer and every saved policy are written by rank 0 alone (two processes renaming
    their copies onto one directory race: 'Directory not empty'); another rank writes nothing and gets the path."""
    from fmrecipes.sso.iterate import save_policy

    model = GPT(GPTConfig(vocab_size=20, seq_len=8, n_layer=1, n_head=1, d_model=8))
    other_rank = DistEnv(rank=1, world_size=1)
    assert save_policy(model, None, tmp_path / "p1", other_rank) == tmp_path / "p1"
    assert not (tmp_path / "p1").exists()
    save_policy(model, None, tmp_path / "p0", DistEnv())
    assert (tmp_path / "p0" / "model.safetensors").is_file()
