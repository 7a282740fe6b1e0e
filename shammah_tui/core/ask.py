"""A question and how to ask it: what every front end (CLI, UI, `serve`, benches) hands `Engine.ask`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

AutoTrain = Literal["background", "wait", "off"]
"""When the queue reaches the batch size: "background" starts a run and returns, "wait" finishes
the run first, "off" does nothing."""
SpotCheck = Literal["inline", "background", "off"]
""""inline" waits for the teacher's verdict on a spot-checked local answer (the CLI prints it);
"background" returns the local answer at once and emits QueryVerified later (the UI); "off"
never checks."""


@dataclass(frozen=True)
class Question:
    """A question as asked, in its conversation."""

    text: str
    conversation_id: int | None = None
    """Where the question and its answer are stored as messages (None: not stored)."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier (role, text) turns, oldest first: the context it is keyed on and the teacher sees."""
    scope: str = ""
    """Keeps answers apart that must never be shared (another system prompt, another model)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(tuple(turn) for turn in self.history))


@dataclass(frozen=True)
class AskPolicy:
    """What asking may set off besides the answer."""

    auto_train: AutoTrain = "background"
    spot_check: SpotCheck = "inline"

    def __post_init__(self) -> None:
        if self.auto_train not in get_args(AutoTrain):
            raise ValueError(f"auto_train must be one of {get_args(AutoTrain)}, not {self.auto_train!r}")
        if self.spot_check not in get_args(SpotCheck):
            raise ValueError(f"spot_check must be one of {get_args(SpotCheck)}, not {self.spot_check!r}")


DEFAULT_POLICY = AskPolicy()
"""Train in the background when the queue is full; wait for a spot check's verdict."""
