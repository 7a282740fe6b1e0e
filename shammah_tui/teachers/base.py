"""The teacher interface: who answers forwarded queries and drives active teaching.

Two implementations: `claude.ClaudeTeacher` (the anthropic SDK) and
`offline.OfflineTeacher` (a curriculum written in this project).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from shammah_tui.tools.base import ToolRegistry

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation, given to the teacher as context."""

    role: Role
    text: str


@dataclass
class TeacherReply:
    """A finished teacher answer."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class TeachSummary:
    """What one active-teaching session did."""

    iterations: int = 0
    tool_calls: int = 0
    stopped_because: str = "done"
    final_text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


ErrorKind = Literal[
    "auth", "permission", "rate_limit", "overloaded", "server", "timeout",
    "connection", "stream_cut", "bad_request", "unavailable", "unknown",
]


class TeacherError(Exception):
    """A teacher failure with a one-line message fit for the user."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


TextCallback = Callable[[str], None]


@dataclass
class TeachRequest:
    """What an active-teaching session is asked to do."""

    topic: str | None = None
    rounds: int = 1
    max_iterations: int = 24
    extra: dict = field(default_factory=dict)


class Teacher(ABC):
    """Answers forwarded queries and teaches the local models through tools."""

    #: "offline" or "claude"
    kind: str = "teacher"

    @property
    @abstractmethod
    def label(self) -> str:
        """Short description for headers, e.g. "offline curriculum" or "claude-sonnet-5"."""

    @abstractmethod
    async def answer(
        self,
        query: str,
        history: Sequence[Turn] = (),
        on_text: TextCallback | None = None,
    ) -> TeacherReply:
        """Answer one query; stream text fragments to `on_text`. Raises TeacherError."""

    @abstractmethod
    async def teach(
        self,
        tools: ToolRegistry,
        request: TeachRequest,
        on_text: TextCallback | None = None,
    ) -> TeachSummary:
        """Run the teaching tool loop against `tools`. Tool events come from the registry."""

    async def close(self) -> None:  # noqa: B027 - a no-op by design: only a teacher holding resources overrides it
        """Release network resources."""
