import json

import torch

from conftest import run_cli, tiny_lm_args
from fmrecipes.core.checkpoint import latest_checkpoint, load_model
from fmrecipes.core.tokenizer import load_tokenizer, train_bpe
from fmrecipes.data.corpora import news_documents


def _tiny_llama(path, vocab_size):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    LlamaForCausalLM(cfg).save_pretrained(str(path))


def test_tokenizer_trains_saves_and_loads_as_fast_tokenizer(tmp_path):
    tok = train_bpe((d.text for d in news_documents()[:50]), 300, tmp_path / "tok")
    back = load_tokenizer(tmp_path / "tok")
    from transformers import PreTrainedTokenizerFast  # an alias of TokenizersBackend in transformers 5

    assert isinstance(back, PreTrainedTokenizerFast) and len(back) == len(tok) <= 300
    text = "Bushfires near Sydney, 2001."
    assert back.decode(back(text)["input_ids"]) == text  # byte-level: lossless
    assert back.eos_token == "<|endoftext|>"


def test_train_a_local_llama_with_the_same_loop(tmp_path, corpus):
    from fmrecipes.data.corpora import CorpusConfig, load_documents

    docs = load_documents(CorpusConfig(sources=[str(corpus)]))
    hf_dir = tmp_path / "llama"
    train_bpe((d.text for d in docs), 300, hf_dir)
    _tiny_llama(hf_dir, 300)
    out = tmp_path / "run"
    res = run_cli("lm", "train", *tiny_lm_args(corpus, out, hf_model=str(hf_dir), **{"train.steps": 20,
                                                                                   "train.lr": 0.01}))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5
    ckpt = latest_checkpoint(out)
    model = load_model(ckpt)
    assert type(model).__name__ == "LlamaForCausalLM"
    from transformers import LlamaForCausalLM

    again = LlamaForCausalLM.from_pretrained(str(ckpt))  # save_pretrained / from_pretrained round trip
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(ckpt)).get_vocab() == AutoTokenizer.from_pretrained(str(hf_dir)).get_vocab()
    x = torch.randint(0, 300, (1, 16))
    assert torch.equal(model(x).logits, again(x).logits)
    ev = run_cli("lm", "eval", str(out))
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["val_loss"] == rows[-1]["val_loss"]
    sample = run_cli("lm", "sample", str(out), "--prompt", "The", "--max-new-tokens", "5")
    assert sample.returncode == 0 and sample.stdout.startswith("The"), sample.stderr
