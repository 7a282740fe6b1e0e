"""Byte-level BPE tokenizer shared by the generator and the classifiers.

Byte-level means every string round-trips losslessly (no unknown token), whatever
the user pastes. Token ids must stay stable once a model is trained on them, so
the tokenizer carries a ``version`` (a hash of its serialized form) that every
checkpoint records and checks on load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from shammah_tui.atomic import write_text_atomically

# Order matters: these get ids 0..5, and the prompt format relies on them.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|pad|>",
    "<|context|>",
    "<|user|>",
    "<|assistant|>",
    "<|sep|>",
]


class TokenizerError(Exception):
    """A tokenizer file is missing, truncated or not one of ours."""




def _clean(text: str) -> str:
    """Make ``text`` encodable: lone surrogates (possible in a Python str) become '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


class TextTokenizer:
    """A thin, typed wrapper around a ``tokenizers.Tokenizer`` with our special tokens."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        for i, tok in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(tok) != i:
                raise TokenizerError(f"special token {tok!r} is not id {i}: not a shammah tokenizer")
        # All input is untrusted text: a typed "<|endoftext|>" must stay ordinary text.
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer
        self.eos_id, self.pad_id, self.context_id, self.user_id, self.assistant_id, self.sep_id = range(6)
        # Hash a canonical form of the JSON so the version survives save/load unchanged.
        canonical = json.dumps(json.loads(tokenizer.to_str()), sort_keys=True, separators=(",", ":"))
        self.version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 8000) -> TextTokenizer:
        """Train a byte-level BPE on ``texts``; the same input gives the same tokenizer."""
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,  # a pair seen once is noise, not a token worth a vocabulary slot
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: lossless
            show_progress=False,
        )
        tok.train_from_iterator((_clean(t) for t in texts), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings in it are encoded as plain text."""
        try:
            return self._tok.encode(text, add_special_tokens=False).ids
        except TypeError:  # lone surrogates
            return self._tok.encode(_clean(text), add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Like ``encode`` for many texts at once (parallel in Rust)."""
        if len(texts) == 1:  # the batch machinery costs more than it saves for one text
            return [self.encode(texts[0])]
        encs = self._tok.encode_batch([_clean(t) for t in texts], add_special_tokens=False)
        return [e.ids for e in encs]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, special tokens dropped."""
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def to_str(self) -> str:
        return self._tok.to_str()

    @classmethod
    def from_str(cls, text: str) -> TextTokenizer:
        try:
            tok = Tokenizer.from_str(text)
        except Exception as e:  # the Rust side raises plain Exception on bad JSON
            raise TokenizerError(f"cannot parse tokenizer: {str(e).splitlines()[0][:200]}") from None
        return cls(tok)

    def save(self, path: str | Path) -> None:
        """Write the tokenizer JSON atomically (tmp file in the same dir, fsync, rename)."""
        write_text_atomically(Path(path), self.to_str())

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """Read a tokenizer saved by ``save``; raises ``TokenizerError`` on any problem."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TokenizerError(f"tokenizer file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise TokenizerError(f"cannot read tokenizer {path}: {e}") from None
        try:
            return cls.from_str(text)
        except TokenizerError as e:
            raise TokenizerError(f"bad tokenizer file {path}: {e}") from None

    def __repr__(self) -> str:
        return f"TextTokenizer(vocab_size={self.vocab_size}, version={self.version!r})"
