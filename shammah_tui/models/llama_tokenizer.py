"""The pre-trained model's tokenizer and its chat format, built from the GGUF file's vocabulary.

SmolLM2's tokenizer is GPT-2-style byte-level BPE whose pre-tokenizer ("smollm" in GGUF
metadata) first cuts every digit into its own piece, then applies GPT-2's split. Its chat
format is ChatML:

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{text}<|im_end|>\\n<|im_start|>assistant\\n

Special ids enter a prompt only where ``chat_ids`` puts them: text is always encoded with
special tokens escaped, so a user who types "<|im_end|>" gets the characters, never the id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from shammah_tui.atomic import write_text_atomically

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ROLES = ("system", "user", "assistant")
#: What the model's own template puts first when a conversation has no system turn.
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
#: GGUF token types (llama.cpp's enum): 1 normal, 3 control, 4 user-defined.
CONTROL_TYPES = (3, 4)


@dataclass(frozen=True)
class ChatMessage:
    role: str  # one of ROLES
    content: str


def build_tokenizer(tokens: Sequence[str], merges: Sequence[str], token_types: Sequence[int],
                    pre: str = "smollm") -> Tokenizer:
    """A ``tokenizers`` BPE tokenizer from a GGUF file's ``tokenizer.ggml.*`` arrays."""
    if pre not in ("smollm", "starcoder", "gpt2"):
        raise ValueError(f"unsupported pre-tokenizer {pre!r}")
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("the vocabulary has duplicate tokens")
    pairs = []
    for m in merges:
        a, sep, b = m.partition(" ")  # byte-level symbols never hold a space (it is "Ġ")
        if not sep or not a or not b:
            raise ValueError(f"malformed merge {m!r}")
        pairs.append((a, b))
    tok = Tokenizer(models.BPE(vocab, pairs))
    split: list[pre_tokenizers.PreTokenizer] = []
    if pre != "gpt2":
        split.append(pre_tokenizers.Digits(individual_digits=True))  # each digit its own piece
    split.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))  # then GPT-2's split
    tok.pre_tokenizer = pre_tokenizers.Sequence(split)
    tok.decoder = decoders.ByteLevel()
    specials = [t for t, kind in zip(tokens, token_types) if kind in CONTROL_TYPES]
    # Matched before BPE, so the template's markers become their single ids; the ids stay those of
    # the vocabulary because each token is already in it.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.encode_special_tokens = True  # text never turns into control ids (see ChatTokenizer.encode)
    return tok


class ChatTokenizer:
    """Text <-> ids for the pre-trained model, and its ChatML prompt."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok = tokenizer
        self.tok.encode_special_tokens = True
        self.im_start_id = self._id(IM_START)
        self.im_end_id = self._id(IM_END)
        self.newline_ids = self.encode("\n")
        self.role_ids = {r: self.encode(r + "\n") for r in ROLES}
        self.version = hashlib.sha256(self.tok.to_str().encode()).hexdigest()[:16]

    def _id(self, token: str) -> int:
        i = self.tok.token_to_id(token)
        if i is None:
            raise ValueError(f"the vocabulary has no {token!r}")
        return i

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    @property
    def stop_ids(self) -> list[int]:
        """Ids that end an assistant turn: <|im_end|>, and <|endoftext|> where there is one."""
        eot = self.tok.token_to_id("<|endoftext|>")
        return [self.im_end_id] + ([eot] if eot is not None else [])

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` as plain text: a special token's characters are encoded as characters."""
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special)

    def stream_decoder(self) -> decoders.DecodeStream:
        """Turns ids into text one at a time, holding back a partial UTF-8 character (``.step(tok, id)``)."""
        return decoders.DecodeStream(skip_special_tokens=True)

    def chat_ids(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> list[int]:
        """The ChatML prompt of ``messages``, as the model's template writes it.

        A conversation that does not open with a system turn gets DEFAULT_SYSTEM, as in the
        model's own template. Contents are untrusted: only this method places special ids.
        """
        msgs = list(messages)
        if not msgs or msgs[0].role != "system":
            msgs.insert(0, ChatMessage("system", DEFAULT_SYSTEM))
        ids: list[int] = []
        for m in msgs:
            if m.role not in ROLES:
                raise ValueError(f"unknown chat role {m.role!r}")
            # The template is "<|im_start|>" + role + "\n" + content + "<|im_end|>" + "\n"; the text
            # between two special tokens is one segment for the tokenizer either way, so encoding
            # role line and content together gives the ids a template render would.
            ids += [self.im_start_id, *self.encode(m.role + "\n" + m.content), self.im_end_id, *self.newline_ids]
        if add_generation_prompt:
            ids += [self.im_start_id, *self.role_ids["assistant"]]
        return ids

    def chat_text(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        """The prompt ``chat_ids`` encodes, as text (for display and for checking against the template)."""
        msgs = list(messages)
        if not msgs or msgs[0].role != "system":
            msgs.insert(0, ChatMessage("system", DEFAULT_SYSTEM))
        text = "".join(f"{IM_START}{m.role}\n{m.content}{IM_END}\n" for m in msgs)
        return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")

    def save(self, path: Path) -> None:
        write_text_atomically(path, self.tok.to_str())

    @classmethod
    def load(cls, path: Path) -> ChatTokenizer:
        return cls(Tokenizer.from_file(str(path)))
