"""Snapshot tests: what the app looks like in each state, at 80×24 and 160×48.

The engine is scripted (tests/ui/fakes.py); events are injected the way the
engine emits them. No torch, no network, no disk, frozen time, fixed clock.
SVGs live in <repo>/snapshots/test_snapshots/.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from shammah_tui.core.events import (
    ModelsLoaded, RequestServed, TrainingFinished, TrainingStarted, TrainingStep, ToolCalled,
)
from shammah_tui.core.tool_calls import ToolCallEvent
from shammah_tui.core.runs import StepEvent
from tests.ui.conftest import ANSWERS
from tests.ui.fakes import empty_stats, scripted_report
from tests.ui.helpers import ask, emit, make_app, settle

SMALL = (80, 24)
LARGE = (160, 48)
SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])

MODELS_INFO = ModelsLoaded({"device": "cpu", "params": {"generator": 1_203_072, "router": 150_016,
                                                          "validator": 140_032}})


def tool_events() -> list[ToolCalled]:
    """Two finished calls (ok, error) and one still running."""
    return [
        ToolCalled(ToolCallEvent("toolu_a", "query_local_model", {"query": "what is 9 * 9?"}, "running", 0.0)),
        ToolCalled(ToolCallEvent("toolu_a", "query_local_model", {"query": "what is 9 * 9?"}, "ok", 0.0, 21.4,
                                 "template · 9 × 9 = 81 · 0.4 ms", "answer: 9 × 9 = 81\nsource: template")),
        ToolCalled(ToolCallEvent("toolu_b", "generate_training_data",
                                 {"pairs": [{"query": "2 km in m?", "answer": "2000 m"}] * 3}, "ok", 0.0, 48.0,
                                 "queued 3 examples, 0 rejected", "Queued 3 examples (0 rejected).")),
        ToolCalled(ToolCallEvent("toolu_c", "train", {"wait": "soon"}, "error", 0.0, 1.2,
                                 "Invalid input for train: input.wait must be true or false",
                                 "Invalid input for train: input.wait must be true or false")),
        ToolCalled(ToolCallEvent("toolu_d", "analyze_model", {}, "running", 0.0)),
    ]


def training_events(steps: int = 24, total: int = 40) -> list:
    events: list = [TrainingStarted(4, "manual", total)]
    for i in range(1, steps + 1):
        events.append(TrainingStep(4, StepEvent("generator", i, total, 6.0 - 2.5 * i / total, 86.5)))
    return events


@SIZES
def test_empty_start(snap_compare, frozen, engine, clock, size):
    """First frame on a fresh data directory: welcome hint, models loading."""
    engine.load_gate = asyncio.Event()  # models never finish loading here
    engine.stats_value = empty_stats()
    app = make_app(engine, clock, load_models=True)

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_answers_from_each_source(snap_compare, frozen, engine, clock, size):
    """Template, learned (✓), neural (✗) and forward (streamed) answers, each with its badge."""
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO)
        for question in ("what is 12 * 7?", "capital of France?", "reverse the word stone", "explain KV caching"):
            await ask(pilot, question)
            await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_teacher_error(snap_compare, frozen, engine, clock):
    """A teacher failure is one clear notice line, not a traceback (and not shown twice)."""
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO)
        await ask(pilot, "hello?")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)
    assert ANSWERS["hello?"].error


@SIZES
def test_tool_calls_running_and_done(snap_compare, frozen, engine, clock, size):
    """The tool-call log with ok, error and running calls (the Tools tab on a narrow terminal)."""
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO, *tool_events())
        if size == SMALL:
            await pilot.press("f3")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_tool_call_detail(snap_compare, frozen, engine, clock):
    """Enter on a tool call shows its full input and result."""
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO, *tool_events()[:3])
        await settle(pilot)
        table = app.main.query_one("#tool-table")
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


@SIZES
def test_training_in_progress(snap_compare, frozen, populated_engine, clock, size):
    """A run in progress: progress bar, examples/s, ETA, live loss curve (Metrics tab when narrow)."""
    engine = populated_engine
    app = make_app(engine, clock, resume_last=True)  # the earlier session's conversation too

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO)
        await settle(pilot)
        events = training_events()
        await emit(pilot, engine, events[0])
        clock.now += 7.5  # the run has been going for 7.5 s on the injected clock
        await emit(pilot, engine, *events[1:])
        if size == SMALL:
            await pilot.press("f4")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_training_finished(snap_compare, frozen, populated_engine, clock):
    """A finished manual run: the last-run table shows old → new loss and improvement per model."""
    engine = populated_engine
    app = make_app(engine, clock, resume_last=True)  # the earlier session's conversation too

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO)
        await settle(pilot)
        await emit(pilot, engine, *training_events(40), TrainingFinished(4, scripted_report()))
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_help_screen(snap_compare, frozen, engine, clock):
    """F1 shows the keys and slash commands; it fits (and scrolls) at 80×24."""
    app = make_app(engine, clock)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_restored_session(snap_compare, frozen, populated_engine, clock):
    """On start (`--continue`) the last conversation, rates, loss history, last run and tool calls come back."""
    app = make_app(populated_engine, clock, resume_last=True)

    async def run_before(pilot):
        await emit(pilot, populated_engine, MODELS_INFO)
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_cancelled_teaching_run(snap_compare, frozen, engine, clock):
    """Esc stops teaching (its run goes on, announced), esc again cancels the run: header, training
    pane and tool row all reach a final state, and the conversation says so (issue #13, bug 1)."""
    from tests.ui.test_runs_and_tools import full_run_steps

    engine.teach_trains = True
    engine.train_gate = asyncio.Event()
    engine.train_steps = full_run_steps()
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO)
        await settle(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot, skip=("models", "teach"))
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_training_progress_at_90_columns(snap_compare, frozen, engine, clock):
    """At 90 columns the header keeps the run's progress whole (the teacher's label gives way), and
    it is the same figure as the training pane's bar (issue #13, bug 4)."""
    from tests.ui.fakes import FakeTeacher
    from tests.ui.test_runs_and_tools import full_run_steps

    engine.teacher = FakeTeacher("claude-sonnet-5 through the team's gateway")
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO)
        await settle(pilot)
        await emit(pilot, engine, TrainingStarted(1, "manual", 100))
        clock.now += 7.5
        await emit(pilot, engine, *[TrainingStep(1, s) for s in full_run_steps()[:52]])
        await pilot.press("f4")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(90, 30), run_before=run_before)


def test_light_theme(snap_compare, frozen, engine, clock):
    """The light theme: pane and card borders and rules stay visible (issue #13, bug 6)."""
    app = make_app(engine, clock)
    app.theme = "textual-light"

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO, *tool_events())
        for question in ("what is 12 * 7?", "capital of France?"):
            await ask(pilot, question)
            await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_focus_ring_on_the_tool_log(snap_compare, frozen, engine, clock):
    """F3 in the wide layout moves the focus ring to the tool log (issue #13, bug 7)."""
    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO, *tool_events())
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


@pytest.fixture
def utc(monkeypatch):
    """Times of day are shown in local time: UTC here, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@SIZES
def test_request_log(snap_compare, frozen, utc, engine, clock, size):
    """Served requests under the tool calls (the Requests tab, f5, on a narrow terminal); the
    refused and failed ones stand out."""
    from tests.ui.test_request_log import served_rows

    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO, *tool_events(), *[RequestServed(row) for row in served_rows()])
        if size == SMALL:
            await pilot.press("f5")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_request_detail(snap_compare, frozen, utc, engine, clock):
    """Enter on a failed request shows every field its log row keeps: the request and the response."""
    from tests.ui.test_request_log import served_rows

    app = make_app(engine, clock)

    async def run_before(pilot):
        await emit(pilot, engine, MODELS_INFO, *[RequestServed(row) for row in served_rows()])
        await settle(pilot)
        await pilot.press("f5")
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)
