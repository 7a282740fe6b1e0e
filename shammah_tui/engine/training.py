"""The training coordinator: when runs start, one at a time per data dir, and what they leave behind.

A run takes the data dir's training lock (another process training means this run is skipped),
takes in what another process saved, trains in a thread of its own at a lower CPU priority
(`training.job`; on a busy machine answers and the UI come first), saves the
checkpoints, stores the labels and losses, and moves the thresholds. Auto-training starts a run
when the queue reaches the batch size; after a failed or skipped run it waits for a batch of new
examples instead of retrying after every query.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import threading
from collections import deque
from dataclasses import replace
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from shammah_tui.engine.model_host import ModelHost
from shammah_tui.core.events import EngineEvent, Notice, TrainingFinished, TrainingStarted, TrainingStep
from shammah_tui.lock import DataDirLock
from shammah_tui.pipeline.calibration import calibrate, served_error_threshold
from shammah_tui.pipeline.learned import LearnedIndex
from shammah_tui.pipeline.local import LocalAnswerer, LocalDecision
from shammah_tui.pipeline.thresholds import CLOSED, Thresholds
from shammah_tui.pipeline.pair_features import FEATURE_VERSION, refreshed_features
from shammah_tui.pipeline.regions import serving_threshold
from shammah_tui.settings import Settings
from shammah_tui.pipeline.canonical import canonical_key
from shammah_tui.core.records import CalibrationPoint, LossPoint, PairLabel
from shammah_tui.store import Store
from shammah_tui.core.runs import RunReport, StepEvent
from shammah_tui.training.exam import queue_counts

if TYPE_CHECKING:
    from shammah_tui.training.replay import ReplayPool

Emit = Callable[[EngineEvent], None]
#: Training examples loaded to replay per run, drawn by stratum from everything trained before
#: (`training.replay`). A long run draws up to 2,000 steps x 16 replayed examples (a small run,
#: fewer steps of up to 48): a pool of 256 had each one seen about 125 times in a teaching round,
#: half of every batch spent on memorizing them (held-out arithmetic stalled near 0.5); this many
#: keeps a replayed example to a few draws a run.
REPLAY_POOL = 16_384
#: Loss points kept per run for the charts (every step is streamed; the store keeps a sample).
LOSS_POINTS_EVERY = 2
#: Points (newest) the validator threshold is calibrated on, across runs.
VALIDATOR_POINTS = 2000
#: Pair labels (newest) the semantic store's threshold is calibrated on.
ACCEPTANCE_LABELS = 4000
#: Where pair labels that may calibrate come from (paraphrase groups the teacher wrote do not:
#: they are not the traffic the threshold serves).
CALIBRATING_ORIGINS = ("forward", "spot_check")
#: Queries that reached the learned tier, remembered for its threshold (newest last).
LEARNED_WINDOW = 4000
#: The acceptance threshold is recomputed after this many such queries (and after every label).
RECALIBRATE_EVERY = 25
#: Where the store keeps that window: -1 for an exact hit, else the best candidate's p.
WINDOW_KEY = "learned_window"
#: The pair-feature version the stored labels' features were computed under.
FEATURE_VERSION_KEY = "pair_feature_version"
#: Said when a run is skipped because another process holds the data dir's training lock.
TRAINING_ELSEWHERE = ("Another process is training on this data dir; this run was skipped "
                      "(the queued examples stay queued for the next run).")


#: How much nicer than the rest of the process the training thread runs. It changes nothing on
#: an idle machine; when the cores are all busy (another CPU-bound process), the UI thread, not
#: training, gets the CPU when an answer has to be drawn.
TRAINING_NICENESS = 10


def lower_thread_priority(niceness: int = TRAINING_NICENESS) -> None:
    """Make the calling thread nicer by `niceness` (Linux, where nice is per thread; elsewhere
    nothing). A thread can never be made less nice again without privileges, hence a thread kept
    for training alone."""
    if not sys.platform.startswith("linux"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + niceness))
    except OSError:
        pass


class TrainingCoordinator:
    """Starts, runs, cancels and records training runs; owns the validator's calibration points."""

    def __init__(self, *, data_dir: Path, settings: Settings, store: Store, host: ModelHost,
                 local: LocalAnswerer, rng: random.Random, emit: Emit) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.store = store
        self.host = host
        self.local = local
        self.rng = rng
        self._emit = emit
        self.pair_labels: list[PairLabel] = []
        """Labels of stored answers for new queries that no model was fitted on: what the semantic
        store's threshold is calibrated on (newest last, at most ACCEPTANCE_LABELS)."""
        self.validator_points = 0
        """How many points the validator threshold was last calibrated on."""
        self.learned_window: deque[float] = deque(maxlen=LEARNED_WINDOW)
        """The queries that reached the learned tier: -1 for an exact hit (right by construction),
        else the acceptance p of the best stored candidate, served or not."""
        self._unseen = 0
        self._unseen_points = 0
        self._task: asyncio.Task[RunReport | None] | None = None
        self._cancel = threading.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shammah-training",
                                          initializer=lower_thread_priority)
        #: Queue size auto-training waits for after a failed or skipped run (0: batch_size).
        self._auto_train_after = 0

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, trigger: str = "manual") -> asyncio.Task[RunReport | None] | None:
        """Start a run in the background (None if one is already running)."""
        if self.running:
            return None
        self._cancel.clear()
        self._task = asyncio.ensure_future(self._run(trigger))
        return self._task

    async def train(self, trigger: str = "manual") -> RunReport | None:
        """Train now and wait for the run (joins a run already going).

        Cancelling the waiter (a teaching session stopped while its `train` tool waits) leaves
        the run going: it ends as every run does, announced, or when `cancel` asks it to.
        """
        task = self._task if self.running else self.start(trigger)
        return await asyncio.shield(task) if task is not None else None

    def cancel(self) -> bool:
        if not self.running:
            return False
        self._cancel.set()
        return True

    async def close(self) -> None:
        """Cancel a running run and wait until its thread has stopped."""
        if self._task is not None and not self._task.done():
            self._cancel.set()
            try:
                await self._task
            except Exception:
                pass
        self._thread.shutdown(wait=False)

    async def trainable_queued(self) -> int:
        """Queued examples a run would train on: the exam's (exam.py) wait for no run."""
        return (await queue_counts(self.store))["queued"]

    async def maybe_auto_train(self, wait: bool) -> None:
        """Start a run when the queue holds a batch (and wait for it, with `wait`)."""
        if self.running:
            return
        if await self.trainable_queued() >= max(self.settings.batch_size, self._auto_train_after):
            task = self.start("auto")
            if wait and task is not None:
                await task

    # ------------------------------------------------------------ calibration
    async def add_validator_point(self, point: CalibrationPoint, *, at_once: bool = True) -> None:
        """A spot-checked neural answer moves the validator threshold at once, not at the next run; a
        forward's draft (`at_once` False) is evidence gathered in the background: the threshold and
        regions are recalibrated every RECALIBRATE_EVERY such points."""
        await self.store.add_calibration_points("validator", [point])
        self._unseen_points += 1
        if at_once or self._unseen_points >= RECALIBRATE_EVERY:
            await self.calibrate_validator()

    async def calibrate_validator(self) -> None:
        """The lowest validator threshold whose accepted answers keep the estimated error under δ, on
        answers to questions the generator never trained on (skills' held-out sets, held-back and
        spot-checked questions), the newest first across runs, each scored by the current validator."""
        models = self.host.models
        if models is None:
            return
        # Out of sample only: answers of the generator in use, to questions it never trained on in
        # any wording (canonical keys: commuted operands, quoting and phrasing are one question).
        generator = await self.store.generator_run()
        trained_queries = await self.store.trained_queries()
        stored = await self.store.calibration_points("validator", VALIDATOR_POINTS)

        def out_of_sample() -> list[CalibrationPoint]:
            # In a thread: keying ten thousand trained questions takes ~0.1 s, and this runs after
            # every spot check, on the loop that draws the UI.
            trained = {canonical_key(q) for q in trained_queries}
            return [p for p in stored if p.generator_run == generator and canonical_key(p.query) not in trained]

        points = await asyncio.to_thread(out_of_sample)
        scores = await asyncio.to_thread(models.validator_p, [p.query for p in points], [p.answer for p in points],
                                         [p.features for p in points]) if points else []
        agreed = [p.agreed for p in points]
        result = calibrate(scores, agreed, self.settings.error_bound)
        # The generator's own confidence (the points' first feature) is the other candidate score:
        # the one that serves more within the bound wins.
        by_confidence = calibrate([p.features[0] for p in points], agreed, self.settings.error_bound)
        neural_score = "confidence" if by_confidence.accepted > result.accepted else "validator"
        result = by_confidence if neural_score == "confidence" else result
        chosen = [p.features[0] for p in points] if neural_score == "confidence" else scores
        result, regions, open_regions = serving_threshold([p.query for p in points], chosen, agreed,
                                                          self.settings.error_bound, result)
        self.local.update_thresholds(neural_score=neural_score, validator=result.threshold,
                                     estimated_error=result.estimated_error if result.accepted else None,
                                     neural_regions=regions, open_regions=open_regions)
        self.validator_points = len(points)
        self._unseen_points = 0
        await self.save_thresholds()

    async def load_pair_labels(self) -> None:
        """Read what the acceptance threshold is calibrated on (at open)."""
        self.pair_labels = await self.store.pair_labels(CALIBRATING_ORIGINS, limit=ACCEPTANCE_LABELS,
                                                        fitted=False)
        if await self.store.get_value(FEATURE_VERSION_KEY) != str(FEATURE_VERSION):
            # The labels that calibrate, kept under an older feature version, would be scored by
            # weights fitted on other features: recompute them from their texts, once.
            fresh = await asyncio.to_thread(
                lambda: [refreshed_features(lb.query, lb.stored_query, lb.features) for lb in self.pair_labels])
            for label, features in zip(self.pair_labels, fresh):
                label.features = [float(x) for x in features]
            await self.store.set_pair_label_features(
                [(lb.id, lb.features) for lb in self.pair_labels if lb.id is not None])
            await self.store.set_value(FEATURE_VERSION_KEY, str(FEATURE_VERSION))
        try:
            window = json.loads(await self.store.get_value(WINDOW_KEY) or "[]")
            self.learned_window.extend(float(p) for p in window)
        except (ValueError, TypeError):
            pass  # an unreadable window is rebuilt by the next queries

    async def observe(self, decision: LocalDecision) -> None:
        """A query's decision: one that reached the learned tier joins the window the acceptance
        threshold is estimated over."""
        if decision.source == "learned" and decision.semantic is None:
            self.learned_window.append(-1.0)
        elif decision.semantic is not None:
            self.learned_window.append(decision.semantic.p)
        else:
            return
        self._unseen += 1
        if self._unseen >= RECALIBRATE_EVERY:
            await self.recalibrate_acceptance()

    async def add_pair_label(self, label: PairLabel) -> None:
        """Keep a new pair label; one that may calibrate moves the acceptance threshold at once."""
        await self.store.add_pair_labels([label])
        if label.origin in CALIBRATING_ORIGINS and not label.fitted:
            self.pair_labels.append(label)
            del self.pair_labels[:-ACCEPTANCE_LABELS]
            await self.recalibrate_acceptance()

    async def recalibrate_acceptance(self) -> None:
        """The lowest acceptance threshold whose served answers' estimated error stays under δ:
        labels (scored by the current acceptance model, never fitted on them) fit P(right | p),
        averaged over the p of the queries that reached the tier (`served_error_threshold`)."""
        semantic = self.local.semantic
        if semantic is None:
            return
        self._unseen = 0
        scores = semantic.score([label.features for label in self.pair_labels])
        window = list(self.learned_window)
        reached = [p for p in window if p >= 0]
        result = served_error_threshold(scores, [bool(label.label) for label in self.pair_labels], reached,
                                        self.settings.error_bound, exact_served=len(window) - len(reached),
                                        **semantic.acceptance.calibration_prior)
        self.local.update_thresholds(acceptance=result.threshold,
                                     acceptance_error=result.estimated_error if result.accepted else None)
        await self.save_thresholds()
        await self.store.set_value(WINDOW_KEY, json.dumps([round(p, 5) for p in window]))

    async def save_thresholds(self) -> None:
        await self.store.set_value(Thresholds.STORE_KEY, self.local.thresholds.to_json())

    # ------------------------------------------------------------------ the run
    async def _run(self, trigger: str) -> RunReport | None:
        """One run at a time per data dir: while another process trains, this run is skipped."""
        lock = DataDirLock(self.data_dir)
        if not lock.try_acquire():
            self._emit(Notice("information", TRAINING_ELSEWHERE))
            await self._hold_auto_train()
            return None
        try:
            report = await self._run_locked(trigger)
        finally:
            lock.release()
        if report is not None and report.status == "failed":
            await self._hold_auto_train()
        elif report is not None and report.status == "done":
            self._auto_train_after = 0
        return report

    async def _hold_auto_train(self) -> None:
        """After a failed or skipped run, auto-training waits for a batch of new examples instead
        of retrying after every query (with a full disk, each query would retrain and fail)."""
        self._auto_train_after = await self.trainable_queued() + self.settings.batch_size

    async def _catch_up(self) -> None:
        """Before training, take in what another process on this data dir saved since we loaded:
        newer checkpoints (else this run would overwrite them), thresholds and learned answers."""
        await self.host.reload_if_saved_elsewhere()
        rows = await self.store.learned_answers()
        self.local.publish(thresholds=Thresholds.from_json(await self.store.get_value(Thresholds.STORE_KEY)),
                           index=LearnedIndex(rows))
        await self.host.sync_semantic(rows)

    async def _run_locked(self, trigger: str) -> RunReport | None:
        from shammah_tui.training.held_out import skill_results
        from shammah_tui.training.job import TrainingJob, run_training_job

        await self.host.load()
        await self._catch_up()
        models, trainer = self.host.models, self.host.trainer
        assert models is not None and trainer is not None
        queued = await self.store.examples("queued")
        replay = await self._replay()
        if not queued and not replay:
            self._emit(Notice("information", "Nothing to train on yet: the queue is empty."))
            return None
        old_labels = await self.store.labels(limit=3000)
        run_id = await self.store.start_run(trigger, str(models.device))
        # The whole run: the generator's steps, then the router's and the validator's.
        planned = self.settings.steps_per_run + 2 * trainer.config.classifier_steps
        self._emit(TrainingStarted(run_id, trigger, planned))
        points: list[LossPoint] = []

        def on_step(step: StepEvent) -> None:
            if step.step % LOSS_POINTS_EVERY == 0 or step.step == step.total_steps:
                points.append(LossPoint(run_id, step.model, step.step, step.loss, step.examples_per_s))
            self._emit(TrainingStep(run_id, step))

        job = TrainingJob(models=models, trainer=trainer, index=self.local.index, new=queued, replay=replay,
                          old_labels=old_labels, thresholds=self.local.thresholds,
                          tier_order=self.local.tier_order,
                          max_new_tokens=self.settings.max_new_tokens,
                          seed=self.settings.seed + run_id, on_step=on_step, cancel=self._cancel)
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._thread, run_training_job, job)
        except Exception as exc:  # a failed run is reported, the app goes on
            report = RunReport(status="failed", error=f"{type(exc).__name__}: {exc}")
            await self.store.finish_run(run_id, status="failed", examples=0, steps=0, examples_per_s=None,
                                        losses={}, trained_ids=[], error=report.error)
            self._emit(Notice("error", f"Training failed: {report.error}"))
            self._emit(TrainingFinished(run_id, report))
            return report
        report = result.report
        await self.store.add_loss_points(points)
        if report.status == "done":
            report = await self._save(report)
        if report.status == "done":
            await self.store.add_labels(result.labels)
            if result.thresholds is not None:
                # Only what the run learned: a calibration that moved during the run stays.
                learned = result.thresholds
                self.local.update_thresholds(router_trained=learned.router_trained,
                                             validator_trained=learned.validator_trained,
                                             generator_trained=learned.generator_trained)
        await self.store.finish_run(
            run_id, status=report.status, examples=report.examples, steps=report.steps,
            examples_per_s=report.examples_per_s, losses=report.losses,
            trained_ids=report.trained_ids if report.status == "done" else [], error=report.error)
        if report.status == "done":
            # Calibrated once the run's examples are marked trained and its generator is the one in
            # use: no question it just trained on calibrates it, no older generator's answer does.
            await self.store.add_calibration_points(
                "validator", [replace(p, generator_run=run_id) for p in result.new_points])
            await self.calibrate_validator()
            report.skills = skill_results(result.held_out, self.local.thresholds, result.held_out_losses)
            await self.store.add_skill_results(run_id, report.skills)
        self._emit(TrainingFinished(run_id, report))
        return report

    async def reset_adapter(self) -> str:
        """Forget what the adapter learned: the pre-trained base model answers again. Recorded as a
        run of its own, so that no answer of the adapter before it calibrates the model after it;
        the neural tier is closed until new evidence opens it. Returns what happened, to show."""
        if self.running:
            return "A training run is going: cancel it first (esc), then reset the adapter."
        await self.host.load()
        lock = DataDirLock(self.data_dir)
        if not lock.try_acquire():
            return TRAINING_ELSEWHERE
        try:
            if not self.host.reset_adapter():
                return "The models do not answer with an adapter (answer_model is not smollm2)."
            await self.host.save()
            run_id = await self.store.start_run("reset adapter", str(self.host.models.device)
                                                if self.host.models is not None else "cpu")
            await self.store.finish_run(run_id, status="done", examples=0, steps=0, examples_per_s=None,
                                        losses={}, trained_ids=[])
        finally:
            lock.release()
        self.local.update_thresholds(validator=CLOSED, estimated_error=None, neural_regions={},
                                     open_regions=frozenset(), generator_trained=False)
        self.validator_points = 0
        await self.save_thresholds()
        return "The adapter is reset: the base model answers again; the neural tier waits for new evidence."
    async def _replay(self) -> ReplayPool:
        """Earlier examples to replay, by stratum (`training.replay`): each skill and what the
        teacher taught keep their share however much traffic was trained since."""
        from shammah_tui.training.replay import ReplayPool, choose_replay  # the skills load on first training

        kinds = await self.store.trained_example_kinds()
        # Keying every trained question takes ~0.1 s per 10k: not on the loop that draws the UI.
        chosen, shares = await asyncio.to_thread(choose_replay, kinds, REPLAY_POOL, self.rng)
        examples = {e.id: e for e in await self.store.examples_by_id([i for ids in chosen.values() for i in ids])}
        return ReplayPool({name: [examples[i] for i in ids if i in examples] for name, ids in chosen.items()},
                          shares)

    async def _save(self, report: RunReport) -> RunReport:
        """Write the checkpoints; a failure (disk full, read-only dir) fails the run, not the app."""
        try:
            await self.host.save()
        except Exception as exc:
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            report.status, report.error = "failed", f"could not save the models: {reason}"
            self._emit(Notice("error", f"Training failed: {report.error}"))
        return report
