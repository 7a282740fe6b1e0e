"""UI test setup: snapshots in <repo>/snapshots/<module>/, frozen time, scripted engines."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytest_textual_snapshot

from shammah_tui.core.events import AskResult
from shammah_tui.core.records import LossPoint, Message, ToolCallRow, TrainingRun
from tests.ui.fakes import FakeEngine, FakeStore, scripted_report

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = REPO / "snapshots"


@classmethod  # type: ignore[misc]
def _snapshot_dirname(cls, *, test_location) -> str:
    """SVGs live in the top-level snapshots/ folder, one subfolder per test module."""
    return str(SNAPSHOTS / Path(test_location.filepath).stem)


pytest_textual_snapshot.SVGImageExtension.dirname = _snapshot_dirname


@pytest.fixture
def frozen(time_machine):
    """Wall-clock time stands still (nothing shown may depend on it, but make sure)."""
    time_machine.move_to("2026-01-01 12:00:00", tick=False)


class FixedClock:
    """The injected UI clock: returns `now`, which a test can move."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


#: Answers the scripted engine gives, one per source, plus a teacher failure.
ANSWERS = {
    "what is 12 * 7?": AskResult(query="what is 12 * 7?", answer="12 × 7 = **84**", source="template",
                                 latency_ms=0.4),
    "capital of France?": AskResult(query="capital of France?", answer="Paris is the capital of France.",
                                    source="learned", latency_ms=3.2, verified=True),
    "reverse the word stone": AskResult(query="reverse the word stone", answer="enots", source="neural",
                                        latency_ms=18.6, verified=False),
    "explain KV caching": AskResult(
        query="explain KV caching",
        answer=("A **KV cache** keeps the keys and values of earlier tokens, so each new token "
                "attends to them without recomputing:\n\n- prefill once\n- then one token per step"),
        source="forward", latency_ms=840.0),
    "hello?": AskResult(query="hello?", latency_ms=35.0,
                        error="Claude rejected the API key (401): set a valid ANTHROPIC_API_KEY or use "
                              "--teacher offline"),
}


def populated_store() -> FakeStore:
    """A store with an earlier session: messages, rates, losses, a run and tool calls."""
    store = FakeStore(latest=3)
    store.stored_messages = [
        Message(1, 3, "user", "what is 2 + 2?", None, None, 0.0),
        Message(2, 3, "assistant", "2 + 2 = **4**", "template", 1, 0.0),
        Message(3, 3, "user", "capital of Italy?", None, None, 0.0),
        Message(4, 3, "assistant", "Rome is the capital of Italy.", "learned", 2, 0.0),
    ]
    store.counts = {"neural": 10, "learned": 12, "template": 6, "forward": 22}
    store.sources = ["forward"] * 20 + ["learned", "template", "neural", "forward"] * 10
    store.losses = {
        "generator": [LossPoint(1, "generator", i, 8 * math.exp(-i / 60) + 1.5, 90.0) for i in range(400)],
        "router": [LossPoint(1, "router", i, 0.5 * math.exp(-i / 40) + 0.2, 900.0) for i in range(200)],
        "validator": [LossPoint(1, "validator", i, 0.45 * math.exp(-i / 80) + 0.25, 900.0) for i in range(200)],
    }
    store.stored_runs = [TrainingRun(3, 0.0, 1.0, "done", "auto", 1280, 80, 88.4, "cpu", None,
                                     losses=scripted_report().losses)]
    store.stored_tool_calls = [
        ToolCallRow(1, "toolu_1", "generate_training_data",
                    {"pairs": [{"query": "3 + 4?", "answer": "7"}, {"query": "5 + 6?", "answer": "11"}]},
                    "ok", 35.2, "queued 2 examples, 0 rejected", "Queued 2 examples (0 rejected).", 0.0),
        ToolCallRow(2, "toolu_2", "train", {"wait": "yes"}, "error", 2.1,
                    "Invalid input for train: input.wait must be true or false",
                    "Invalid input for train: input.wait must be true or false", 0.0),
    ]
    return store


@pytest.fixture
def engine() -> FakeEngine:
    """A scripted engine with an empty store."""
    return FakeEngine(answers=dict(ANSWERS))


@pytest.fixture
def populated_engine() -> FakeEngine:
    """A scripted engine whose store remembers an earlier session."""
    return FakeEngine(store=populated_store(), answers=dict(ANSWERS))
