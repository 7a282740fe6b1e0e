"""Messages that carry core events and worker outcomes to the UI.

The engine calls its listeners from the UI loop *and* from training threads; the
listener only wraps the `EngineEvent` in a `CoreEvent` and posts it (`post_message`
is thread-safe). Handlers on the UI loop own all UI state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from shammah_tui.core.stats import Stats
from shammah_tui.core.events import AskResult, EngineEvent, TrainingStep
from shammah_tui.core.records import LossPoint, RequestLogRow, SkillResult, ToolCallRow, TrainingRun
from shammah_tui.core.records import Message as StoredMessage

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
class ModelsFailed(Message):
    """Loading the local models failed; the app keeps working with the teacher."""

    reason: str
    """One line saying why."""


@dataclass
class CoreEvent(Message):
    """Events of the headless core, carried to the UI loop as they are.

    The core defines each event once (`shammah_tui.core.events`); the engine's listener only wraps
    it and posts it (`post_message` is thread-safe: training steps come from a worker thread).
    A backlog of training steps collapses into one message: `can_replace` is called on the UI
    loop by the message pump with the next queued message and hands its steps to that message,
    so coalescing loses no loss point while the UI handles one message per batch.
    """

    events: list[EngineEvent]
    """The events, oldest first (several only when training steps were coalesced)."""

    @classmethod
    def of(cls, event: EngineEvent) -> CoreEvent:
        return cls([event])

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, CoreEvent) and self._steps_of_one_run(message):
            message.events[:0] = self.events
            return True
        return False

    def _steps_of_one_run(self, other: CoreEvent) -> bool:
        runs = {e.run_id if isinstance(e, TrainingStep) else None for e in self.events + other.events}
        return len(runs) == 1 and None not in runs


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
    skills: list[SkillResult] = field(default_factory=list)
    """Each skill's held-out accuracy after each earlier run, oldest first."""
    requests: list[RequestLogRow] = field(default_factory=list)
    """The last requests `serve` answered, oldest first."""
    inputs: list[str] = field(default_factory=list)
    """The lines sent from the input before the last quit, oldest first."""


@dataclass
class StatsFetched(Message):
    """A fresh `engine.stats()`."""

    stats: Stats
    """What `engine.stats()` measured."""


@dataclass
class AskFinished(Message):
    """The ask worker is done (answered, failed or cancelled)."""

    query: str
    """The question as typed."""
    result: AskResult | None
    """The engine's result; None when the ask was cancelled."""


@dataclass
class TeachFinished(Message):
    """The teaching worker is done (finished, failed or stopped)."""

    stopped: bool = False
    """True when the user stopped it."""
    error: str | None = None
    """Why it failed, when it did."""
    summary: str = ""
    """What the session did (`2 turns · 3 tool calls · finished`), when it finished."""


@dataclass
class Exported(Message):
    """The export worker is done."""

    path: Path | None
    """The file written; None when nothing was written."""
    count: int
    """Messages written."""
    error: str | None = None
    """Why nothing was written."""


@dataclass
class ConversationLoaded(Message):
    """A stored conversation was read, to be shown and continued."""

    conversation_id: int
    """Its id."""
    messages: list[StoredMessage]
    """Its messages, oldest first."""


@dataclass
class SettingChanged(Message):
    """The settings worker is done: a setting was saved (and maybe applied), or refused."""

    key: str
    """The setting."""
    value: Any
    """Its new value (None when refused)."""
    applied: bool
    """True when the engine took it at once (else it takes effect at the next start)."""
    error: str | None = None
    """Why it was refused."""
