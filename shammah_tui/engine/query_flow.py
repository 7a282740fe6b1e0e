"""The flow of one query: clean it, decide locally, answer or forward, spot-check, learn.

Each query becomes one frozen `Query`; the steps below take it instead of long argument lists.
The local decision (`pipeline.local`) runs in a worker thread; teacher calls and the store run
on the caller's loop. See docs/ARCHITECTURE.md for the whole picture.
"""

from __future__ import annotations

import asyncio
import threading
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shammah_tui.engine.model_host import ModelHost
from shammah_tui.engine.training import TrainingCoordinator
from shammah_tui.core.ask import Question, SpotCheck
from shammah_tui.core.events import AskResult, EngineEvent, Notice, QueryAnswered, QueryVerified
from shammah_tui.pipeline.agreement import Agreement, agreement
from shammah_tui.core.context import query_context
from shammah_tui.pipeline.local import LocalAnswerer, LocalDecision
from shammah_tui.pipeline.regions import MIN_REGION_LABELS, pattern_of
from shammah_tui.core.sanitize import QueryRejected, clean_query, strip_controls
from shammah_tui.core.text import normalize_query
from shammah_tui.settings import Settings
from shammah_tui.core.records import CalibrationPoint, Exchange, Label, LearnedAnswer, PairLabel, QueryRecord
from shammah_tui.store import Store
from shammah_tui.core.teaching import TeacherError, TeacherReply, TextCallback, Turn
from shammah_tui.teachers.base import Teacher

Emit = Callable[[EngineEvent], None]
Forwarder = Callable[["Query", "TextCallback | None"], Awaitable[TeacherReply]]
"""Who answers a query the local side does not: the teacher by default; `serve` passes the client's
request on to Claude as it is. Raises TeacherError when it cannot answer."""
#: A neural answer from a region opened on fewer labels than this is spot-checked UNCERTAIN_BOOST
#: times as often as ε: the checks go where the bound is least certain.
UNCERTAIN_REGION_LABELS = 3 * MIN_REGION_LABELS
UNCERTAIN_BOOST = 4.0
#: Seconds close() lets running spot checks finish before cancelling them.
SPOT_CHECK_GRACE_S = 2.0


@dataclass(frozen=True)
class Query:
    """One question on its way through the pipeline."""

    text: str
    """The question, cleaned (no control characters, a sane size)."""
    norm: str
    """Its normalized form: the store's exact-lookup key."""
    context: str
    """The conversation text the generator sees ("" for a standalone question)."""
    context_key: str
    """The key answers are stored and found under ("" for a standalone question)."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier (role, text) turns, oldest first, given to the teacher."""
    conversation_id: int | None = None
    """Where the question and its answer are stored as messages (None: not stored)."""

    @classmethod
    def of(cls, text: str, history: Sequence[tuple[str, str]] = (), scope: str = "",
           conversation_id: int | None = None) -> Query:
        """`text` (already cleaned) in its conversation; `scope` separates answers that must
        never be shared (another system prompt, another model). Earlier turns are cleaned too:
        they reach the context key and the teacher."""
        turns = tuple((role, strip_controls(turn)) for role, turn in history)
        context, key = query_context(text, turns, strip_controls(scope))
        return cls(text, normalize_query(text), context, key, turns, conversation_id)

    def turns(self) -> list[Turn]:
        """The earlier user and assistant turns, as the teacher takes them."""
        return [Turn("user" if role == "user" else "assistant", text)
                for role, text in self.history if role in ("user", "assistant")]


class QueryFlow:
    """Answers queries; forwards what the local side does not answer and learns from the reply."""

    def __init__(self, *, store: Store, teacher: Teacher, settings: Settings, host: ModelHost,
                 local: LocalAnswerer, coordinator: TrainingCoordinator, rng: random.Random,
                 emit: Emit) -> None:
        self.store = store
        self.teacher = teacher
        self.settings = settings
        self.host = host
        self.local = local
        self.coordinator = coordinator
        self.rng = rng
        self._emit = emit
        self._spot_checks: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------ asking
    async def ask(self, question: Question, *, on_text: TextCallback | None, spot_check: SpotCheck,
                  forward: Forwarder | None = None,
                  check: Forwarder | None = None) -> tuple[AskResult, Awaitable[None] | None]:
        """The answer, and a spot check still to run in the background (spot_check="background").

        `check` asks the teacher for a spot check (default: the teacher itself; `serve` replays the
        client's own request); spot_check="off" never checks. Never raises for bad input or a
        teacher fault: the result's `error` says what went wrong.
        """
        try:
            text = clean_query(question.text)
        except QueryRejected as exc:
            result = AskResult(query=strip_controls(str(question.text)[:200]), error=str(exc))
            self._emit(QueryAnswered(result))
            return result, None
        query = Query.of(text, question.history, question.scope, question.conversation_id)
        decision = await self.decide(query)
        await self.coordinator.observe(decision)
        later: Awaitable[None] | None = None
        if decision.answer is not None:
            result = await self._answer_locally(query, decision)
            if spot_check != "off" and self.rng.random() < self._spot_check_rate(query, decision):
                verdict = self._spot_check(query, result, decision, check or self._ask_teacher)
                if spot_check == "inline":
                    await verdict
                else:  # the answer is shown now; the verdict follows as a QueryVerified event
                    later = verdict
        else:
            result = await self._forward(query, decision, on_text, forward or self._ask_teacher)
        self._emit(QueryAnswered(result))
        return result, later

    def _spot_check_rate(self, query: Query, decision: LocalDecision) -> float:
        """ε, raised where the bound is least certain: a neural answer from a region that opened on
        few labels is checked UNCERTAIN_BOOST times as often."""
        rate = self.settings.spot_check_rate
        thresholds = decision.thresholds
        if decision.source == "neural" and thresholds is not None:
            labels = thresholds.neural_regions.get(pattern_of(query.text), [0.0])[0]
            if labels < UNCERTAIN_REGION_LABELS:
                rate = min(1.0, rate * UNCERTAIN_BOOST)
        return rate

    @staticmethod
    def _exchange(query: Query, result: AskResult) -> Exchange | None:
        """The question and its reply as the conversation's messages (when it has one)."""
        if query.conversation_id is None:
            return None
        return Exchange(query.conversation_id, query.text, result.answer or result.error or "",
                        bool(result.answer), result.source)

    async def decide(self, query: Query) -> LocalDecision:
        """The local side's decision. A template or the exact stored answer comes at once, on this
        loop (no thread, no torch); for the rest the models load first (without them the other
        tiers answer) and the tiers run in a worker thread."""
        quick = self.local.decide_without_models(query.text, query.norm, query.context_key)
        if quick is not None:
            return quick
        await self.host.load_or_go_on()
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self.local.decide, query.text, query.norm, query.context,
                                           query.context_key, cancel=cancel)
        finally:
            cancel.set()  # cancelled (esc): the decode stops at its next token instead of running on

    async def local_only(self, raw_query: str) -> LocalDecision:
        """The local pipeline's decision for a standalone query; nothing is logged or learned."""
        query = Query.of(clean_query(raw_query))
        await self.host.load()
        return await asyncio.to_thread(self.local.decide, query.text, query.norm, "", "")

    async def _answer_locally(self, query: Query, decision: LocalDecision) -> AskResult:
        assert decision.answer is not None
        result = AskResult(query=query.text, answer=decision.answer, source=decision.source,
                           router_p=decision.router_p, validator_p=decision.validator_p,
                           confidence=decision.confidence, latency_ms=decision.latency_ms,
                           learned_id=decision.learned_id)
        record = QueryRecord(query.text, decision.source, decision.answer, decision.latency_ms,
                             query.context_key, query.conversation_id, decision.router_p,
                             decision.validator_p, decision.confidence, credited=decision.credited)
        result.query_id = await self.store.log_answer(record, hit_id=decision.learned_id,
                                                      exchange=self._exchange(query, result))
        return result

    async def _ask_teacher(self, query: Query, on_text: TextCallback | None) -> TeacherReply:
        return await self.teacher.answer(query.text, query.turns(), on_text)

    async def _forward(self, query: Query, decision: LocalDecision, on_text: TextCallback | None,
                       forward: Forwarder) -> AskResult:
        t0 = time.perf_counter()
        result = AskResult(query=query.text, router_p=decision.router_p, validator_p=decision.validator_p)
        try:
            reply = await forward(query, on_text)
        except TeacherError as exc:  # reported once: in the result (the CLI prints it, the UI shows it)
            result.error = exc.message
            result.latency_ms = (time.perf_counter() - t0) * 1000
            record = QueryRecord(query.text, None, None, result.latency_ms, query.context_key,
                                 query.conversation_id, decision.router_p, decision.validator_p,
                                 error=exc.message)
            result.query_id = await self.store.log_answer(record, exchange=self._exchange(query, result))
            return result
        reply.text = strip_controls(reply.text)  # no escape sequences or lone surrogates from the network
        result.answer = result.teacher_answer = reply.text
        result.source = "forward"
        result.latency_ms = decision.latency_ms + (time.perf_counter() - t0) * 1000
        record = QueryRecord(query.text, "forward", reply.text, result.latency_ms, query.context_key,
                             query.conversation_id, decision.router_p, decision.validator_p,
                             teacher_answer=reply.text, teacher_input_tokens=reply.input_tokens,
                             teacher_output_tokens=reply.output_tokens)
        exchange = self._exchange(query, result)
        if reply.text.strip():
            await self._label_nearest(query, decision, reply.text, "forward")
            await self._compare_draft(query, decision, reply.text)
            result.query_id = await self.learn(query, reply.text, "forward", record, decision.embedding,
                                               exchange)
        else:
            result.query_id = await self.store.log_answer(record, exchange=exchange)
        return result

    async def _compare_draft(self, query: Query, decision: LocalDecision, teacher_answer: str) -> None:
        """The generator's draft of a question it did not serve, against the teacher's answer: out-of-
        sample evidence about this kind of question (how a closed region comes to open)."""
        if not decision.neural_answer or not decision.neural_answer.strip():
            return
        agreed = (await self._agreement(decision.neural_answer, teacher_answer)).agrees
        features = [decision.neural_confidence or 0.0, 1.0, 0.0]
        await self.coordinator.add_validator_point(
            CalibrationPoint(query.text, decision.neural_answer, features, agreed, "forward",
                             generator_run=await self.store.generator_run()), at_once=False)

    async def _label_nearest(self, query: Query, decision: LocalDecision, teacher_answer: str, origin: str) -> None:
        """Whether the nearest stored question's answer was right for this query: a label the
        acceptance model was never fitted on (free at a forward, before the new answer is stored)."""
        candidate = decision.semantic
        if candidate is None:
            return
        agreed = (await self._agreement(candidate.entry.answer, teacher_answer)).agrees
        await self.coordinator.add_pair_label(PairLabel(query.text, candidate.entry.query, int(agreed),
                                                        list(candidate.features), origin, query.context_key))

    # ------------------------------------------------------------- spot checks
    async def _spot_check(self, query: Query, result: AskResult, decision: LocalDecision,
                          check: Forwarder) -> None:
        """Ask the teacher too; agreement labels the router and validator and may correct the store."""
        assert decision.answer is not None
        try:
            reply = await check(query, None)
        except TeacherError as exc:
            self._emit(Notice("warning", f"Spot check skipped: {exc.message}"))
            return
        reply.text = strip_controls(reply.text)  # what the network sends never reaches a terminal raw
        verdict = await self._agreement(decision.answer, reply.text)
        result.verified, result.teacher_answer = verdict.agrees, reply.text
        await self.store.set_verification(result.query_id, verdict.agrees, reply.text,
                                          reply.input_tokens, reply.output_tokens)
        neural = decision.source == "neural"
        features = [decision.confidence or 0.0, 1.0 if neural else 0.0, 0.0 if neural else 1.0]
        await self.store.add_labels([
            Label(query.text, decision.answer, "neural" if neural else "checked", int(verdict.agrees),
                  "spot_check", query.context_key, verdict.score, features),
            Label(query.text, "", "router", int(verdict.agrees), "spot_check", query.context_key, None,
                  decision.router_features),
        ])
        if neural:  # a point for the validator threshold (dropped there if the question was trained on)
            await self.coordinator.add_validator_point(
                CalibrationPoint(query.text, decision.answer, features, verdict.agrees, "spot_check",
                                 generator_run=await self.store.generator_run()))
        semantic = decision.semantic
        if decision.source == "learned" and semantic is not None and decision.learned_id == semantic.entry.id:
            await self._label_nearest(query, decision, reply.text, "spot_check")
        if not verdict.agrees:
            # The teacher's answer replaces the wrong one and is learned from.
            await self.learn(query, reply.text, "spot_check", None)
        self._emit(QueryVerified(result.query_id, verdict.agrees, reply.text))

    async def _agreement(self, local: str, teacher: str) -> Agreement:
        """`agreement`, with the sentence encoder when there is one (free-text answers said in
        other words agree); in a worker thread, as the encoder takes milliseconds."""
        encoder = self.host.encoder
        if encoder is None:
            return agreement(local, teacher)
        return await asyncio.to_thread(agreement, local, teacher, encoder.embed)

    def check_in_background(self, check: Awaitable[None]) -> None:
        """Run a spot check after its answer was returned; close() waits for it a moment."""
        task = asyncio.ensure_future(check)
        self._spot_checks.add(task)
        task.add_done_callback(self._spot_checks.discard)

    async def close(self) -> None:
        """Give running spot checks a moment, then cancel them: quitting must not wait out a
        live teacher call's timeout."""
        if not self._spot_checks:
            return
        _, pending = await asyncio.wait(self._spot_checks, timeout=SPOT_CHECK_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # ---------------------------------------------------------------- learning
    async def learn(self, query: Query, answer: str, origin: str, record: QueryRecord | None,
                    embedding: np.ndarray | None = None, exchange: Exchange | None = None) -> int | None:
        """learn_from_teacher: store the answer and queue an example, in one transaction (with the
        log row and the conversation's messages); then the question's vector joins the semantic
        store (`embedding`, when the decision computed it)."""
        from shammah_tui.curriculum.skills import is_held_out_question  # the skills load on first learning

        learned_id, _, log_id = await self.store.learn(
            query=query.text, norm_query=query.norm, context=query.context, context_key=query.context_key,
            answer=answer, origin=origin, log=record, exchange=exchange,
            train=not is_held_out_question(query.text))
        entry = LearnedAnswer(learned_id, query.norm, query.context_key, query.text, answer, origin)
        self.local.index.add(entry)
        await self.host.embed_and_keep([entry], None if embedding is None else embedding[None, :])
        return log_id

    async def learn_pairs(self, pairs: Sequence[tuple[str, str]], origin: str) -> int:
        """Queue teacher-written (query, answer) pairs as examples and learned answers; returns how
        many were queued."""
        from shammah_tui.curriculum.skills import is_held_out_question

        queries = [Query.of(text) for text, _ in pairs]
        rows = [{"query": q.text, "norm_query": q.norm, "context": "", "context_key": "", "answer": answer,
                 "train": "no" if is_held_out_question(q.text) else "yes"}
                for q, (_, answer) in zip(queries, pairs)]
        learned_ids = await self.store.learn_many(rows, origin)
        entries = [LearnedAnswer(learned_id, row["norm_query"], "", row["query"], row["answer"], origin)
                   for row, learned_id in zip(rows, learned_ids)]
        for entry in entries:
            self.local.index.add(entry)
        await self.host.embed_and_keep(entries)
        return sum(row["train"] == "yes" for row in rows)  # a held-out question is stored, never queued
