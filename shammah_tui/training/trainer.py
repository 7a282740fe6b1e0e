"""BatchTrainer: trains the generator, router and validator on what the teacher taught.

Pure compute: it gets examples and labels, runs AdamW steps in the calling thread
(a worker thread in the app), streams `StepEvent`s to a callback, and returns a
`RunReport`. The engine owns persistence. Each model's loss is measured on the
same evaluation batch before the first step and after the last, so the reported
improvement is what this run did, not a curve read off noisy batches.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from shammah_tui.models.bundle import LocalModels
from shammah_tui.models.classifier import collate_texts
from shammah_tui.models.generator import encode_example
from shammah_tui.store.rows import ModelLoss, TrainingExample
from shammah_tui.training.events import RunReport, StepEvent, improvement_pct


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains: `Settings.train_config()` builds it (the settings hold the defaults)."""

    batch_size: int
    learning_rate: float
    classifier_learning_rate: float
    steps_per_run: int
    replay_fraction: float
    seed: int
    #: Router and validator are tiny; they get their own step count per run.
    classifier_steps: int = 30
    #: Examples in the fixed evaluation batch of each model.
    eval_size: int = 32


@dataclass(frozen=True)
class ClassifierExample:
    """One labelled input for the router (answer "") or the validator."""

    query: str
    answer: str
    features: tuple[float, ...]
    label: int


StepCallback = Callable[[StepEvent], None]


class Cancelled(Exception):
    """The run was cancelled between steps."""


class BatchTrainer:
    """Runs training steps over the three local models."""

    def __init__(self, models: LocalModels, config: TrainConfig) -> None:
        self.models = models
        self.config = config
        self._optimizers: dict[str, torch.optim.Optimizer] = {}

    def optimizer(self, name: str) -> torch.optim.Optimizer:
        """AdamW per model, built once (the first build imports torch._dynamo: do it early)."""
        if name not in self._optimizers:
            module = getattr(self.models, name)
            lr = self.config.learning_rate if name == "generator" else self.config.classifier_learning_rate
            self._optimizers[name] = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=0.01)
        return self._optimizers[name]


    # ------------------------------------------------------------------ the run
    def run(
        self,
        new: Sequence[TrainingExample],
        replay: Sequence[TrainingExample],
        router_examples: Sequence[ClassifierExample],
        validator_examples: Sequence[ClassifierExample],
        *,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunReport:
        """Train all three models; never raises for a cancel (status says so)."""
        started = time.perf_counter()
        rng = random.Random(self.config.seed + len(new) * 7919 + len(replay))
        report = RunReport(status="done", trained_ids=[e.id for e in new])
        try:
            if new or replay:
                self._train_generator(new, replay, rng, report, on_step, cancel)
            for name, data in (("router", router_examples), ("validator", validator_examples)):
                if len(data) >= 2:
                    self._train_classifier(name, data, rng, report, on_step, cancel)
        except Cancelled:
            report.status = "cancelled"
            report.trained_ids = []
        report.duration_s = time.perf_counter() - started
        if report.duration_s > 0:
            report.examples_per_s = report.examples / report.duration_s
        return report

    # ---------------------------------------------------------------- generator
    def _train_generator(self, new, replay, rng, report, on_step, cancel) -> None:
        cfg = self.config
        model = self.models.generator
        tok = self.models.tokenizer
        block = model.config.block_size
        pool = list(new) + list(replay)
        encoded = {e.id: encode_example(tok, e.query, e.context, e.answer) for e in pool}
        eval_ids = [e.id for e in rng.sample(pool, min(cfg.eval_size, len(pool)))]
        old = self._generator_loss([encoded[i] for i in eval_ids], block)
        opt = self.optimizer("generator")
        n_replay = int(round(cfg.batch_size * cfg.replay_fraction)) if replay else 0
        n_replay = min(n_replay, len(replay)) if new else min(cfg.batch_size, len(replay))
        n_new = cfg.batch_size - n_replay
        t0 = time.perf_counter()
        seen = 0
        for step in range(1, cfg.steps_per_run + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled
            batch = _draw(new, n_new, rng) + _draw(replay, n_replay, rng)
            x, y = _pad_pairs([encoded[e.id] for e in batch], tok.pad_id, block, model_device(model))
            # The lock is held per step, so a query can use the models between steps.
            with self.models.lock:
                model.train()
                _, loss = model(x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                model.eval()
            seen += len(batch)
            if on_step is not None:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                on_step(StepEvent("generator", step, cfg.steps_per_run, float(loss.item()), rate))
        report.steps += cfg.steps_per_run
        report.examples += seen
        new_loss = self._generator_loss([encoded[i] for i in eval_ids], block)
        report.losses["generator"] = ModelLoss(old, new_loss, improvement_pct(old, new_loss))

    def generator_loss(self, examples: Sequence[TrainingExample]) -> float:
        """The generator's loss on `examples` (answer tokens only), without training."""
        tok = self.models.tokenizer
        pairs = [encode_example(tok, e.query, e.context, e.answer) for e in examples]
        return self._generator_loss(pairs, self.models.generator.config.block_size)

    @torch.no_grad()
    def _generator_loss(self, pairs, block) -> float:
        model = self.models.generator
        x, y = _pad_pairs(pairs, self.models.tokenizer.pad_id, block, model_device(model))
        with self.models.lock:
            model.eval()
            _, loss = model(x, y)
        return float(loss.item())

    # -------------------------------------------------------------- classifiers
    def _train_classifier(self, name, data, rng, report, on_step, cancel) -> None:
        cfg = self.config
        model = getattr(self.models, name)
        eval_batch = rng.sample(list(data), min(cfg.eval_size, len(data)))
        old = self._classifier_loss(name, eval_batch)
        opt = self.optimizer(name)
        t0 = time.perf_counter()
        seen = 0
        for step in range(1, cfg.classifier_steps + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled
            batch = _draw(data, cfg.batch_size, rng)
            with self.models.lock:
                model.train()
                _, loss = self._classifier_forward(name, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                model.eval()
            seen += len(batch)
            if on_step is not None:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                on_step(StepEvent(name, step, cfg.classifier_steps, float(loss.item()), rate))
        report.steps += cfg.classifier_steps
        new_loss = self._classifier_loss(name, eval_batch)
        report.losses[name] = ModelLoss(old, new_loss, improvement_pct(old, new_loss))

    def _classifier_forward(self, name, batch):
        model = getattr(self.models, name)
        tok = self.models.tokenizer
        device = model_device(model)
        q_ids, q_mask = collate_texts(tok, [b.query for b in batch], 64)
        features = torch.tensor([list(b.features) for b in batch], dtype=torch.float32)
        labels = torch.tensor([float(b.label) for b in batch])
        kwargs = {}
        if name == "validator":
            a_ids, a_mask = collate_texts(tok, [b.answer for b in batch], 64)
            kwargs = {"a_ids": a_ids.to(device), "a_mask": a_mask.to(device)}
        return model(q_ids.to(device), q_mask.to(device), features.to(device),
                     labels=labels.to(device), **kwargs)

    @torch.no_grad()
    def _classifier_loss(self, name, batch) -> float:
        with self.models.lock:
            getattr(self.models, name).eval()
            _, loss = self._classifier_forward(name, batch)
        return float(loss.item())


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _draw(items: Sequence, n: int, rng: random.Random) -> list:
    """n items: each once in random order if there are enough, else with repeats."""
    if n <= 0 or not items:
        return []
    if len(items) >= n:
        return rng.sample(list(items), n)
    return [rng.choice(items) for _ in range(n)]


def _pad_pairs(pairs, pad_id: int, block: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (input, target) id lists to the longest in the batch: (B, T) each."""
    length = min(block, max(len(x) for x, _ in pairs))
    xs = torch.full((len(pairs), length), pad_id, dtype=torch.long)
    ys = torch.full((len(pairs), length), -100, dtype=torch.long)
    for row, (x, y) in enumerate(pairs):
        x, y = x[:length], y[:length]
        xs[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        ys[row, : len(y)] = torch.tensor(y, dtype=torch.long)
    return xs.to(device), ys.to(device)
