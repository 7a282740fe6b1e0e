"""Messages that carry engine events (and worker outcomes) to the UI.

The engine calls its listeners from the UI loop *and* from training threads;
the listener only turns an `EngineEvent` into one of these and posts it
(`post_message` is thread-safe). Handlers on the UI loop own all UI state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

from shammah_tui.events import (
    AskResult, EngineEvent, ModelsLoaded, Notice, QueryAnswered, QueryVerified, ToolCalled,
    TrainingFinished, TrainingStarted, TrainingStep,
)
from shammah_tui.store.rows import LossPoint, ToolCallRow, TrainingRun
from shammah_tui.store.rows import Message as StoredMessage
from shammah_tui.tools.base import ToolCallEvent
from shammah_tui.training.events import RunReport, StepEvent

if TYPE_CHECKING:
    from shammah_tui.ui.engine_api import EngineLike


@dataclass
class EngineOpened(Message):
    """The engine (store, teacher) is open and can be used."""

    engine: EngineLike
    """The open engine."""


@dataclass
class EngineOpenFailed(Message):
    """The engine could not be opened (bad database, bad settings)."""

    reason: str
    """One line saying why."""


@dataclass
class ModelsReady(Message):
    """The local models are loaded (torch is up)."""

    info: dict[str, Any]
    """`LocalModels.info()`: device, parameter counts …"""
    warnings: list[str] = field(default_factory=list)
    """Problems met while loading (a bad checkpoint replaced by fresh models …)."""


@dataclass
class ModelsFailed(Message):
    """Loading the local models failed; the app keeps working with the teacher."""

    reason: str
    """One line saying why."""


@dataclass
class QueryLogged(Message):
    """A query was answered (by the UI, a tool or a batch); feeds the rates."""

    result: AskResult
    """What the engine returned for it."""


@dataclass
class AnswerVerified(Message):
    """A spot check finished after its local answer was shown."""

    query_id: int | None
    """The query log id of the answer that was checked."""
    verified: bool
    """True when the teacher agreed."""


@dataclass
class TrainingBegan(Message):
    """A training run started."""

    run_id: int
    """The run's id in the store."""
    trigger: str
    """`manual`, `auto`, `tool` …"""
    total_steps: int
    """Generator steps planned for the run."""


@dataclass
class TrainingStepped(Message):
    """One or more optimizer steps; a backlog of these collapses into one message.

    `can_replace` is called on the UI loop by the message pump with the next
    queued message; it hands its steps to that message, so coalescing loses no
    loss point while the UI handles one message per batch.
    """

    run_id: int
    """The run the steps belong to."""
    steps: list[StepEvent]
    """The steps, oldest first."""

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, TrainingStepped) and message.run_id == self.run_id:
            message.steps[:0] = self.steps
            return True
        return False


@dataclass
class TrainingEnded(Message):
    """A training run finished, was cancelled or failed."""

    run_id: int
    """The run's id in the store."""
    report: RunReport
    """Losses before and after, throughput, status."""


@dataclass
class ToolCallUpdated(Message):
    """A tool call started or ended."""

    event: ToolCallEvent
    """The call, with its status (running / ok / error)."""


@dataclass
class EngineNotice(Message):
    """Something the user should read (teacher unavailable, nothing to train …)."""

    level: str
    """`information`, `warning` or `error`."""
    text: str
    """One line."""


def to_message(event: EngineEvent) -> Message | None:
    """The UI message for an engine event (None for an unknown event)."""
    if isinstance(event, TrainingStep):
        return TrainingStepped(event.run_id, [event.step])
    if isinstance(event, QueryAnswered):
        return QueryLogged(event.result)
    if isinstance(event, QueryVerified):
        return AnswerVerified(event.query_id, event.verified)
    if isinstance(event, ToolCalled):
        return ToolCallUpdated(event.event)
    if isinstance(event, TrainingStarted):
        return TrainingBegan(event.run_id, event.trigger, event.total_steps)
    if isinstance(event, TrainingFinished):
        return TrainingEnded(event.run_id, event.report)
    if isinstance(event, ModelsLoaded):
        return ModelsReady(dict(event.info), list(event.warnings))
    if isinstance(event, Notice):
        return EngineNotice(event.level, event.text)
    return None


@dataclass
class SessionRestored(Message):
    """What the store remembers, read at start-up to continue where the last session ended."""

    conversation_id: int
    """The conversation being continued (or a new one)."""
    messages: list[StoredMessage]
    """Its messages, oldest first."""
    source_counts: dict[str, int]
    """All-time answers per source."""
    recent_sources: list[str]
    """Sources of the last answered queries, oldest first."""
    losses: dict[str, list[LossPoint]]
    """Stored loss points per model."""
    last_run: TrainingRun | None
    """The last finished run, with its losses."""
    tool_calls: list[ToolCallRow]
    """Recent tool calls."""


@dataclass
class StatsFetched(Message):
    """A fresh `engine.stats()`."""

    stats: dict[str, Any]
    """The stats object (DESIGN §6)."""


@dataclass
class AskFinished(Message):
    """The ask worker is done (answered, failed or cancelled)."""

    query: str
    """The question as typed."""
    result: AskResult | None
    """The engine's result; None when the ask was cancelled."""
    view: Any = None
    """The AnswerView that shows it (a later spot-check verdict goes there)."""


@dataclass
class TeachFinished(Message):
    """The teaching worker is done (finished, failed or stopped)."""

    stopped: bool = False
    """True when the user stopped it."""
