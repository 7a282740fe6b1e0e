"""The local models as one unit: tokenizer, generator, router and validator, and the model that
answers (the generator, or the pre-trained model with its adapter: ``LocalModels.lm``).

``LocalModels`` owns the weights, their files and a lock. The trainer and the pipeline run
in different threads and share one instance: every method here takes ``lock``, and so must
any code that touches the modules directly (e.g. a training step).

On disk (``model_dir``)::

    tokenizer.json          the byte-level BPE (its version is recorded in every checkpoint)
    generator.safetensors   the answer generator
    router.safetensors      query -> p(local answer acceptable)
    validator.safetensors   (query, answer) -> p(answer agrees with the teacher)
    adapter.safetensors     the pre-trained model's LoRA adapter (answer_model = "smollm2")
    base/                   that model's one-time conversion from its GGUF file (unless
                            base_model_dir names another folder)

A bad file never stops the app: it is moved aside to ``<name>.bad-<unix time>`` and the
model starts from fresh weights, with a warning for the caller to show.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn as nn

from .base_model import ensure_converted
from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .classifier import ClassifierConfig, TextClassifier, collate_texts
from .device import describe_device, pick_device
from .answer_model import AnswerModel, NeuralAnswer, ScratchLM
from .generator import Generator, GeneratorConfig
from .lora import LoRAConfig
from .pretrained import ADAPTER_FILE, PretrainedLM
from .tokenizer import TextTokenizer, TokenizerError

__all__ = ["LocalModels", "NeuralAnswer", "load_pretrained"]

TOKENIZER_FILE = "tokenizer.json"
GENERATOR_FILE = "generator.safetensors"
ROUTER_FILE = "router.safetensors"
VALIDATOR_FILE = "validator.safetensors"
CLASSIFIER_MAX_LEN = 64  # tokens of query (and of answer) the classifiers look at

M = TypeVar("M", bound=nn.Module)


def _fresh(build: Callable[[], M], seed: int) -> M:
    """Build a module with weights drawn from ``seed``, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _remove_stale_temporaries(model_dir: Path) -> None:
    """Delete ``.<name>.tmp-<pid>-<hex>`` files whose writer is gone (killed mid-save)."""
    for path in model_dir.glob(".*.tmp-*"):
        try:
            pid = int(path.name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
            os.kill(pid, 0)  # raises ProcessLookupError when no such process
        except ProcessLookupError:
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a read-only dir: leave it
                pass
        except (ValueError, IndexError, OSError):  # not ours, or a live writer we may not signal
            continue


def _move_aside(path: Path) -> str:
    """Rename a bad file to ``<name>.bad-<unix time>``; returns what became of it, for a warning."""
    stamp = int(time.time())
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
        n += 1
    try:
        path.rename(target)
    except OSError as e:
        return f"could not move it aside ({e.strerror or e})"
    return f"moved it to {target.name}"


class LocalModels:
    """Tokenizer + generator + router + validator on one device, guarded by ``lock``."""

    def __init__(self, tokenizer: TextTokenizer, generator: Generator, router: TextClassifier,
                 validator: TextClassifier, device: torch.device) -> None:
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        generator.set_token_classes(tokenizer.char_classes())  # the run positions' digits and letters
        self.generator = generator.to(self.device).eval()
        self.router = router.to(self.device).eval()
        self.validator = validator.to(self.device).eval()
        self.lm: AnswerModel = ScratchLM(tokenizer, self.generator)
        """What the neural tier answers with and a run trains: the generator, or the pre-trained
        model with its adapters (``use``)."""
        self.lock = threading.RLock()

    def use(self, lm: AnswerModel) -> None:
        """Answer with (and train) ``lm`` from now on."""
        with self.lock:
            self.lm = lm

    # ------------------------------------------------------------------ building and files

    @staticmethod
    def _fresh_generator(cfg: GeneratorConfig, seed: int) -> Generator:
        return _fresh(lambda: Generator(cfg), seed)

    @staticmethod
    def _fresh_router(vocab_size: int, seed: int) -> TextClassifier:
        return _fresh(lambda: TextClassifier(ClassifierConfig.router(vocab_size)), seed + 1)

    @staticmethod
    def _fresh_validator(vocab_size: int, seed: int) -> TextClassifier:
        return _fresh(lambda: TextClassifier(ClassifierConfig.validator(vocab_size)), seed + 2)

    @classmethod
    def create(cls, tokenizer: TextTokenizer, gen_config: GeneratorConfig, seed: int,
               device: torch.device | str | None = None) -> LocalModels:
        """Fresh models for ``tokenizer`` (gen_config.vocab_size is set to the tokenizer's)."""
        cfg = replace(gen_config, vocab_size=tokenizer.vocab_size)
        v = tokenizer.vocab_size
        return cls(tokenizer, cls._fresh_generator(cfg, seed), cls._fresh_router(v, seed),
                   cls._fresh_validator(v, seed), torch.device(device) if device is not None else pick_device())

    @classmethod
    def load_or_create(
        cls,
        model_dir: Path,
        corpus: Callable[[], Iterable[str]],
        gen_config: GeneratorConfig,
        vocab_size: int,
        seed: int,
        device: torch.device | str | None = None,
    ) -> tuple[LocalModels, list[str]]:
        """Load what ``model_dir`` holds, create what is missing, replace what is bad.

        The tokenizer is built from ``corpus()`` (and saved) when missing or bad; checkpoints
        are loaded only if they match the tokenizer and, for the generator, ``gen_config``.
        Never raises for bad files: each problem becomes a warning and fresh weights.
        """
        model_dir = Path(model_dir)
        device = torch.device(device) if device is not None else pick_device()
        warnings: list[str] = []
        _remove_stale_temporaries(model_dir)

        tok_path = model_dir / TOKENIZER_FILE
        tokenizer = None
        if tok_path.exists():
            try:
                tokenizer = TextTokenizer.load(tok_path)
            except TokenizerError as e:
                warnings.append(f"{e}; {_move_aside(tok_path)}; built a new tokenizer and fresh models")
            if tokenizer is not None and not tokenizer.is_current:
                # An older build does not split digits and quoted words one by one, which the
                # generator's run positions rely on: replace it (its checkpoints go with it).
                warnings.append(f"tokenizer {tok_path} splits text the old way; {_move_aside(tok_path)}; "
                                "built a new tokenizer and fresh models")
                tokenizer = None
        if tokenizer is None:
            tokenizer = TextTokenizer.build(corpus(), vocab_size=vocab_size)
            try:
                tokenizer.save(tok_path)
            except OSError as e:
                warnings.append(f"could not save the tokenizer to {tok_path}: {e.strerror or e}")

        v, tv = tokenizer.vocab_size, tokenizer.version
        cfg = replace(gen_config, vocab_size=v)

        def load(name: str, kind: str, build: Callable[[dict[str, Any]], M],
                 expected_config: GeneratorConfig | ClassifierConfig) -> M | None:
            path = model_dir / name
            if not path.exists():
                return None
            try:
                model, info = load_checkpoint(path, build, tv, expected_kind=kind)
            except CheckpointError as e:
                warnings.append(f"{e}; {_move_aside(path)}; the {kind} starts from fresh weights")
                return None
            if model.config != expected_config:
                warnings.append(
                    f"{kind} checkpoint {path} has config {info['config']}, settings ask for "
                    f"{expected_config.to_dict()}; {_move_aside(path)}; the {kind} starts from fresh weights"
                )
                return None
            return model

        generator = load(GENERATOR_FILE, "generator", lambda d: Generator(GeneratorConfig.from_dict(d)), cfg)
        router = load(ROUTER_FILE, "router", lambda d: TextClassifier(ClassifierConfig.from_dict(d)),
                      ClassifierConfig.router(v))
        validator = load(VALIDATOR_FILE, "validator", lambda d: TextClassifier(ClassifierConfig.from_dict(d)),
                         ClassifierConfig.validator(v))
        models = cls(
            tokenizer,
            generator or cls._fresh_generator(cfg, seed),
            router or cls._fresh_router(v, seed),
            validator or cls._fresh_validator(v, seed),
            device,
        )
        return models, warnings

    def save(self, model_dir: Path) -> None:
        """Write the tokenizer and the three checkpoints, each atomically."""
        model_dir = Path(model_dir)
        with self.lock:
            self.tokenizer.save(model_dir / TOKENIZER_FILE)
            tv = self.tokenizer.version
            for name, kind, model in (
                (GENERATOR_FILE, "generator", self.generator),
                (ROUTER_FILE, "router", self.router),
                (VALIDATOR_FILE, "validator", self.validator),
            ):
                save_checkpoint(model_dir / name, model, model.config.to_dict(), tv, kind=kind)
            if isinstance(self.lm, PretrainedLM):
                self.lm.save_adapter(model_dir / ADAPTER_FILE)

    # ------------------------------------------------------------------ inference

    def answer(self, query: str, context: str = "", max_new_tokens: int = 64, temperature: float = 0.0,
               seed: int | None = None, use_cache: bool = True,
               on_token: Callable[[str], object] | None = None,
               cancel: threading.Event | None = None) -> NeuralAnswer:
        """The answering model's answer to ``query`` (after ``context``), with its confidence;
        ``on_token`` gets the text as it is generated, ``cancel`` stops it between tokens."""
        with self.lock:
            return self.lm.answer(query, context, max_new_tokens, temperature, seed, use_cache,
                                  on_token=on_token, cancel=cancel)

    def _features(self, rows: Sequence[Sequence[float]], n: int, width: int) -> torch.Tensor:
        """Side features as a (n, width) float tensor on the models' device."""
        if width == 0:
            return torch.zeros(n, 0, device=self.device)
        try:
            f = torch.tensor([[float(x) for x in r] for r in rows], dtype=torch.float32)
        except (TypeError, ValueError):
            f = None
        if f is None or tuple(f.shape) != (n, width):
            raise ValueError(f"expected {n} feature rows of {width} numbers each")
        return f.to(self.device)

    def router_p(self, queries: Sequence[str], features: Sequence[Sequence[float]]) -> list[float]:
        """p(local answer acceptable) for each query; ``features`` rows hold ROUTER_FEATURES values."""
        if not queries:
            return []
        with self.lock, torch.inference_mode():
            r = self.router.eval()
            ids, mask = collate_texts(self.tokenizer, queries, CLASSIFIER_MAX_LEN, self.device)
            f = self._features(features, len(queries), r.config.n_features)
            logits, _ = r(ids, mask, f)
            return torch.sigmoid(logits).tolist()

    def validator_p(self, queries: Sequence[str], answers: Sequence[str],
                    features: Sequence[Sequence[float]]) -> list[float]:
        """p(answer agrees with the teacher) per (query, answer); rows hold VALIDATOR_FEATURES values."""
        if len(queries) != len(answers):
            raise ValueError(f"{len(queries)} queries but {len(answers)} answers")
        if not queries:
            return []
        with self.lock, torch.inference_mode():
            m = self.validator.eval()
            q_ids, q_mask = collate_texts(self.tokenizer, queries, CLASSIFIER_MAX_LEN, self.device)
            a_ids, a_mask = collate_texts(self.tokenizer, answers, CLASSIFIER_MAX_LEN, self.device)
            f = self._features(features, len(queries), m.config.n_features)
            logits, _ = m(q_ids, q_mask, f, a_ids, a_mask)
            return torch.sigmoid(logits).tolist()

    def info(self) -> dict:
        """Device, parameter counts, tokenizer version and vocabulary size, for stats and bench."""
        with self.lock:
            return {
                "device": describe_device(self.device),
                "params": {
                    "generator": self.generator.num_params(),
                    "router": self.router.num_params(),
                    "validator": self.validator.num_params(),
                },
                "tokenizer_version": self.tokenizer.version,
                "vocab_size": self.tokenizer.vocab_size,
                "generator_config": self.generator.config.to_dict(),
                "answer_model": self.lm.describe(),
            }


#: Where a data dir keeps the pre-trained model's conversion, unless the settings name a folder.
BASE_DIR = "base"


def load_pretrained(model_dir: Path, lora: LoRAConfig, seed: int, recipe: dict[str, Any],
                    device: torch.device | str, base_dir: Path | None = None) -> tuple[PretrainedLM | None, list[str]]:
    """The pre-trained model with the adapter ``model_dir`` holds (a fresh one when none), or None
    and why, when there is no base model. The GGUF file is converted on first use. A bad or
    mismatched adapter is moved aside and a fresh one starts, with a warning."""
    model_dir = Path(model_dir)
    try:
        base = ensure_converted(base_dir or model_dir / BASE_DIR)
        lm = PretrainedLM.load(base, lora, seed=seed, recipe=recipe, device=device)
    except (FileNotFoundError, ValueError, OSError) as e:
        return None, [f"the pre-trained model is unavailable ({e}); answering with the from-scratch generator"]
    warnings: list[str] = []
    path = model_dir / ADAPTER_FILE
    if path.exists():
        try:
            lm.load_adapter(path)
        except (ValueError, OSError) as e:
            warnings.append(f"{e}; {_move_aside(path)}; the adapter starts fresh")
    return lm, warnings
