"""Engine events: what the core reports to whoever watches (the UI, the CLI).

Listeners may be called from a worker thread (training steps), so a listener
must be thread-safe; Textual's `post_message` is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shammah_tui.core.kinds import NoticeLevel, Source
from shammah_tui.core.records import RequestLogRow
from shammah_tui.core.tool_calls import ToolCallEvent
from shammah_tui.core.runs import RunReport, StepEvent


@dataclass
class AskResult:
    """One query's outcome: the §6 JSON line of `ask --json`."""

    query: str
    answer: str | None = None
    source: Source | None = None
    latency_ms: float = 0.0
    router_p: float | None = None
    validator_p: float | None = None
    verified: bool | None = None
    teacher_answer: str | None = None
    error: str | None = None
    confidence: float | None = None
    query_id: int | None = None
    learned_id: int | None = None
    """The stored answer a local answer reused (its measured upstream usage is what it saved)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query, "answer": self.answer, "source": self.source,
            "latency_ms": round(self.latency_ms, 3),
            "router_p": _round(self.router_p), "validator_p": _round(self.validator_p),
            "verified": self.verified, "teacher_answer": self.teacher_answer, "error": self.error,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class QueryAnswered:
    result: AskResult


@dataclass
class QueryVerified:
    """A spot check finished after its local answer was shown."""

    query_id: int | None
    verified: bool
    teacher_answer: str


@dataclass
class ModelsLoaded:
    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass
class TrainingStarted:
    run_id: int
    trigger: str
    total_steps: int


@dataclass
class TrainingStep:
    run_id: int
    step: StepEvent


@dataclass
class TrainingFinished:
    run_id: int
    report: RunReport


@dataclass
class ToolCalled:
    event: ToolCallEvent


@dataclass
class Notice:
    level: NoticeLevel
    text: str


@dataclass
class RequestServed:
    """`serve` answered (or refused) one request: the row its request log got."""

    request: RequestLogRow


EngineEvent = (QueryAnswered | QueryVerified | ModelsLoaded | TrainingStarted | TrainingStep | TrainingFinished
               | ToolCalled | Notice | RequestServed)
