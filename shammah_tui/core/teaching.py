"""What passes between the engine and a teacher: earlier turns, replies, teaching summaries and
the one error type a teacher raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

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
