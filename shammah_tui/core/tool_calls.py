"""A teaching tool's result and the event each call reports, as the log, the store and the UI see
them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

@dataclass
class ToolResult:
    """What a tool returns: text for the model, structured data for the UI."""

    text: str
    is_error: bool = False
    data: dict[str, Any] = field(default_factory=dict)


ToolStatus = Literal["running", "ok", "error"]


@dataclass
class ToolCallEvent:
    """One tool call, as the log shows it; emitted at start and at end."""

    call_id: str
    name: str
    input: dict[str, Any]
    status: ToolStatus
    started_at: float
    duration_ms: float | None = None
    summary: str = ""
    result_text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
