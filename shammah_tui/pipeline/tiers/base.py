"""What a tier is: a named way to answer locally, with a cost, over one frozen decision state.

A tier sees only the `DecisionState` the decision started with and the query's `Ask`; it fills in
the `LocalDecision` when it answers. In the quick pass (on the caller's loop, no torch) a tier
that cannot decide without the models says so with `NEEDS_MODELS`, and the threaded pass decides.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from shammah_tui.core.kinds import Tier
from shammah_tui.pipeline.learned import LearnedHit
from shammah_tui.pipeline.templates import TemplateAnswer

if TYPE_CHECKING:
    from shammah_tui.pipeline.local import DecisionState, LocalDecision


class Pending(enum.Enum):
    NEEDS_MODELS = "needs models"


NEEDS_MODELS = Pending.NEEDS_MODELS
"""A quick-pass outcome: this tier may answer, but only with the models loaded."""

Outcome = bool | Literal[Pending.NEEDS_MODELS]


@dataclass(frozen=True)
class Ask:
    """What every tier looks at for one query, computed once. What a tier outside the order would
    need is never computed: a tier that is off takes no part in the decision."""

    query: str
    norm: str
    context: str
    context_key: str
    hit: LearnedHit | None
    """The best stored answer by wording (None when the learned tier is off)."""
    template: TemplateAnswer | None
    """An exact rule's answer (None when the template tier is off)."""
    own_id: int | None
    """The query's own stored answer, left out when it is asked as if new."""
    use_router: bool = True
    cancel: threading.Event | None = None
    """Set when the question is cancelled: a decode stops at the next token."""


class TierPlugin(Protocol):
    """One local tier."""

    name: Tier
    cost: int
    """Its rank in cost, cheapest 0 (measured: bench `pipeline_tier_ms`)."""

    def answer(self, ask: Ask, state: DecisionState, decision: LocalDecision, *, quick: bool) -> Outcome:
        """True (and `decision` filled) when this tier answers; False when it does not; in the quick
        pass, NEEDS_MODELS when it cannot tell without the models."""
        ...
