"""BatchTrainer: trains the generator, router and validator on what the teacher taught.

Pure compute: it gets examples and labels, runs AdamW steps in the calling thread
(a worker thread in the app), streams `StepEvent`s to a callback, and returns a
`RunReport`. The engine owns persistence. Each model's loss is measured on the
same evaluation batch before the first step and after the last, so the reported
improvement is what this run did, not a curve read off noisy batches; for the
generator that batch is held-out questions when the caller gives some.

A run's generator steps follow what it brings: each new example is seen about
`train_passes` times (`TrainConfig.generator_steps`), under a learning rate that
warms up over the optimizer's first steps and then falls on a cosine within each run
(`get_lr`), as in the recipe of docs/skills-study.md. The rest of each batch is replayed earlier
examples (`training.replay`: by stratum), more of it in a run that brings few new examples next to
what it can replay (`TrainConfig.replay_share`), so a few hundred forwarded questions do not
overwrite thousands taught.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import torch

from shammah_tui.models.answer_model import AnswerModel, Pair
from shammah_tui.models.bundle import LocalModels
from shammah_tui.models.classifier import collate_texts
from shammah_tui.models.generator import IGNORE_INDEX
from shammah_tui.core.records import ModelLoss, TrainingExample
from shammah_tui.core.runs import RunReport, StepEvent, improvement_pct
from shammah_tui.training.replay import ReplayPool


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains: `Settings.train_config()` builds it (the settings hold the defaults)."""

    batch_size: int
    learning_rate: float
    classifier_learning_rate: float
    replay_fraction: float
    seed: int
    #: The most of each batch a run replays when its new examples are few next to what it can replay
    #: (`replay_share`); its steps follow its new examples, so a small run takes more of them.
    max_replay_fraction: float = 0.75
    #: How many times a run's generator sees each new example, on average (the recipe's 16).
    train_passes: float = 26.0
    #: Bounds on a run's generator steps: a handful of examples still gets a real run, and a
    #: teaching session's thousands do not hold the training lock for an hour.
    min_steps_per_run: int = 20
    max_steps_per_run: int = 2000
    #: Above 0: exactly this many generator steps per run, whatever it brings (the old fixed count).
    steps_per_run: int = 0
    #: The generator's optimizer warms up linearly over its first steps (while its moments are new),
    #: over at most a fifth of the run it starts in.
    warmup_steps: int = 100
    #: Within each run the learning rate falls on a cosine to this share of `learning_rate`.
    lr_min_fraction: float = 0.1
    #: Router and validator are tiny; they get their own step count per run.
    classifier_steps: int = 30
    #: Examples in the fixed evaluation batch of the router and the validator.
    eval_size: int = 32
    #: Examples the generator's loss is measured on before and after a run.
    generator_eval_size: int = 128

    def replay_share(self, n_new: int, n_replay: int) -> float:
        """The replayed share of each batch of a run with these many new and replayable examples.

        ``replay_fraction`` while the new examples are as many as the replayable ones; as they get
        fewer, ``1 - n_new / n_replay``, up to ``max_replay_fraction``. A few hundred forwarded
        questions after thousands taught are a small run: at a quarter replayed, three quarters of
        every step went to the traffic and the skills' held-out accuracy fell run after run.
        """
        if not n_replay:
            return 0.0
        if not n_new:
            return 1.0
        return max(self.replay_fraction, min(self.max_replay_fraction, 1 - n_new / n_replay))

    def batch_split(self, n_new: int, n_replay: int) -> tuple[int, int]:
        """(new, replayed) examples in each generator batch of a run with these many of each."""
        if not n_new:
            return 0, min(self.batch_size, n_replay)
        replayed = min(int(round(self.batch_size * self.replay_share(n_new, n_replay))), n_replay)
        return self.batch_size - replayed, replayed

    def generator_steps(self, n_new: int, n_replay: int = 0) -> int:
        """Generator steps of a run with ``n_new`` new and ``n_replay`` replayable examples.

        ``ceil(train_passes * n_new / new per batch)``, new per batch being batch_size x
        (1 - replay_share), or all of it when there is nothing to replay; clamped to
        [min_steps_per_run, max_steps_per_run]. A replay-only run counts its replayed examples.
        ``steps_per_run`` > 0 fixes the count instead. 0 when there is nothing to train on.
        """
        if not n_new and not n_replay:
            return 0
        if self.steps_per_run > 0:
            return self.steps_per_run
        per_batch = self.batch_split(n_new, n_replay)[0] or self.batch_size
        steps = math.ceil(self.train_passes * (n_new or n_replay) / per_batch)
        return max(self.min_steps_per_run, min(self.max_steps_per_run, steps))


def get_lr(step: int, steps: int, base: float, *, optimizer_step: int, warmup: int,
           min_fraction: float) -> float:
    """Learning rate of a run's ``step`` (0-based) of ``steps``.

    A cosine from ``base`` down to ``base * min_fraction`` over the run; during the optimizer's
    first ``warmup`` steps (``optimizer_step`` counts them across runs), a linear ramp instead.
    """
    if optimizer_step < warmup:
        return base * (optimizer_step + 1) / warmup
    f = min(step / max(steps, 1), 1.0)
    return base * (min_fraction + (1.0 - min_fraction) * 0.5 * (1.0 + math.cos(math.pi * f)))


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
        self._optimized_lm: AnswerModel | None = None
        self.generator_steps_done = 0
        """Optimizer steps the generator has taken with this trainer (the warm-up counts them)."""

    def optimizer(self, name: str) -> torch.optim.Optimizer:
        """AdamW per model, built once (the first build imports torch._dynamo: do it early)."""
        if name == "generator" and name in self._optimizers and self._optimized_lm is not self.models.lm:
            self.forget_optimizer(name)  # the models answer with another model now (LocalModels.use)
        if name not in self._optimizers:
            if name == "generator":
                lm = self.models.lm
                # β2 0.98: the second moment follows a run's changing mix of examples sooner.
                opt = torch.optim.AdamW(lm.trainable_parameters(), lr=self.lm_config().learning_rate,
                                        weight_decay=0.01, betas=(0.9, 0.98))
                self._optimized_lm = lm
            else:
                module = getattr(self.models, name)
                opt = torch.optim.AdamW(module.parameters(), lr=self.config.classifier_learning_rate,
                                        weight_decay=0.01)
            self._optimizers[name] = opt
        return self._optimizers[name]

    def forget_optimizer(self, name: str) -> None:
        """Drop a model's optimizer state (its weights were reset or replaced): the next run builds
        a fresh one and warms up again."""
        self._optimizers.pop(name, None)
        if name == "generator":
            self.generator_steps_done = 0

    def lm_config(self) -> TrainConfig:
        """This trainer's config with the answering model's own recipe (an adapter's learning rate
        and passes) in place of the generator's."""
        recipe = {k: v for k, v in self.models.lm.recipe.items() if k in {f.name for f in fields(TrainConfig)}}
        return replace(self.config, **recipe) if recipe else self.config

    # ------------------------------------------------------------------ the run
    def run(
        self,
        new: Sequence[TrainingExample],
        replay: Sequence[TrainingExample] | ReplayPool,
        router_examples: Sequence[ClassifierExample],
        validator_examples: Sequence[ClassifierExample],
        *,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
        held_out: Sequence[TrainingExample] | None = None,
    ) -> RunReport:
        """Train all three models; never raises for a cancel (status says so).

        ``held_out``: examples this run never trains on; the generator's loss before and after
        is measured on (up to generator_eval_size of) them, else on a sample of its training data.
        """
        started = time.perf_counter()
        rng = random.Random(self.config.seed + len(new) * 7919 + len(replay))
        report = RunReport(status="done", trained_ids=[e.id for e in new])
        processed = 0
        try:
            if new or replay:
                processed += self._train_generator(new, replay, held_out or (), rng, report, on_step, cancel)
            for name, data in (("router", router_examples), ("validator", validator_examples)):
                if len(data) >= 2:
                    processed += self._train_classifier(name, data, rng, report, on_step, cancel)
        except Cancelled:
            report.status = "cancelled"
            report.trained_ids = []
        report.duration_s = time.perf_counter() - started
        if report.duration_s > 0:
            report.examples_per_s = processed / report.duration_s
        return report

    # ---------------------------------------------------------------- generator
    def _encode(self, e: TrainingExample) -> Pair:
        return self.models.lm.encode_example(e.query, e.context, e.answer)

    def _train_generator(self, new: Sequence[TrainingExample], replay: Sequence[TrainingExample] | ReplayPool,
                         held_out: Sequence[TrainingExample], rng: random.Random, report: RunReport,
                         on_step: StepCallback | None, cancel: threading.Event | None) -> int:
        """The answering model's steps; returns how many examples they processed."""
        cfg = self.lm_config()
        lm = self.models.lm
        pad, device = lm.pad_id, lm.device
        # A plain list replays every example alike; the engine's pool keeps each stratum's share.
        replayed = replay if isinstance(replay, ReplayPool) else ReplayPool.uniform(replay)
        pool = list(new) + list(replayed)
        encoded = {e.id: self._encode(e) for e in pool}
        trained = {(e.query, e.context) for e in pool}
        unseen = [e for e in held_out if (e.query, e.context) not in trained]
        if unseen:
            chosen = rng.sample(unseen, min(cfg.generator_eval_size, len(unseen)))
            eval_pairs = [self._encode(e) for e in chosen]
            measured_on = f"held-out: {len(chosen)} questions not trained on"
        else:
            chosen = rng.sample(pool, min(cfg.generator_eval_size, len(pool)))
            eval_pairs = [encoded[e.id] for e in chosen]
            measured_on = f"training batch: {len(chosen)} examples"
        old = self._generator_loss(eval_pairs)
        opt = self.optimizer("generator")
        n_new, n_replay = cfg.batch_split(len(new), len(replay))
        steps = cfg.generator_steps(len(new), len(replay))
        # A short first run must not be spent warming up: the ramp takes at most a fifth of it.
        warmup = min(cfg.warmup_steps, max(1, steps // 5))
        t0 = time.perf_counter()
        seen = 0
        drawn: set[int] = set()
        for step in range(steps):
            if cancel is not None and cancel.is_set():
                raise Cancelled
            batch = _draw(new, n_new, rng) + replayed.draw(n_replay, rng)
            drawn.update(e.id for e in batch)
            chunks = length_chunks([encoded[e.id] for e in batch])
            lr = get_lr(step, steps, cfg.learning_rate, optimizer_step=self.generator_steps_done,
                        warmup=warmup, min_fraction=cfg.lr_min_fraction)
            for group in opt.param_groups:
                group["lr"] = lr
            # The lock is held per step, so a query can use the models between steps.
            with self.models.lock:
                lm.set_training(True)
                opt.zero_grad(set_to_none=True)
                loss = accumulate_gradient(lm, chunks, pad, device)
                torch.nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], 1.0)
                opt.step()
                lm.set_training(False)
            self.generator_steps_done += 1
            seen += len(batch)
            if on_step is not None:  # loss.item() waits for the step: only when someone listens
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                on_step(StepEvent(lm.loss_name, step + 1, steps, float(loss.item()), rate))
        report.steps += steps
        report.examples += len(drawn)
        new_loss = self._generator_loss(eval_pairs)
        report.losses[lm.loss_name] = ModelLoss(old, new_loss, improvement_pct(old, new_loss), measured_on)
        return seen

    def generator_loss(self, examples: Sequence[TrainingExample]) -> float:
        """The generator's loss on `examples` (answer tokens only), without training."""
        return self._generator_loss([self._encode(e) for e in examples])

    @torch.no_grad()
    def _generator_loss(self, pairs: Sequence[Pair], chunk: int = 64) -> float:
        """Mean loss over the answer tokens of ``pairs``, in chunks (each padded to its longest)."""
        lm = self.models.lm
        pad, device = lm.pad_id, lm.device
        total, count = 0.0, 0
        for i in range(0, len(pairs), chunk):
            x, y = _pad_pairs(pairs[i:i + chunk], pad, device)
            n = int((y != IGNORE_INDEX).sum())
            with self.models.lock:
                lm.set_training(False)
                loss = lm.answer_loss(x, y)
            total += float(loss) * n
            count += n
        return total / count if count else 0.0

    # -------------------------------------------------------------- classifiers
    def _train_classifier(self, name: str, data: Sequence[ClassifierExample], rng: random.Random,
                          report: RunReport, on_step: StepCallback | None,
                          cancel: threading.Event | None) -> int:
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
        report.losses[name] = ModelLoss(old, new_loss, improvement_pct(old, new_loss),
                                        f"training batch: {len(eval_batch)} examples")
        return seen

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


#: What one more forward and backward pass costs, in padded tokens (a pass of 16 x 28 tokens took
#: 18 ms and one of 64 x 28 took 64 ms on one CPU thread: ~3 ms, ~100 tokens, of fixed cost).
PASS_COST_TOKENS = 128


def _supervised(targets: Sequence[int]) -> int:
    return sum(t != IGNORE_INDEX for t in targets)


def length_chunks(pairs: Sequence[Pair]) -> list[list[Pair]]:
    """The batch as one or two chunks of similar length, whichever pads fewer tokens.

    Each chunk is padded to its own longest example: one long example no longer makes a whole
    batch of short ones as long as itself (a skill question is ~16 tokens, a family pair up to ~40).
    """
    ordered = sorted(pairs, key=lambda p: len(p[0]))
    lengths = [len(x) for x, _ in ordered]
    n = len(ordered)
    best_cost, best_split = n * lengths[-1] if n else 0, n
    for split in range(1, n):
        cost = split * lengths[split - 1] + (n - split) * lengths[-1] + PASS_COST_TOKENS
        if cost < best_cost:
            best_cost, best_split = cost, split
    return [chunk for chunk in (ordered[:best_split], ordered[best_split:]) if chunk]


def accumulate_gradient(model: AnswerModel, chunks: Sequence[Sequence[Pair]], pad: int,
                        device: torch.device | str) -> torch.Tensor:
    """Backward of the batch's mean answer-token loss, chunk by chunk; returns that mean.

    Each chunk's mean is weighted by its share of the answer tokens, so the gradient is the one
    the whole batch would give in one pass."""
    counts = [sum(_supervised(y) for _, y in chunk) for chunk in chunks]
    total = max(sum(counts), 1)
    loss = torch.zeros((), device=device)
    for chunk, count in zip(chunks, counts):
        x, y = _pad_pairs(chunk, pad, device)
        part = model.answer_loss(x, y) * (count / total)
        part.backward()
        loss = loss + part.detach()
    return loss


def _pad_pairs(pairs: Sequence[Pair], pad_id: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (input, target) id lists to the longest in the batch: (B, T) each.

    Each pair is already at most block_size long (encode_example cuts it).
    """
    length = max(len(x) for x, _ in pairs)
    # One tensor from nested lists: much cheaper than filling rows one by one.
    xs = torch.tensor([x + [pad_id] * (length - len(x)) for x, _ in pairs], dtype=torch.long)
    ys = torch.tensor([y + [IGNORE_INDEX] * (length - len(y)) for _, y in pairs], dtype=torch.long)
    return xs.to(device), ys.to(device)
