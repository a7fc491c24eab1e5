"""Byte-level BPE tokenizers trained with ``tokenizers``, loaded as ``PreTrainedTokenizerFast``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import FmError

EOS = "<|endoftext|>"


BYTE_VOCAB = 257  # the byte-level BPE's 256 byte symbols + EOS: the smallest vocabulary it can have


def train_bpe(texts: Iterable[str], vocab_size: int, out_dir: str | Path, special_tokens: tuple[str, ...] = (),
              chat_template: str | None = None, prefix_space: bool = False):
    """Train a byte-level BPE of ``vocab_size`` on ``texts`` and save it to ``out_dir`` (HF layout), with
    optional extra special tokens (e.g. chat role markers) and a Jinja chat template. ``prefix_space``: a text's
    first word is read as if a space preceded it, so a word has one id wherever it stands (GPT-2's default,
    False, gives "Brio" at the start of a text another id than " Brio" inside it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, *special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf = wrap(tok)
    if chat_template is not None:
        hf.chat_template = chat_template
    hf.save_pretrained(str(out_dir))
    return hf


def wrap(tok):
    """A ``tokenizers.Tokenizer`` as a ``PreTrainedTokenizerFast`` with EOS (also used as PAD)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)


def load_tokenizer(path: str | Path):
    """Load a tokenizer saved by :func:`train_bpe` or any local Hugging Face tokenizer directory."""
    from transformers import AutoTokenizer

    p = Path(path)
    if not p.exists():
        raise FmError(f"tokenizer directory {p} does not exist")
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise FmError(f"cannot load a tokenizer from {p}: {str(exc).splitlines()[0]}") from None
    if tok.eos_token_id is None:
        raise FmError(f"tokenizer in {p} has no EOS token; documents need one as separator")
    return tok
