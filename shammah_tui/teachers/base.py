"""The teacher interface: who answers forwarded queries and drives active teaching.

Two implementations: `claude.ClaudeTeacher` (the anthropic SDK) and
`offline.OfflineTeacher` (a curriculum written in this project).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shammah_tui.core.teaching import TeacherReply, TeachSummary, TextCallback, Turn

if TYPE_CHECKING:
    from shammah_tui.tools.base import ToolRegistry

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
