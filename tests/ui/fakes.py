"""A scripted engine for UI tests: the Engine's interface, no torch, no network, no disk."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shammah_tui.events import (
    AskResult, EngineEvent, ModelsLoaded, QueryAnswered, ToolCalled, TrainingFinished,
    TrainingStarted, TrainingStep,
)
from shammah_tui.store.rows import LossPoint, Message, ModelLoss, ToolCallRow, TrainingRun
from shammah_tui.tools.base import ToolCallEvent, ToolResult
from shammah_tui.training.events import RunReport, StepEvent, improvement_pct


@dataclass
class FakeSettings:
    batch_size: int = 32
    n_embd: int = 128
    n_layer: int = 2
    error_bound: float = 0.05


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

    conversation: int | None = None
    stored_messages: list[Message] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("neural", "learned", "template", "forward"), 0))
    sources: list[str] = field(default_factory=list)
    losses: dict[str, list[LossPoint]] = field(default_factory=dict)
    stored_runs: list[TrainingRun] = field(default_factory=list)
    stored_tool_calls: list[ToolCallRow] = field(default_factory=list)
    conversations_made: int = 0

    async def latest_conversation(self) -> int | None:
        return self.conversation

    async def new_conversation(self, title: str = "") -> int:
        self.conversations_made += 1
        self.conversation = (self.conversation or 0) + 1
        return self.conversation

    async def messages(self, conversation_id: int, limit: int = 200) -> list[Message]:
        return [m for m in self.stored_messages if m.conversation_id == conversation_id][-limit:]

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
        text = self.engine.tool_results.get(name, f"{name}: ok")
        result = ToolResult(text)
        self.engine.emit(ToolCalled(ToolCallEvent(call_id, name, raw_input, "ok", 0.0, 12.5,
                                                  text.splitlines()[0], text)))
        return result


class FakeEngine:
    """Answers from a script; training and teaching emit scripted events."""

    def __init__(self, *, store: FakeStore | None = None, teacher: FakeTeacher | None = None,
                 answers: dict[str, AskResult] | None = None, stream_chunks: int = 3) -> None:
        self.settings = FakeSettings()
        self.store = store or FakeStore()
        self.teacher = teacher or FakeTeacher()
        self.answers = answers or {}
        self.stream_chunks = stream_chunks
        self.tool_results: dict[str, str] = {}
        self.asked: list[tuple[str, int | None, list[tuple[str, str]]]] = []
        self.models_ready = False
        self.closed = False
        self.train_calls: list[str] = []
        self.cancelled_training = False
        self.teach_calls: list[str | None] = []
        self.teach_gate: asyncio.Event | None = None
        self.train_gate: asyncio.Event | None = None
        self.registry_error: Exception | None = None
        self.load_gate: asyncio.Event | None = None
        self.ask_gate: asyncio.Event | None = None
        self.stats_value: dict[str, Any] = default_stats()
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
    async def ask(self, raw_query: str, *, conversation_id: int | None = None,
                  history: Sequence[tuple[str, str]] = (), scope: str = "",
                  on_text: Callable[[str], None] | None = None, auto_train: str = "background",
                  spot_check: str = "inline") -> AskResult:
        assert spot_check == "background", "the UI shows local answers at once"
        self.asked.append((raw_query, conversation_id, list(history)))
        scripted = self.answers.get(raw_query) or AskResult(
            query=raw_query, answer=f"Answer to: {raw_query}", source="forward", latency_ms=120.0)
        result = dataclasses.replace(scripted, query_id=len(self.asked))
        if result.source == "forward" and result.answer and on_text is not None:
            text = result.answer
            size = max(1, len(text) // self.stream_chunks + 1)
            for i in range(0, len(text), size):
                on_text(text[i:i + size])
                await asyncio.sleep(0)
        if self.ask_gate is not None:
            await self.ask_gate.wait()
        self.emit(QueryAnswered(result))  # a failure is in the result only, as the engine does
        return result

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

    async def _train(self, trigger: str) -> RunReport:
        self._run_id += 1
        run_id = self._run_id
        self.emit(TrainingStarted(run_id, trigger, 4))
        for step in range(1, 3):
            self.emit(TrainingStep(run_id, StepEvent("generator", step, 4, 5.0 - step, 100.0)))
            await asyncio.sleep(0)
        if self.train_gate is not None:
            await self.train_gate.wait()
        if self.cancelled_training:
            report = RunReport(status="cancelled")
        else:
            report = scripted_report()
        self.emit(TrainingFinished(run_id, report))
        return report

    # -- teaching and tools
    def tool_registry(self) -> FakeRegistry:
        if self.registry_error is not None:
            raise self.registry_error
        return FakeRegistry(self)

    async def teach(self, rounds: int = 1, topic: str | None = None,
                    on_text: Callable[[str], None] | None = None) -> Any:
        self.teach_calls.append(topic)
        if on_text is not None:
            on_text("Let me check what the local model knows. ")
        await self.tool_registry().call("query_local_model", {"query": "what is 2 + 2?"})
        if self.teach_gate is not None:
            await self.teach_gate.wait()
        from shammah_tui.teachers.base import TeachSummary

        return TeachSummary(iterations=2, tool_calls=1, stopped_because="done")

    async def stats(self) -> dict[str, Any]:
        return dict(self.stats_value)


def default_stats() -> dict[str, Any]:
    return {
        "queries": 40, "by_source": {"neural": 10, "learned": 12, "template": 6, "forward": 12},
        "local_share": 0.7, "examples_queued": 12, "examples_trained": 640, "learned_answers": 210,
        "training_runs": 3, "last_run": None, "verified_agreement": 0.979, "spot_checks": 48,
        "estimated_local_error": 0.021, "error_bound": 0.05, "validator_threshold": 0.62,
        "teacher_tokens_used": 12345, "teacher_tokens_saved_estimate": 40210,
    }


def empty_stats() -> dict[str, Any]:
    """stats() of a fresh data directory."""
    return {
        "queries": 0, "by_source": dict.fromkeys(("neural", "learned", "template", "forward"), 0),
        "local_share": 0.0, "examples_queued": 0, "examples_trained": 0, "learned_answers": 0,
        "training_runs": 0, "last_run": None, "verified_agreement": None, "spot_checks": 0,
        "estimated_local_error": None, "error_bound": 0.05, "validator_threshold": 0.5,
        "teacher_tokens_used": 0, "teacher_tokens_saved_estimate": 0,
    }


def scripted_report() -> RunReport:
    losses = {
        "generator": ModelLoss(4.21, 3.12, improvement_pct(4.21, 3.12)),
        "router": ModelLoss(0.69, 0.41, improvement_pct(0.69, 0.41)),
        "validator": ModelLoss(0.66, 0.48, improvement_pct(0.66, 0.48)),
    }
    return RunReport(status="done", losses=losses, steps=80, examples=1280, examples_per_s=88.4,
                     duration_s=14.5)
