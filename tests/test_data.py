import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmrecipes.data.corpora import CorpusConfig, bible_documents, load_documents, news_documents, split
from fmrecipes.data.tokens import PackedDataset, TokenShard, write_shard
from fmrecipes.errors import FmError


def test_bundled_domains():
    bible = bible_documents()
    assert len(bible) == 1189  # chapters of the 66-book Protestant canon
    assert bible[0].text.startswith("In the beginning God created the heavens and the earth.")
    assert {d.domain for d in bible} == {"bible"}
    news = news_documents()
    assert len(news) == 350 and news[0].domain == "news"  # 300 background + 50 test articles


def test_wiki_sample():
    from fmrecipes.data.corpora import wiki_documents

    wiki = wiki_documents()
    assert 100 < len(wiki) <= 206 and wiki[0].domain == "wiki"
    assert not any(d.text.upper().startswith("#REDIRECT") for d in wiki)


def test_split_is_deterministic_and_disjoint():
    docs = news_documents()
    a_train, a_val = split(docs, 0.1)
    b_train, b_val = split(docs, 0.1)
    assert [d.id for d in a_val] == [d.id for d in b_val]
    assert not {d.id for d in a_train} & {d.id for d in a_val}
    assert 15 < len(a_val) < 60 and len(a_train) + len(a_val) == len(docs)


def test_single_document_is_cut_into_train_and_val():
    from fmrecipes.data.corpora import Document

    train, val = split([Document("x", "x", "a" * 100)], 0.1)
    assert len(train[0].text) == 90 and len(val[0].text) == 10


def test_user_formats(tmp_path):
    (tmp_path / "a.txt").write_text("hello world")
    (tmp_path / "b.jsonl").write_text(json.dumps({"body": "one"}) + "\n\n" + json.dumps({"body": "two"}) + "\n")
    pq.write_table(pa.table({"text": ["p1", "p2", " "]}), tmp_path / "c.parquet")
    from datasets import Dataset

    Dataset.from_dict({"text": ["d1", "d2"]}).save_to_disk(str(tmp_path / "ds"))
    assert [d.text for d in load_documents(CorpusConfig(sources=[str(tmp_path / "a.txt")]))] == ["hello world"]
    assert [d.text for d in load_documents(CorpusConfig(sources=[str(tmp_path / "b.jsonl")], text_key="body"))] == \
        ["one", "two"]
    assert [d.text for d in load_documents(CorpusConfig(sources=[str(tmp_path / "c.parquet")]))] == ["p1", "p2"]
    assert [d.text for d in load_documents(CorpusConfig(sources=[str(tmp_path / "ds")]))] == ["d1", "d2"]


def test_null_text_rows_are_errors_in_every_format(tmp_path):
    """A null in the text column is an error naming the file and row, never the document "None"."""
    (tmp_path / "n.jsonl").write_text('{"text": "a"}\n{"text": null}\n')
    pq.write_table(pa.table({"text": ["p1", None]}), tmp_path / "n.parquet")
    from datasets import Dataset

    Dataset.from_dict({"text": [None, "d2"]}).save_to_disk(str(tmp_path / "nds"))
    for name, where in (("n.jsonl", "line 2"), ("n.parquet", "row 2"), ("nds", "row 1")):
        with pytest.raises(FmError, match=rf"{name} {where}: 'text' is null, expected a string"):
            load_documents(CorpusConfig(sources=[str(tmp_path / name)]))


def test_preset_caps_cut_bundled_data_only(tmp_path):
    """The presets' max_docs_per_source / max_chars_per_doc are for the bundled domains: your files are read whole."""
    long = ["word " * 500 + str(i) for i in range(30)]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in long))
    cfg = CorpusConfig(sources=["news", str(tmp_path / "mine.jsonl")], max_docs_per_source=5, max_chars_per_doc=100)
    docs = load_documents(cfg)
    news = [d for d in docs if d.domain == "news"]
    assert len(news) == 5 and all(len(d.text) <= 100 for d in news)
    assert [d.text for d in docs if d.domain == "mine"] == long


@pytest.mark.parametrize("make,msg", [
    (lambda p: None, "corpus file .* does not exist"),
    (lambda p: p.write_text("  \n"), "is empty"),
    (lambda p: p.write_bytes(b"ok \xff\xfe bad"), "is not UTF-8 text \\(bad byte at offset 3\\)"),
])
def test_bad_corpora(tmp_path, make, msg):
    p = tmp_path / "c.txt"
    make(p)
    with pytest.raises(FmError, match=msg):
        load_documents(CorpusConfig(sources=[str(p)]))


def test_bad_jsonl_line(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(FmError, match=r"c.jsonl line 2 is not valid JSON"):
        load_documents(CorpusConfig(sources=[str(p)]))


def test_shard_roundtrip_and_packing(tmp_path):
    shard = write_shard(tmp_path / "s", [[1, 2, 3], [4, 5]], eos_id=0, vocab_size=10)
    assert shard.tokens.dtype == np.uint16
    assert list(shard.tokens) == [1, 2, 3, 0, 4, 5, 0]  # EOS after every document
    assert list(shard.document(1)) == [4, 5]
    ds = PackedDataset(TokenShard(tmp_path / "s"), seq_len=3)
    assert len(ds) == 2
    x, y = ds.batch([1, 0])
    assert x.tolist() == [[0, 4, 5], [1, 2, 3]] and y.tolist() == [[4, 5, 0], [2, 3, 0]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_domains_and_raw_rows(tmp_path):
    shard = write_shard(tmp_path / "s", [[1, 2, 3], [4, 5]], eos_id=0, vocab_size=10, domains=["wiki", "bible"])
    assert shard.domain_at(np.array([0, 3, 4, 6])) == ["wiki", "wiki", "bible", "bible"]
    raw = write_shard(tmp_path / "r", [[1, 2], [3, 4]], eos_id=None, vocab_size=10)
    assert list(raw.tokens) == [1, 2, 3, 4] and raw.domain_at(np.array([0])) == ["unknown"]


def test_uint32_for_large_vocab(tmp_path):
    assert write_shard(tmp_path / "s", [[70000]], 0, 100000).tokens.dtype == np.uint32


def test_too_short_corpus(tmp_path):
    shard = write_shard(tmp_path / "s", [[1, 2]], eos_id=0, vocab_size=10)
    with pytest.raises(FmError, match=r"my corpus has 3 tokens, fewer than one sequence of seq_len\+1=9"):
        PackedDataset(shard, seq_len=8, name="my corpus")


def test_incomplete_shard(tmp_path):
    (tmp_path / "s").mkdir()
    with pytest.raises(FmError, match="missing or incomplete"):
        TokenShard(tmp_path / "s")
