"""One full training run: evaluate, train the generator, relabel, train the classifiers, answer
the skills' held-out sets.

Runs synchronously in a worker thread. Labels come from agreement with the
teacher's stored answers (docs/ARCHITECTURE.md): the generator is asked each evaluated
question as if it were new, and its answer is compared with the teacher's.

- before training, on new examples it has never seen (honest negatives early on);
- after training, on a sample of everything it was trained on.

Validator negatives also come from mismatched and corrupted pairs. The router and the validator
are fitted on these labels only; the answers to questions the generator never trained on (the
skills' held-out sets, the exam of forwarded questions held out of training) are returned as
calibration points, never fitted on: the coordinator calibrates the validator threshold on them
with those of earlier runs (`TrainingCoordinator.calibrate_validator`).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from shammah_tui.models.bundle import LocalModels
from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.learned import LearnedIndex
from shammah_tui.core.kinds import TIERS, Tier
from shammah_tui.pipeline.local import ROUTER_FEATURE_NAMES, VALIDATOR_FEATURE_NAMES, router_features
from shammah_tui.pipeline.thresholds import Thresholds
from shammah_tui.pipeline.templates import template_answer
from shammah_tui.core.text import normalize_query
from shammah_tui.core.records import CalibrationPoint, Label, TrainingExample
from shammah_tui.core.runs import RunReport, StepEvent
from shammah_tui.training.exam import EXAM_ORIGINS, exam
from shammah_tui.training.held_out import HeldOutAnswer, answer_held_out, as_examples, held_out_items
from shammah_tui.training.replay import ReplayPool
from shammah_tui.training.trainer import BatchTrainer, Cancelled, ClassifierExample

#: Evaluations per run, before and after training.
PRE_EVAL = 24
POST_EVAL = 48
#: Share of the new examples taught on purpose (not the exam's kind) held out of one run, with at
#: least this many of them: they are trained on at the next run.
HOLD_OUT = 0.25
MIN_FOR_HOLD_OUT = 8
#: Origins of neural labels that are calibration evidence (answers to questions not trained on,
#: judged by the teacher): the validator is never fitted on them, so it is never calibrated on
#: what it was fitted on.
CALIBRATING_ORIGINS = frozenset({"held_out", "spot_check"})
#: Longest answer generated for a held-out skill question (the longest, a reversed word, is ~10).
SKILL_ANSWER_TOKENS = 24


@dataclass
class JobResult:
    report: RunReport
    labels: list[Label] = field(default_factory=list)
    thresholds: Thresholds | None = None
    """The router's state after the run (the validator's threshold is the coordinator's to set)."""
    held_out: list[HeldOutAnswer] = field(default_factory=list)
    """The trained generator on every skill's held-out set."""
    held_out_losses: dict[str, float] = field(default_factory=dict)
    """The generator's loss on each skill's held-out answers."""
    new_points: list[CalibrationPoint] = field(default_factory=list)
    """Answers to questions not trained on (skills' held-out sets, the exam of forwarded questions):
    what the validator threshold is calibrated on, with the points of earlier runs."""


def evaluate(models: LocalModels, index: LearnedIndex, examples: Sequence[TrainingExample],
             origin: str, max_new_tokens: int, cancel: threading.Event | None,
             tier_order: Sequence[Tier] = TIERS) -> list[Label]:
    """Ask each example's question as if new; label router and validator inputs by agreement.
    Tiers outside `tier_order` take no part, in the router's features as in its decisions."""
    labels: list[Label] = []
    for ex in examples:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        norm = normalize_query(ex.query)
        hit = index.lookup(norm, ex.context_key, exclude_self=True) if "learned" in tier_order else None
        template = template_answer(ex.query) if "template" in tier_order else None
        features = router_features(models, ex.query, hit, template)
        neural = models.answer(ex.query, ex.context, max_new_tokens=max_new_tokens)
        neural_ok = bool(neural.text.strip()) and agreement(neural.text, ex.answer).agrees
        labels.append(Label(ex.query, neural.text, "neural", int(neural_ok), origin, ex.context_key,
                            neural.confidence, [neural.confidence, 1.0, 0.0]))
        template_ok = template is not None and agreement(template.answer, ex.answer).agrees
        learned_ok = (index.confident(hit) and hit is not None
                      and agreement(hit.entry.answer, ex.answer).agrees)
        # The router's label: could a local tier have answered this new question correctly?
        labels.append(Label(ex.query, "", "router", int(neural_ok or template_ok or learned_ok),
                            origin, ex.context_key, None, features))
        # And the same question asked again: the exact learned answer is the teacher's own.
        repeat = [1.0, 1.0, features[2], features[3]]
        labels.append(Label(ex.query, "", "router", 1, origin + "_repeat", ex.context_key, None, repeat))
    return labels


def fit_labels(old: Sequence[Label], new: Sequence[Label]) -> list[Label]:
    """The labels the router and validator are fitted on: never a neural label that calibrates."""
    return [l for l in [*old, *new] if not (l.source == "neural" and l.origin in CALIBRATING_ORIGINS)]


def validator_examples(labels: Sequence[Label], rng: random.Random) -> list[ClassifierExample]:
    """Real neural answers with their labels, true pairs, and mismatched / corrupted negatives.

    Side features follow pipeline.local.VALIDATOR_FEATURE_NAMES (confidence, neural, similarity).
    """
    neural = [l for l in labels if l.source == "neural" and l.answer.strip()
              and len(l.features) == len(VALIDATOR_FEATURE_NAMES)]
    truths = [l for l in labels if l.source == "truth"]
    out = [ClassifierExample(l.query, l.answer, tuple(l.features), l.label) for l in neural]
    confidences = [l.features[0] for l in neural] or [0.5]
    for t in truths:
        out.append(ClassifierExample(t.query, t.answer, (rng.choice(confidences), 1.0, 0.0), 1))
        out.append(ClassifierExample(t.query, t.answer, (1.0, 0.0, 1.0), 1))
        other = rng.choice(truths)
        if other.answer != t.answer and not agreement(other.answer, t.answer).agrees:
            out.append(ClassifierExample(t.query, other.answer, (rng.choice(confidences), 1.0, 0.0), 0))
        corrupted = corrupt(t.answer, rng)
        if corrupted and not agreement(corrupted, t.answer).agrees:
            out.append(ClassifierExample(t.query, corrupted, (rng.choice(confidences), 1.0, 0.0), 0))
    return out


def corrupt(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: a changed number, or words dropped."""
    digits = [m.start() for m in re.finditer(r"\d", answer)]
    if digits:
        i = rng.choice(digits)
        return answer[:i] + str((int(answer[i]) + rng.randint(1, 9)) % 10) + answer[i + 1:]
    words = answer.split()
    if len(words) >= 2:
        keep = sorted(rng.sample(range(len(words)), max(1, len(words) // 2)))
        return " ".join(words[k] for k in keep)
    return answer[::-1] if len(answer) > 1 and answer[::-1] != answer else ""


@dataclass(frozen=True)
class TrainingJob:
    """What one run works on: the models, the examples, the labels so far, and where to report."""

    models: LocalModels
    trainer: BatchTrainer
    index: LearnedIndex
    new: Sequence[TrainingExample]
    replay: Sequence[TrainingExample] | ReplayPool
    old_labels: Sequence[Label]
    thresholds: Thresholds
    tier_order: tuple[Tier, ...]
    max_new_tokens: int
    seed: int
    on_step: Callable[[StepEvent], None] | None = None
    cancel: threading.Event | None = None


def run_training_job(job: TrainingJob) -> JobResult:
    """Everything a run does, in order; a cancel returns status 'cancelled' and no labels.

    The report's duration is the whole job's: the evaluations and the classifiers' steps take as
    long as the generator's, and the stored run (started → finished) counts them too.
    """
    started = time.perf_counter()
    result = _run_job(job)
    result.report.duration_s = time.perf_counter() - started
    return result


def _run_job(job: TrainingJob) -> JobResult:
    rng = random.Random(job.seed)
    new = list(job.new)
    # The exam sits every run out, and a share of what was taught on purpose sits this run out:
    # asked after training, they show how the models do on questions they have not trained on,
    # which is what the validator threshold and the regions are calibrated on. They stay queued
    # (exam.py says until when; the taught ones until the next run).
    taught = [e for e in new if e.origin not in EXAM_ORIGINS]
    held_new = exam(new) + (rng.sample(taught, int(len(taught) * HOLD_OUT)) if len(taught) >= MIN_FOR_HOLD_OUT else [])
    held_ids = {e.id for e in held_new}
    train_new = [e for e in new if e.id not in held_ids]
    try:
        pre = evaluate(job.models, job.index, rng.sample(train_new, min(PRE_EVAL, len(train_new))),
                       "pre_eval", job.max_new_tokens, job.cancel, job.tier_order)
        # The generator's before -> after is measured on questions it does not train on here: the
        # held-back new ones and the skills' held-out sets.
        unseen = held_new + as_examples(held_out_items())
        report = job.trainer.run(train_new, job.replay, [], [], on_step=job.on_step, cancel=job.cancel,
                                 held_out=unseen)
        if report.status != "done":
            return JobResult(report)
        pool = train_new + list(job.replay)
        post = evaluate(job.models, job.index, rng.sample(pool, min(POST_EVAL, len(pool))),
                        "self_eval", job.max_new_tokens, job.cancel, job.tier_order)
        held = evaluate(job.models, job.index, held_new, "held_out", job.max_new_tokens, job.cancel,
                        job.tier_order)
        truths = [Label(e.query, e.answer, "truth", 1, "truth", e.context_key) for e in pool]
        # The held-back questions (and the skills' held-out sets, below) are never fitted on: they
        # are what the validator threshold is calibrated on.
        history = fit_labels(job.old_labels, pre + post)
        router_data = [ClassifierExample(l.query, "", tuple(l.features), l.label)
                       for l in history if l.source == "router" and len(l.features) == len(ROUTER_FEATURE_NAMES)]
        validator_data = validator_examples(history + truths, rng)
        classifiers = job.trainer.run([], [], router_data, validator_data, on_step=job.on_step,
                                      cancel=job.cancel)
        if classifiers.status != "done":
            return JobResult(classifiers)
        report.losses.update(classifiers.losses)
        report.steps += classifiers.steps
        skill_items = held_out_items(per_skill=job.models.lm.recipe.get("held_out_per_skill"))
        # A skill's answer is a few tokens: a short budget keeps this a few seconds.
        skills = answer_held_out(job.models, skill_items, min(job.max_new_tokens, SKILL_ANSWER_TOKENS), job.cancel)
        losses = {name: job.trainer.generator_loss(as_examples([i for i in skill_items if i.skill == name]))
                  for name in {i.skill for i in skill_items}}
        points = [answer.point() for answer in skills]
        points += [CalibrationPoint(l.query, l.answer, list(l.features), bool(l.label), "held_new")
                   for l in held if l.source == "neural" and l.answer.strip()]
        new_thresholds = replace(
            job.thresholds, router_trained=job.thresholds.router_trained or bool(router_data),
            validator_trained=job.thresholds.validator_trained or bool(validator_data), generator_trained=True)
        return JobResult(report, pre + post + held, new_thresholds, skills, losses, points)
    except Cancelled:
        return JobResult(RunReport(status="cancelled"))
