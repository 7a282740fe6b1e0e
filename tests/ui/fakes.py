"""A scripted engine for UI tests: the Engine's interface, no torch, no network, no disk."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shammah_tui.core.ask import DEFAULT_POLICY, AskPolicy, Question
from shammah_tui.core.stats import Stats, TierBound
from shammah_tui.core.events import (
    AskResult, EngineEvent, ModelsLoaded, QueryAnswered, ToolCalled, TrainingFinished, TrainingStarted,
    TrainingStep,
)
from shammah_tui.settings import Settings
from shammah_tui.core.records import (
    ConversationSummary, LossPoint, Message, ModelLoss, RequestLogRow, SkillResult, ToolCallRow, TrainingRun,
)
from shammah_tui.core.teaching import TeachSummary
from shammah_tui.core.tool_calls import ToolCallEvent, ToolResult
from shammah_tui.core.runs import RunReport, StepEvent, improvement_pct
from shammah_tui.ui.engine_api import EngineLike

if TYPE_CHECKING:
    from shammah_tui.engine import Engine


def fake_settings() -> Settings:
    """The settings the scripted engine runs with (small models, runs of 32)."""
    return Settings(batch_size=32, step_batch_size=32, n_embd=128, n_layer=2, error_bound=0.05,
                    spot_check_rate=0.1, auto_train=True, tier_order=("neural", "learned", "template"),
                    steps_per_run=40, tool_iterations=24, theme="textual-dark")


class FakeTeacher:
    kind = "offline"

    def __init__(self, label: str = "offline curriculum") -> None:
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    async def close(self) -> None:
        pass


@dataclass
class FakeStore:
    """In-memory stand-in for the store's read side (and new_conversation)."""

    latest: int | None = None
    """The latest conversation's id."""
    stored_messages: list[Message] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("neural", "learned", "template", "forward"), 0))
    sources: list[str] = field(default_factory=list)
    losses: dict[str, list[LossPoint]] = field(default_factory=dict)
    stored_runs: list[TrainingRun] = field(default_factory=list)
    stored_tool_calls: list[ToolCallRow] = field(default_factory=list)
    stored_requests: list[RequestLogRow] = field(default_factory=list)
    conversations_made: int = 0
    values: dict[str, str] = field(default_factory=dict)
    """`get_value` / `set_value`'s table."""
    read_gate: asyncio.Event | None = None
    """When set, reading the latest conversation waits for it (a slow start)."""

    async def latest_conversation(self) -> int | None:
        if self.read_gate is not None:
            await self.read_gate.wait()
        return self.latest

    async def get_value(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_value(self, key: str, value: str) -> None:
        self.values[key] = value

    async def new_conversation(self, title: str = "") -> int:
        self.conversations_made += 1
        self.latest = (self.latest or 0) + 1
        return self.latest

    async def messages(self, conversation_id: int, limit: int = 200) -> list[Message]:
        return [m for m in self.stored_messages if m.conversation_id == conversation_id][-limit:]

    async def add_message(self, conversation_id: int, role: str, text: str, source: str | None = None,
                          query_id: int | None = None) -> int:
        """As the engine stores each question and answer (the fake engine calls this)."""
        message_id = len(self.stored_messages) + 1
        self.stored_messages.append(Message(message_id, conversation_id, role, text, source, query_id,
                                            1_700_000_000.0 + message_id))
        return message_id

    async def conversations(self, limit: int = 50, include_empty: bool = False) -> list[ConversationSummary]:
        ids = sorted({m.conversation_id for m in self.stored_messages} | set(range(1, (self.latest or 0) + 1)))
        rows = [row for row in [await self.conversation(i) for i in ids] if row is not None]
        rows = [r for r in rows if include_empty or r.messages]
        return sorted(rows, key=lambda r: (r.last_at, r.id), reverse=True)[:limit]

    async def conversation(self, conversation_id: int) -> ConversationSummary | None:
        if conversation_id < 1 or conversation_id > max([self.latest or 0] + [
                m.conversation_id for m in self.stored_messages]):
            return None
        own = [m for m in self.stored_messages if m.conversation_id == conversation_id]
        first = next((m.text for m in own if m.role == "user"), "")
        created = 1_600_000_000.0 + conversation_id
        return ConversationSummary(conversation_id, first, len(own), created,
                                   max([m.created_at for m in own], default=created))

    async def recent_sources(self, limit: int) -> list[str]:
        return self.sources[-limit:]

    async def source_counts(self) -> dict[str, int]:
        return dict(self.counts)

    async def loss_history(self, model: str, limit: int = 500) -> list[LossPoint]:
        return self.losses.get(model, [])[-limit:]

    async def runs(self, limit: int = 20) -> list[TrainingRun]:
        return self.stored_runs[-limit:]

    async def tool_calls(self, limit: int = 200) -> list[ToolCallRow]:
        return self.stored_tool_calls[-limit:]

    async def requests(self, limit: int = 200) -> list[RequestLogRow]:
        return self.stored_requests[-limit:]

    async def skill_history(self, limit: int = 500) -> list[SkillResult]:
        return []


class FakeRegistry:
    """Tool registry double: emits running/ok events like the real one."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, raw_input: Any, call_id: str | None = None) -> ToolResult:
        self.calls.append((name, raw_input))
        call_id = call_id or f"call-{len(self.calls)}"
        self.engine.emit(ToolCalled(ToolCallEvent(call_id, name, raw_input, "running", 0.0)))
        await asyncio.sleep(0)
        if name == "train":
            try:
                report = await self.engine.train_from_tool()
            except asyncio.CancelledError:
                if self.engine.core_fixed:  # the registry ends a cancelled call with a final event
                    self.engine.emit(ToolCalled(ToolCallEvent(call_id, name, raw_input, "error", 0.0, 3.0,
                                                              "cancelled", "The call was cancelled.")))
                raise
            self.engine.tool_results.setdefault("train", f"run {report.status if report else 'skipped'}")
        text = self.engine.tool_results.get(name, f"{name}: ok")
        result = ToolResult(text)
        self.engine.emit(ToolCalled(ToolCallEvent(call_id, name, raw_input, "ok", 0.0, 12.5,
                                                  text.splitlines()[0], text)))
        return result


class FakeEngine:
    """Answers from a script; training and teaching emit scripted events."""

    def __init__(self, *, store: FakeStore | None = None, teacher: FakeTeacher | None = None,
                 answers: dict[str, AskResult] | None = None, stream_chunks: int = 3,
                 data_dir: Path | None = None) -> None:
        self.settings = fake_settings()
        self.data_dir: Path | None = data_dir
        """Where settings.toml and exports go (None: nowhere to save or export)."""
        self.applied_settings: list[Settings] = []
        self.core_fixed = True
        """True: as the engine after issue #13 (a run a tool waits for outlives the tool call; a
        cancelled call ends with an event). False: as before (both are simply dropped)."""
        self.teach_trains = False
        """Whether a teaching session calls the train tool (and waits for the run)."""
        self.train_steps: list[StepEvent] | None = None
        """The steps a run emits before it waits on `train_gate` (default: two generator steps)."""
        self.store = store or FakeStore()
        self.teacher = teacher or FakeTeacher()
        self.answers = answers or {}
        self.stream_chunks = stream_chunks
        self.tool_results: dict[str, str] = {}
        self.asked: list[tuple[str, int | None, list[tuple[str, str]]]] = []
        self.models_ready = False
        self.closed = False
        self.train_calls: list[str] = []
        self.adapter_resets = 0
        self.cancelled_training = False
        self.teach_calls: list[str | None] = []
        self.teach_gate: asyncio.Event | None = None
        self.train_gate: asyncio.Event | None = None
        self.registry_error: Exception | None = None
        self.load_gate: asyncio.Event | None = None
        self.ask_gate: asyncio.Event | None = None
        self.stats_value: Stats = default_stats()
        self.queued = 0
        """Examples queued (`queue_counts`)."""
        self.auto_train_on_ask = False
        """Whether a question starts a run by itself (as a full queue does), when its policy lets it."""
        self._listeners: list[Callable[[EngineEvent], None]] = []
        self._training: asyncio.Task[Any] | None = None
        self._run_id = 0

    # -- events
    def subscribe(self, listener: Callable[[EngineEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- lifecycle
    async def load_models(self) -> list[str]:
        if self.load_gate is not None:
            await self.load_gate.wait()
        self.models_ready = True
        self.emit(ModelsLoaded({"device": "cpu", "params": {"generator": 1_200_000, "router": 150_000,
                                                             "validator": 140_000}}))
        return []

    async def close(self) -> None:
        self.closed = True
        close_store = getattr(self.store, "close", None)
        if close_store is not None:
            await close_store()
        if self._training is not None and not self._training.done():
            self._training.cancel()

    # -- ask
    async def ask(self, question: Question, policy: AskPolicy = DEFAULT_POLICY, *,
                  on_text: Callable[[str], None] | None = None) -> AskResult:
        assert policy.spot_check == "background", "the UI shows local answers at once"
        raw_query, conversation_id, history = question.text, question.conversation_id, question.history
        self.asked.append((raw_query, conversation_id, list(history)))
        scripted = self.answers.get(raw_query) or AskResult(
            query=raw_query, answer=f"Answer to: {raw_query}", source="forward", latency_ms=120.0)
        result = dataclasses.replace(scripted, query_id=len(self.asked))
        add_message = getattr(self.store, "add_message", None)
        if conversation_id is not None and add_message is not None:  # as the engine stores them
            await add_message(conversation_id, "user", raw_query)
            await add_message(conversation_id, "assistant" if result.answer else "notice",
                              result.answer or result.error or "", result.source, result.query_id)
        if result.source == "forward" and result.answer and on_text is not None:
            text = result.answer
            size = max(1, len(text) // self.stream_chunks + 1)
            for i in range(0, len(text), size):
                on_text(text[i:i + size])
                await asyncio.sleep(0)
        if self.ask_gate is not None:
            await self.ask_gate.wait()
        self.emit(QueryAnswered(result))  # a failure is in the result only, as the engine does
        if self.auto_train_on_ask and policy.auto_train != "off" and not self.training:
            self.start_training("auto")
        return result

    async def queue_counts(self) -> dict[str, int]:
        return {"queued": self.queued, "trained": 0}

    # -- training
    @property
    def training(self) -> bool:
        return self._training is not None and not self._training.done()

    def start_training(self, trigger: str = "manual") -> asyncio.Task[Any] | None:
        if self.training:
            return None
        self.train_calls.append(trigger)
        self.cancelled_training = False
        self._training = asyncio.ensure_future(self._train(trigger))
        return self._training

    def cancel_training(self) -> bool:
        if not self.training:
            return False
        self.cancelled_training = True
        if self.train_gate is not None:
            self.train_gate.set()
        return True

    async def reset_adapter(self) -> str:
        self.adapter_resets += 1
        return "The adapter is reset."

    async def _train(self, trigger: str) -> RunReport:
        self._run_id += 1
        run_id = self._run_id
        steps = self.train_steps or [StepEvent("generator", step, 4, 5.0 - step, 100.0) for step in range(1, 3)]
        planned = sum({s.model: s.total_steps for s in steps}.values()) if self.train_steps else 4
        self.emit(TrainingStarted(run_id, trigger, planned))
        for step in steps:
            self.emit(TrainingStep(run_id, step))
            await asyncio.sleep(0)
        if self.train_gate is not None:
            await self.train_gate.wait()
        if self.cancelled_training:
            report = RunReport(status="cancelled")
        else:
            report = scripted_report()
        self.emit(TrainingFinished(run_id, report))
        return report

    async def train_from_tool(self) -> RunReport | None:
        """The train tool's wait: the run goes on if the waiter is cancelled (unless `core_fixed` is off)."""
        task = self._training if self.training else self.start_training("tool")
        if task is None:
            return None
        return await (asyncio.shield(task) if self.core_fixed else task)

    def apply_settings(self, settings: Settings) -> None:
        self.applied_settings.append(settings)
        self.settings = settings

    # -- teaching and tools
    def tool_registry(self) -> FakeRegistry:
        if self.registry_error is not None:
            raise self.registry_error
        return FakeRegistry(self)

    async def teach(self, rounds: int = 1, topic: str | None = None,
                    on_text: Callable[[str], None] | None = None) -> TeachSummary:
        self.teach_calls.append(topic)
        if on_text is not None:
            on_text("Let me check what the local model knows. ")
        await self.tool_registry().call("query_local_model", {"query": "what is 2 + 2?"})
        if self.teach_trains:
            await self.tool_registry().call("train", {"wait": True})
        if self.teach_gate is not None:
            await self.teach_gate.wait()
        return TeachSummary(iterations=2, tool_calls=1, stopped_because="done")

    async def stats(self) -> Stats:
        return self.stats_value


def default_stats() -> Stats:
    return Stats(
        queries=40, by_source={"neural": 10, "learned": 12, "template": 6, "forward": 12},
        local_share=0.7, examples_queued=12, examples_trained=640, learned_answers=210,
        training_runs=3, runs_started=3, verified_agreement=0.979, spot_checks=48,
        estimated_local_error=0.021, error_bound=0.05, validator_threshold=0.62,
        teacher_tokens_used=12345, teacher_tokens_saved_estimate=40210,
        bounds={"neural": TierBound(20, 0.0, 0.05, 0.012, 0.62, 3, 7),
                "learned": TierBound(28, 0.036, 0.05, 0.018, 0.9)},
    )


def empty_stats() -> Stats:
    """stats() of a fresh data directory."""
    return Stats(error_bound=0.05, validator_threshold=0.5)


def scripted_report() -> RunReport:
    losses = {
        "generator": ModelLoss(4.21, 3.12, improvement_pct(4.21, 3.12)),
        "router": ModelLoss(0.69, 0.41, improvement_pct(0.69, 0.41)),
        "validator": ModelLoss(0.66, 0.48, improvement_pct(0.66, 0.48)),
    }
    return RunReport(status="done", losses=losses, steps=80, examples=1280, examples_per_s=88.4,
                     duration_s=14.5)


def _checked(engine: FakeEngine) -> EngineLike:
    """mypy holds the fake to the UI's engine protocol (tests/ui/fakes.py is in mypy's files)."""
    return engine


def _real_checked(engine: Engine) -> EngineLike:
    """mypy holds the real engine to the same protocol."""
    return engine
