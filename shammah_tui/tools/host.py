"""What the teaching tools need from the engine, and nothing more.

The tools depend on this protocol, not on `Engine`: a tool can be read, tested and reused without
the rest of the engine, and the engine can change inside without touching them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shammah_tui.pipeline.local import LocalDecision
    from shammah_tui.core.records import Label
    from shammah_tui.core.runs import RunReport


class TeacherUnavailable(Exception):
    """The teacher could not answer; `message` says why in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TeachingHost(Protocol):
    """The engine as the five teaching tools see it."""

    @property
    def training(self) -> bool:
        """True while a training run goes."""
        ...

    async def local_only(self, raw_query: str) -> LocalDecision:
        """The local pipeline's decision for a standalone query; nothing is logged or learned.
        Raises `QueryRejected` for a query with nothing left once cleaned."""
        ...

    async def learn_pairs(self, pairs: Sequence[tuple[str, str]], origin: str) -> int:
        """Store teacher-written (query, answer) pairs and queue them as training examples."""
        ...

    async def queue_counts(self) -> dict[str, int]:
        """Training examples by state: `queued`, `trained`."""
        ...

    def start_training(self, trigger: str = "manual") -> asyncio.Task[RunReport | None] | None:
        """Start a run in the background (None if one is already running)."""
        ...

    async def train(self, trigger: str = "manual") -> RunReport | None:
        """Train now and wait (joins a run already going); None when there was nothing to train."""
        ...

    async def ask_teacher(self, query: str) -> str:
        """The teacher's answer to a standalone query; raises `TeacherUnavailable`."""
        ...

    async def add_labels(self, labels: Sequence[Label]) -> None:
        """Keep agreement labels for the router and validator."""
        ...

    async def add_paraphrases(self, groups: Sequence[Sequence[str]]) -> None:
        """Keep groups of phrasings of one question as positive pairs for the semantic store."""
        ...

    async def skill_report(self) -> dict[str, dict[str, Any]]:
        """The generator on each skill's held-out set, now: `accuracy`, `served` (the share the
        neural tier would serve at its threshold), `samples`, and `groups` (accuracy per group)."""
        ...
