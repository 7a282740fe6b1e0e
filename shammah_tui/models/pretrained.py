"""The pre-trained model as an answerer: SmolLM2-135M-Instruct, frozen, with LoRA adapters.

The base weights never change (they are the converted GGUF file, shared by every data dir that
converts the same file); what the teacher's answers train is the adapter, saved atomically as
``adapter.safetensors`` beside the other checkpoints. A fresh adapter is the identity, so the
base model and "the adapted model before any answer" are the same thing.

Prompts are ChatML with a short system turn asking for the answer alone: the teacher's answers
are short ("1010000111", "PKDZB"), and the loss covers the answer's tokens and its <|im_end|>.
Where a teacher's answer is what a one-step program over the question's numbers or words computes,
the target is that program instead (programs.py): the model learns to write ``calc: bin(647)``,
and its answer is what the program computes, never the program's text.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from shammah_tui.atomic import replace_atomically

from .answer_model import NeuralAnswer, Pair
from .gguf_convert import load_converted, read_info
from .llama import Llama, generate
from .llama_tokenizer import ChatMessage, ChatTokenizer
from .lora import LoRAConfig, adapter_parameters, adapter_state, add_lora, load_adapter_state
from . import programs

IGNORE_INDEX = -100
SYSTEM_PROMPT = "Answer with the answer alone."
#: Longest prompt an example or a question gets: a longer question keeps its beginning and end.
MAX_PROMPT_TOKENS = 192
#: Longest answer a training example keeps (the teacher's answers the tier could serve are short).
MAX_ANSWER_TOKENS = 96
ADAPTER_FILE = "adapter.safetensors"


class PretrainedLM:
    """The base llama plus its adapters, behind the AnswerModel interface."""

    loss_name = "adapter"

    def __init__(self, model: Llama, tokenizer: ChatTokenizer, lora: LoRAConfig, *, seed: int,
                 info: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.lora = lora
        self.seed = seed
        self.info = dict(info or {})
        self.recipe: Mapping[str, Any] = dict(recipe or {})
        self.adapters = add_lora(list(model.blocks), lora, seed)
        self.pad_id = tokenizer.im_end_id  # never a target: padded targets are IGNORE_INDEX
        self._stops = tokenizer.stop_ids

    @classmethod
    def load(cls, base_dir: Path, lora: LoRAConfig, *, seed: int, recipe: Mapping[str, Any] | None = None,
             device: torch.device | str = "cpu") -> PretrainedLM:
        """From a converted directory (gguf_convert.convert); raises FileNotFoundError without one."""
        model, tok = load_converted(base_dir)
        model = model.to(device)
        return cls(model, tok, lora, seed=seed, info=read_info(base_dir), recipe=recipe)

    @property
    def device(self) -> torch.device:
        return self.model.wte.weight.device

    # ------------------------------------------------------------------ encoding

    def prompt_ids(self, query: str, context: str = "") -> list[int]:
        """The ChatML prompt for ``query`` after ``context``, at most MAX_PROMPT_TOKENS long.

        Characters are cut first (a 1 MB paste is never encoded whole); then the context goes,
        then the query's middle."""
        cap = MAX_PROMPT_TOKENS * 8
        if len(query) > 2 * cap:
            query = query[:cap] + query[-cap:]
        context = context[-cap:]
        for ctx in ((context, "") if context else ("",)):
            content = f"{ctx}\n\n{query}" if ctx else query
            ids = self._chat(content)
            if len(ids) <= MAX_PROMPT_TOKENS:
                return ids
        q = self.tokenizer.encode(query)
        # Room for the query's two ends; a few tokens spare, since re-encoding the cut text may
        # merge differently at the seams.
        half = max((MAX_PROMPT_TOKENS - len(self._chat("")) - 8) // 2, 1)
        return self._chat(self.tokenizer.decode(q[:half]) + " … " + self.tokenizer.decode(q[-half:]))

    def _chat(self, content: str) -> list[int]:
        return self.tokenizer.chat_ids([ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", content)])

    def encode_example(self, query: str, context: str, answer: str) -> Pair:
        """Input ids and next-token targets; targets are IGNORE_INDEX over the prompt, so the loss
        covers the answer's tokens and its <|im_end|>."""
        prompt = self.prompt_ids(query, context)
        target = programs.find(query, answer) or answer.strip()
        ans = self.tokenizer.encode(target[: MAX_ANSWER_TOKENS * 16])[:MAX_ANSWER_TOKENS]
        full = prompt + ans + [self.tokenizer.im_end_id]
        targets = [IGNORE_INDEX] * (len(prompt) - 1) + full[len(prompt):]
        return full[:-1], targets

    # ------------------------------------------------------------------ training

    def answer_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the supervised positions of y (B, T); the head (C x 49k) runs on those only."""
        h = self.model.hidden(x)  # (B, T, C)
        keep = y != IGNORE_INDEX  # (B, T)
        logits = self.model.head(h[keep])  # (N, V), N supervised positions
        return F.cross_entropy(logits, y[keep], reduction="sum") / keep.sum().clamp(min=1)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return adapter_parameters(self.adapters)

    def set_training(self, on: bool) -> None:
        self.model.train(on)

    def reset_adapter(self) -> None:
        """Back to the base model: every adapter's update is zero again."""
        rng = torch.Generator().manual_seed(self.seed)
        for a in self.adapters:
            a.reset(rng)

    # ------------------------------------------------------------------ answering

    def answer(self, query: str, context: str = "", max_new_tokens: int = 64, temperature: float = 0.0,
               seed: int | None = None, use_cache: bool = True,
               on_token: Callable[[str], object] | None = None,
               cancel: threading.Event | None = None) -> NeuralAnswer:
        """Greedy (or seeded) decoding until <|im_end|>; each piece of text goes to ``on_token`` as
        soon as it is whole (a multi-byte character waits for its last byte)."""
        t0 = time.perf_counter()
        stream = self.tokenizer.stream_decoder() if on_token is not None else None
        shown = _ProgramFilter(on_token) if on_token is not None else None

        def piece(tok_id: int) -> None:
            assert stream is not None and shown is not None
            shown.feed(stream.step(self.tokenizer.tok, tok_id))

        res = generate(self.model, self.prompt_ids(query, context), max_new_tokens, stop_ids=self._stops,
                       temperature=temperature, seed=seed, on_token=piece if stream is not None else None,
                       cancel=cancel, use_cache=use_cache)
        text = self.tokenizer.decode(res.token_ids).strip()
        program = text if programs.is_program(text) else None
        if program is not None:
            try:
                text = programs.run(program)
            except programs.ProgramError:
                text = ""  # a program that does not run is no answer
        if shown is not None:
            shown.finish(text)
        confidence = min(res.token_probs) if res.token_probs else 0.0
        return NeuralAnswer(text, confidence, len(res.token_ids), (time.perf_counter() - t0) * 1000.0,
                            res.stop == "eos", res.token_ids, res.token_probs, program)

    # ------------------------------------------------------------------ files

    def adapter_metadata(self) -> dict[str, str]:
        return {"lora": json.dumps(self.lora.to_dict()), "base": json.dumps(self.info.get("source")),
                "tokenizer_version": str(self.info.get("tokenizer_version"))}

    def save_adapter(self, path: Path) -> None:
        from safetensors.torch import save_file

        state = adapter_state(self.adapters)
        meta = self.adapter_metadata()
        replace_atomically(Path(path), lambda tmp: save_file(state, str(tmp), metadata=meta))

    def load_adapter(self, path: Path) -> None:
        """Load a saved adapter; raises ValueError (or OSError) when it is unreadable or was
        trained for another base model or LoRA shape."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error type for a torn or foreign file
            raise ValueError(f"unreadable adapter: {e}") from e
        mine = self.adapter_metadata()
        for key in ("lora", "base", "tokenizer_version"):
            if meta.get(key) != mine[key]:
                raise ValueError(f"adapter {path} was trained with {key} {meta.get(key)}, this model has {mine[key]}")
        load_adapter_state(self.adapters, state)

    def describe(self) -> dict[str, Any]:
        total = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.trainable_parameters())
        source = self.info.get("source") or {}
        # The file's own name ("SmolLM2-135M-Instruct.Q4_1.gguf") reads better than its metadata's.
        name = str(source.get("name", "")).split(".")[0] or self.info.get("name") or "pre-trained llama"
        return {"name": name, "license": self.info.get("license"),
                "source": self.info.get("source"), "params": total, "trainable_params": trainable,
                "lora": self.lora.to_dict(), "dtype": self.info.get("dtype")}


class _ProgramFilter:
    """Streams generated text as it comes, except a program: its text is held back and only the
    answer it computes is shown."""

    def __init__(self, on_token: Callable[[str], object]) -> None:
        self.on_token = on_token
        self.held = ""
        self.passing = False

    def feed(self, text: str | None) -> None:
        if not text:
            return
        if self.passing:
            self.on_token(text)
            return
        self.held += text
        start = self.held.lstrip()
        if start and not programs.PREFIX.startswith(start[: len(programs.PREFIX)]):
            self.passing = True
            self.on_token(self.held)

    def finish(self, answer: str) -> None:
        """After the last token: what was held back is either a program (show its ``answer``) or
        a short answer that only looked like the start of one (show it as it was)."""
        if self.passing:
            return
        shown = answer if programs.is_program(self.held) else self.held
        if shown:
            self.on_token(shown)
