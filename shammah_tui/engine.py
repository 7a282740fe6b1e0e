"""The engine: one object that the CLI and the UI drive.

It owns the store, the learned index, the local models, the trainer and the
teacher, and runs the flow of DESIGN §2 for each query. Torch work runs in
worker threads (`asyncio.to_thread`); everything else on the caller's loop.
Watchers subscribe to `EngineEvent`s.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shammah_tui.atomic import write_text_atomically
from shammah_tui.events import (
    AskResult, EngineEvent, ModelsLoaded, Notice, QueryAnswered, QueryVerified, ToolCalled,
    TrainingFinished, TrainingStarted, TrainingStep,
)
from shammah_tui.lock import DataDirLock
from shammah_tui.paths import DB_NAME, MODELS_DIR, SETTINGS_NAME, ensure_data_dir
from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.context import query_context
from shammah_tui.pipeline.learned import LearnedIndex
from shammah_tui.pipeline.local import LocalAnswerer, LocalDecision, Thresholds
from shammah_tui.pipeline.sanitize import QueryRejected, clean_query, strip_controls
from shammah_tui.pipeline.text import normalize_query
from shammah_tui.settings import Settings, default_settings_toml
from shammah_tui.store import Label, LearnedAnswer, LossPoint, QueryRecord, Store
from shammah_tui.teachers.base import Teacher, TeacherError, TeachRequest, TeachSummary, TextCallback
from shammah_tui.training.events import RunReport, StepEvent

Listener = Callable[[EngineEvent], None]
THRESHOLDS_KEY = "thresholds"
#: Training examples replayed per run, drawn from everything trained before.
REPLAY_POOL = 256
#: Seconds close() lets running spot checks finish before cancelling them.
SPOT_CHECK_GRACE_S = 2.0
#: Loss points kept per run for the charts (every step is streamed; the store keeps a sample).
LOSS_POINTS_EVERY = 2
#: Said when a run is skipped because another process holds the data dir's training lock.
TRAINING_ELSEWHERE = ("Another process is training on this data dir; this run was skipped "
                      "(the queued examples stay queued for the next run).")


class Engine:
    """Shammah's headless core."""

    def __init__(self, data_dir: Path, settings: Settings, store: Store, teacher: Teacher,
                 clock: Callable[[], float], rng: random.Random) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.store = store
        self.teacher = teacher
        self.clock = clock
        self.rng = rng
        self.models: Any = None  # LocalModels once load_models() ran
        self.trainer: Any = None
        self.index = LearnedIndex()
        self.thresholds = Thresholds()
        self.local = LocalAnswerer(None, self.index, self.thresholds, settings.tier_order,
                                   settings.max_new_tokens)
        self._listeners: list[Listener] = []
        self._training: asyncio.Task[RunReport | None] | None = None
        self._cancel_training = threading.Event()
        self._models_loading: asyncio.Task[list[str]] | None = None
        self.model_warnings: list[str] = []
        #: (validator p, agreed) behind the validator threshold; neural spot checks add to it.
        self.calibration_points: list[tuple[float, bool]] = []
        self._spot_checks: set[asyncio.Future[None]] = set()
        self._models_failed: str | None = None
        self._models_stamp: tuple[int, int] | None = None
        #: Queue size auto-training waits for after a failed or skipped run (0: batch_size).
        self._auto_train_after = 0

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def open(cls, data_dir: Path, settings: Settings, teacher: Teacher, *,
                   clock: Callable[[], float] = time.time, seed: int | None = None) -> Engine:
        """Create the data dir if needed, open the store and the learned index (no torch yet)."""
        # Nothing but the directory itself is created until the store has opened: a database
        # from a newer Shammah (or an unusable one) leaves the data dir as it was.
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = await Store.open(data_dir / DB_NAME, clock=clock)
        try:
            ensure_data_dir(data_dir)
            settings_file = data_dir / SETTINGS_NAME
            if not settings_file.exists():  # atomically: another process may be reading it
                write_text_atomically(settings_file, default_settings_toml())
            with DataDirLock(data_dir) as free:  # a run that another process is doing is not stale
                if free:
                    await store.close_stale_runs()
        except BaseException:
            await store.close()
            raise
        engine = cls(data_dir, settings, store, teacher, clock,
                     random.Random(settings.seed if seed is None else seed))
        try:
            for row in await store.learned_answers():
                engine.index.add(row)
            engine.thresholds = Thresholds.from_json(await store.get_value(THRESHOLDS_KEY))
        except BaseException:
            await store.close()  # an open connection's thread would hold up interpreter exit
            raise
        engine.local.thresholds = engine.thresholds
        return engine

    async def close(self) -> None:
        """Cancel training, give spot checks a moment, close the teacher and the store."""
        if self._spot_checks:
            # A spot check is a live teacher call; quitting must not wait out its timeout.
            _, pending = await asyncio.wait(self._spot_checks, timeout=SPOT_CHECK_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._training is not None and not self._training.done():
            self._cancel_training.set()
            try:
                await self._training
            except Exception:
                pass
        await self.teacher.close()
        await self.store.close()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # --------------------------------------------------------------------- models
    @property
    def models_ready(self) -> bool:
        return self.models is not None

    async def load_models(self) -> list[str]:
        """Load or create the models in a worker thread; safe to call more than once."""
        if self.models is not None:
            return self.model_warnings
        if self._models_loading is None:
            self._models_loading = asyncio.ensure_future(asyncio.to_thread(self._load_models_sync))
        warnings = await self._models_loading
        return warnings

    async def _load_models_or_go_on(self) -> None:
        """Load the models; if that fails, say so once and answer with the other tiers and the teacher."""
        if self._models_failed is not None:
            return
        try:
            await self.load_models()
        except Exception as exc:
            self._models_failed = f"{type(exc).__name__}: {exc}"
            self.emit(Notice("error", f"Local models unavailable ({self._models_failed}); "
                                      "answering from templates, learned answers and the teacher."))

    def _load_models_sync(self) -> list[str]:
        import torch

        from shammah_tui.models.bundle import LocalModels
        from shammah_tui.models.device import pick_device
        from shammah_tui.models.generator import GeneratorConfig
        from shammah_tui.models.corpus import tokenizer_corpus
        from shammah_tui.training.trainer import BatchTrainer, TrainConfig

        s = self.settings
        torch.manual_seed(s.seed)
        gen_config = GeneratorConfig(vocab_size=s.vocab_size, n_embd=s.n_embd, n_layer=s.n_layer,
                                     n_head=s.n_head, block_size=s.block_size)
        models, warnings = LocalModels.load_or_create(
            self.data_dir / MODELS_DIR, tokenizer_corpus, gen_config, s.vocab_size, s.seed,
            pick_device(s.device))
        trainer = BatchTrainer(models, TrainConfig(
            batch_size=s.batch_size, learning_rate=s.learning_rate,
            classifier_learning_rate=s.classifier_learning_rate, steps_per_run=s.steps_per_run,
            replay_fraction=s.replay_fraction, seed=s.seed))
        # Building the first optimizer imports torch._dynamo with the GIL held (~1 s):
        # do it now, while loading, rather than in the middle of the first run.
        for name in ("generator", "router", "validator"):
            trainer.optimizer(name)
        self.models, self.trainer = models, trainer
        self.local.models = models
        self.model_warnings = warnings
        self._models_stamp = self._checkpoint_stamp()
        self.emit(ModelsLoaded(models.info(), warnings))
        for warning in warnings:
            self.emit(Notice("warning", warning))
        return warnings

    # ----------------------------------------------------------------------- ask
    async def ask(self, raw_query: str, *, conversation_id: int | None = None,
                  history: Sequence[tuple[str, str]] = (), on_text: TextCallback | None = None,
                  auto_train: str = "background", spot_check: str = "inline") -> AskResult:
        """Answer one query through the pipeline; never raises for bad input or a teacher fault.

        `auto_train` is what happens when the queue reaches the batch size:
        "background" starts a run and returns, "wait" finishes the run first, "off" does nothing.
        `spot_check` "inline" waits for the teacher's verdict (the CLI prints it); "background"
        returns the local answer at once and emits QueryVerified later (the UI).
        """
        try:
            query = clean_query(raw_query)
        except QueryRejected as exc:
            result = AskResult(query=strip_controls(str(raw_query)[:200]), error=str(exc))
            self.emit(QueryAnswered(result))
            return result
        await self._load_models_or_go_on()
        context, ctx_key = query_context(query, history)
        norm = normalize_query(query)
        decision: LocalDecision = await asyncio.to_thread(self.local.decide, query, norm, context, ctx_key)
        if decision.answer is not None:
            result = await self._answer_locally(query, norm, context, ctx_key, decision, conversation_id,
                                                history, spot_check)
        else:
            result = await self._forward(query, norm, context, ctx_key, decision, conversation_id,
                                         history, on_text)
        if conversation_id is not None:
            await self.store.add_message(conversation_id, "user", query)
            await self.store.add_message(conversation_id, "assistant" if result.answer else "notice",
                                         result.answer or result.error or "", result.source, result.query_id)
        self.emit(QueryAnswered(result))
        if auto_train != "off" and self.settings.auto_train:
            await self._maybe_auto_train(wait=auto_train == "wait")
        return result

    async def _answer_locally(self, query, norm, context, ctx_key, decision, conversation_id, history,
                              spot_check_mode):
        result = AskResult(query=query, answer=decision.answer, source=decision.source,
                           router_p=decision.router_p, validator_p=decision.validator_p,
                           confidence=decision.confidence, latency_ms=decision.latency_ms)
        record = QueryRecord(query, decision.source, decision.answer, decision.latency_ms, ctx_key,
                             conversation_id, decision.router_p, decision.validator_p, decision.confidence)
        result.query_id = await self.store.log_query(record)
        if decision.learned_id is not None:
            await self.store.count_hit(decision.learned_id)
        if self.rng.random() < self.settings.spot_check_rate:
            check = self._spot_check(result, norm, context, ctx_key, decision, history)
            if spot_check_mode == "inline":
                await check
            else:  # the answer is shown now; the verdict follows as a QueryVerified event
                task = asyncio.ensure_future(check)
                self._spot_checks.add(task)
                task.add_done_callback(self._spot_checks.discard)
        return result

    async def _spot_check(self, result: AskResult, norm, context, ctx_key, decision, history) -> None:
        """Ask the teacher too; agreement labels the router and validator and may correct the store."""
        query = result.query
        try:
            reply = await self.teacher.answer(query, _turns(history))
        except TeacherError as exc:
            self.emit(Notice("warning", f"Spot check skipped: {exc.message}"))
            return
        reply.text = strip_controls(reply.text)  # what the network sends never reaches a terminal raw
        verdict = agreement(decision.answer, reply.text)
        result.verified, result.teacher_answer = verdict.agrees, reply.text
        await self.store.set_verification(result.query_id, verdict.agrees, reply.text,
                                          reply.input_tokens, reply.output_tokens)
        neural = decision.source == "neural"
        features = [decision.confidence or 0.0, 1.0 if neural else 0.0, 0.0 if neural else 1.0]
        await self.store.add_labels([
            Label(query, decision.answer, "neural" if neural else "checked", int(verdict.agrees),
                  "spot_check", ctx_key, verdict.score, features),
            Label(query, "", "router", int(verdict.agrees), "spot_check", ctx_key, None,
                  decision.router_features),
        ])
        if neural and decision.validator_p is not None:
            await self._recalibrate(decision.validator_p, verdict.agrees)
        if not verdict.agrees:
            # The teacher's answer replaces the wrong one and is learned from.
            await self._learn(query, norm, context, ctx_key, reply.text, "spot_check", None)
        self.emit(QueryVerified(result.query_id, verdict.agrees, reply.text))

    async def _recalibrate(self, validator_p: float, agreed: bool) -> None:
        """A spot-checked neural answer moves the validator threshold at once, not at the next run."""
        from shammah_tui.pipeline.calibration import calibrate

        self.calibration_points.append((validator_p, agreed))
        points = self.calibration_points
        result = calibrate([p for p, _ in points], [ok for _, ok in points], self.settings.error_bound)
        self.thresholds.validator = result.threshold
        self.thresholds.estimated_error = result.estimated_error
        await self.store.set_value(THRESHOLDS_KEY, self.thresholds.to_json())

    async def _forward(self, query, norm, context, ctx_key, decision, conversation_id, history, on_text):
        t0 = time.perf_counter()
        result = AskResult(query=query, router_p=decision.router_p, validator_p=decision.validator_p)
        try:
            reply = await self.teacher.answer(query, _turns(history), on_text)
        except TeacherError as exc:
            result.error = exc.message
            result.latency_ms = (time.perf_counter() - t0) * 1000
            record = QueryRecord(query, None, None, result.latency_ms, ctx_key, conversation_id,
                                 decision.router_p, decision.validator_p, error=exc.message)
            result.query_id = await self.store.log_query(record)
            self.emit(Notice("error", exc.message))
            return result
        reply.text = strip_controls(reply.text)  # no escape sequences or lone surrogates from the network
        result.answer = result.teacher_answer = reply.text
        result.source = "forward"
        result.latency_ms = decision.latency_ms + (time.perf_counter() - t0) * 1000
        record = QueryRecord(query, "forward", reply.text, result.latency_ms, ctx_key, conversation_id,
                             decision.router_p, decision.validator_p, teacher_answer=reply.text,
                             teacher_input_tokens=reply.input_tokens, teacher_output_tokens=reply.output_tokens)
        if reply.text.strip():
            result.query_id = await self._learn(query, norm, context, ctx_key, reply.text, "forward", record)
        else:
            result.query_id = await self.store.log_query(record)
        return result

    async def _learn(self, query, norm, context, ctx_key, answer, origin, record) -> int | None:
        """learn_from_teacher: store the answer and queue an example, in one transaction."""
        learned_id, _, log_id = await self.store.learn(
            query=query, norm_query=norm, context=context, context_key=ctx_key, answer=answer,
            origin=origin, log=record)
        self.index.add(LearnedAnswer(learned_id, norm, ctx_key, query, answer, origin))
        return log_id

    async def local_only(self, raw_query: str) -> LocalDecision:
        """The local pipeline's decision for a standalone query; nothing is logged or learned."""
        query = clean_query(raw_query)
        await self.load_models()
        return await asyncio.to_thread(self.local.decide, query, normalize_query(query), "", "")

    async def learn_pairs(self, pairs: Sequence[tuple[str, str]], origin: str) -> int:
        """Queue teacher-written (query, answer) pairs as examples and learned answers."""
        rows = []
        for query, answer in pairs:
            norm = normalize_query(query)
            rows.append({"query": query, "norm_query": norm, "context": "", "context_key": "",
                         "answer": answer})
        learned_ids = await self.store.learn_many(rows, origin)
        for r, learned_id in zip(rows, learned_ids):
            self.index.add(LearnedAnswer(learned_id, r["norm_query"], "", r["query"], r["answer"], origin))
        return len(rows)

    # ------------------------------------------------------------------- training
    @property
    def training(self) -> bool:
        return self._training is not None and not self._training.done()

    async def _maybe_auto_train(self, wait: bool) -> None:
        if self.training:
            return
        counts = await self.store.example_counts()
        if counts["queued"] >= max(self.settings.batch_size, self._auto_train_after):
            task = self.start_training("auto")
            if wait and task is not None:
                await task

    def start_training(self, trigger: str = "manual") -> asyncio.Task[RunReport | None] | None:
        """Start a run in the background (None if one is already running)."""
        if self.training:
            return None
        self._cancel_training.clear()
        self._training = asyncio.ensure_future(self._train(trigger))
        return self._training

    async def train(self, trigger: str = "manual") -> RunReport | None:
        """Train now and wait for the run (joins a run already going)."""
        if self.training:
            return await self._training  # type: ignore[misc]
        task = self.start_training(trigger)
        return await task if task is not None else None

    def cancel_training(self) -> bool:
        if not self.training:
            return False
        self._cancel_training.set()
        return True

    async def _train(self, trigger: str) -> RunReport | None:
        """One run at a time per data dir: while another process trains, this run is skipped."""
        lock = DataDirLock(self.data_dir)
        if not lock.try_acquire():
            self.emit(Notice("information", TRAINING_ELSEWHERE))
            await self._hold_auto_train()
            return None
        try:
            report = await self._train_locked(trigger)
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
        self._auto_train_after = (await self.store.example_counts())["queued"] + self.settings.batch_size

    async def _save_models(self, report: RunReport) -> RunReport:
        """Write the checkpoints; a failure (disk full, read-only dir) fails the run, not the app."""
        try:
            await asyncio.to_thread(self.models.save, self.data_dir / MODELS_DIR)
            self._models_stamp = self._checkpoint_stamp()
        except Exception as exc:
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            report.status, report.error = "failed", f"could not save the models: {reason}"
            self.emit(Notice("error", f"Training failed: {report.error}"))
        return report

    def _checkpoint_stamp(self) -> tuple[int, int] | None:
        """(mtime, size) of the generator checkpoint: how this process tells another one saved."""
        from shammah_tui.models.bundle import GENERATOR_FILE

        try:
            st = (self.data_dir / MODELS_DIR / GENERATOR_FILE).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    async def _catch_up_with_other_processes(self) -> None:
        """Before training, take in what another process on this data dir saved since we loaded:
        newer checkpoints (else this run would overwrite them), thresholds and learned answers."""
        stamp = self._checkpoint_stamp()
        if stamp is not None and stamp != self._models_stamp:
            self.emit(Notice("information", "Another process saved newer models; loading them first."))
            await asyncio.to_thread(self._load_models_sync)
        self.thresholds = Thresholds.from_json(await self.store.get_value(THRESHOLDS_KEY))
        self.local.thresholds = self.thresholds
        index = LearnedIndex(await self.store.learned_answers())
        self.index, self.local.index = index, index

    async def _train_locked(self, trigger: str) -> RunReport | None:
        from shammah_tui.training.job import run_training_job

        await self.load_models()
        await self._catch_up_with_other_processes()
        queued = await self.store.examples("queued")
        trained_ids = await self.store.trained_example_ids()
        replay_ids = self.rng.sample(trained_ids, min(REPLAY_POOL, len(trained_ids)))
        replay = await self.store.examples_by_id(replay_ids)
        if not queued and not replay:
            self.emit(Notice("information", "Nothing to train on yet: the queue is empty."))
            return None
        old_labels = await self.store.labels(limit=3000)
        run_id = await self.store.start_run(trigger, str(self.models.device))
        total = self.settings.steps_per_run if (queued or replay) else 0
        self.emit(TrainingStarted(run_id, trigger, total))
        points: list[LossPoint] = []

        def on_step(step: StepEvent) -> None:
            if step.step % LOSS_POINTS_EVERY == 0 or step.step == step.total_steps:
                points.append(LossPoint(run_id, step.model, step.step, step.loss, step.examples_per_s))
            self.emit(TrainingStep(run_id, step))

        try:
            job = await asyncio.to_thread(
                run_training_job, self.models, self.trainer, self.index, queued, replay, old_labels,
                self.thresholds, self.settings.error_bound, self.settings.max_new_tokens,
                self.settings.seed + run_id, on_step, self._cancel_training)
        except Exception as exc:  # a failed run is reported, the app goes on
            report = RunReport(status="failed", error=f"{type(exc).__name__}: {exc}")
            await self.store.finish_run(run_id, status="failed", examples=0, steps=0, examples_per_s=None,
                                        losses={}, trained_ids=[], error=report.error)
            self.emit(Notice("error", f"Training failed: {report.error}"))
            self.emit(TrainingFinished(run_id, report))
            return report
        report = job.report
        await self.store.add_loss_points(points)
        if report.status == "done":
            report = await self._save_models(report)
        if report.status == "done":
            await self.store.add_labels(job.labels)
            if job.thresholds is not None:
                self.calibration_points = list(job.calibration_points)
                self.thresholds = job.thresholds
                self.local.thresholds = job.thresholds
                await self.store.set_value(THRESHOLDS_KEY, job.thresholds.to_json())
        await self.store.finish_run(
            run_id, status=report.status, examples=report.examples, steps=report.steps,
            examples_per_s=report.examples_per_s, losses=report.losses,
            trained_ids=report.trained_ids if report.status == "done" else [], error=report.error)
        self.emit(TrainingFinished(run_id, report))
        return report

    # ------------------------------------------------------------------- teaching
    def tool_registry(self):
        """The five teaching tools bound to this engine, persisting and emitting each call."""
        from shammah_tui.tools.registry import build_registry

        async def record(event) -> None:
            await self.store.record_tool_call(
                call_id=event.call_id, name=event.name, input=event.input, status=event.status,
                duration_ms=event.duration_ms, summary=event.summary, result_text=event.result_text)

        return build_registry(self, on_event=lambda e: self.emit(ToolCalled(e)), record=record)

    async def teach(self, rounds: int = 1, topic: str | None = None,
                    on_text: TextCallback | None = None) -> TeachSummary:
        """Active teaching: the teacher drives the tool loop."""
        await self.load_models()
        request = TeachRequest(topic=topic, rounds=rounds, max_iterations=self.settings.tool_iterations)
        return await self.teacher.teach(self.tool_registry(), request, on_text)

    # ---------------------------------------------------------------------- stats
    async def stats(self) -> dict[str, Any]:
        """The `stats --json` object (DESIGN §6)."""
        by_source = await self.store.source_counts()
        examples = await self.store.example_counts()
        checked, agreed = await self.store.spot_check_counts()
        last = await self.store.last_finished_run()
        tokens_in, tokens_out, forwards = await self.store.teacher_token_totals()
        answered = sum(by_source.values())
        local = answered - by_source["forward"]
        per_forward = (tokens_in + tokens_out) / forwards if forwards else 0.0
        return {
            "queries": answered,
            "by_source": by_source,
            "local_share": round(local / answered, 4) if answered else 0.0,
            "examples_queued": examples["queued"],
            "examples_trained": examples["trained"],
            "learned_answers": await self.store.learned_count(),
            "training_runs": await self.store.run_count(),
            "last_run": None if last is None else {
                model: {"old_loss": round(l.old_loss, 5), "new_loss": round(l.new_loss, 5),
                        "improvement_pct": round(l.improvement_pct, 2)}
                for model, l in last.losses.items()
            },
            "verified_agreement": round(agreed / checked, 4) if checked else None,
            "spot_checks": checked,
            "estimated_local_error": round((checked - agreed) / checked, 4) if checked else None,
            "error_bound": self.settings.error_bound,
            "validator_threshold": round(self.thresholds.validator, 4),
            "teacher_tokens_used": tokens_in + tokens_out,
            "teacher_tokens_saved_estimate": round(per_forward * local),
        }


def _turns(history: Sequence[tuple[str, str]]):
    from shammah_tui.teachers.base import Turn

    return [Turn(role, text) for role, text in history if role in ("user", "assistant")]
