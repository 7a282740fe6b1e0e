"""Byte-level BPE tokenizer shared by the generator and the classifiers.

Byte-level means every string round-trips losslessly (no unknown token), whatever
the user pastes. Token ids must stay stable once a model is trained on them, so
the tokenizer carries a ``version`` (a hash of its serialized form) that every
checkpoint records and checks on load.

Before BPE, digits are split one by one, and so are the letters of a quoted word ('apple')
or of a text that is one word (an answer like "elppa"): a number or a word the generator
must compute with is then a run of one-character tokens it can count and index
(docs/skills-study.md). ``char_classes`` tells the generator which ids those are.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

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
ASSISTANT_ID = SPECIAL_TOKENS.index("<|assistant|>")  # the prompt ends with it; the answer follows

#: One letter of a word that is quoted ('apple', "apple") or that is the whole text ("elppa").
#: \G continues right after the previous match, so every letter of such a word matches on its
#: own; a word followed by a quote and then a letter (John's, don't) does not.
SKILL_LETTERS = r"""(?:(?<=['"])|\G)[A-Za-z](?=[A-Za-z]*(?:['"](?![A-Za-z])|\z))"""

#: Token classes (``TextTokenizer.char_classes``): what a token id decodes to.
OTHER, DIGIT, LETTER = 0, 1, 2


class TokenizerError(Exception):
    """A tokenizer file is missing, truncated or not one of ours."""


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Skill letters one by one, digits one by one, then GPT-2's byte-level split."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SKILL_LETTERS), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])


@functools.cache
def _current_pre_tokenizer() -> Any:
    """``pre_tokenizer()`` as it appears in a saved tokenizer's JSON."""
    probe = Tokenizer(models.BPE())
    probe.pre_tokenizer = pre_tokenizer()
    return json.loads(probe.to_str())["pre_tokenizer"]


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
        self._classes: list[int] | None = None
        self.eos_id, self.pad_id, self.context_id, self.user_id, self.assistant_id, self.sep_id = range(6)
        # Hash a canonical form of the JSON so the version survives save/load unchanged.
        canonical = json.dumps(json.loads(tokenizer.to_str()), sort_keys=True, separators=(",", ":"))
        self.version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 8000) -> TextTokenizer:
        """Train a byte-level BPE on ``texts``; the same input gives the same tokenizer."""
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizer()
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

    @property
    def is_current(self) -> bool:
        """Whether it splits text as ``build`` does now (a tokenizer saved by an older build does not)."""
        saved = json.loads(self._tok.to_str()).get("pre_tokenizer")
        return bool(saved == _current_pre_tokenizer())

    def char_classes(self) -> list[int]:
        """Per token id: DIGIT for one ASCII digit, LETTER for one ASCII letter, else OTHER."""
        if self._classes is None:
            texts = self._tok.decode_batch([[i] for i in range(self.vocab_size)], skip_special_tokens=True)
            self._classes = [DIGIT if len(t) == 1 and t.isascii() and t.isdigit()
                             else LETTER if len(t) == 1 and t.isascii() and t.isalpha()
                             else OTHER for t in texts]
        return list(self._classes)

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
