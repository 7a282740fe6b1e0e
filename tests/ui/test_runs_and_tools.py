"""Issue #13, the run and tool-log side: cancelling a teaching round's run, one progress figure,
announced runs, readable tool results, counters that add up, wording."""

from __future__ import annotations

import asyncio
import dataclasses

from rich.text import Text

from shammah_tui.core.events import ToolCalled, TrainingFinished, TrainingStarted, TrainingStep
from shammah_tui.core.tool_calls import ToolCallEvent
from shammah_tui.core.runs import StepEvent
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.notice_line import NoticeLine
from tests.ui.fakes import FakeEngine, FakeStore, FakeTeacher, scripted_report
from tests.ui.helpers import ask, badge_line, emit, make_app, settle


def notices(app, level: str | None = None) -> list[str]:
    return [n.text for n in app.main.query(NoticeLine) if level is None or n.level == level]


def record_toasts(app) -> list[str]:
    toasts: list[str] = []
    app.notify = lambda message, **kwargs: toasts.append(str(message))  # type: ignore[method-assign]
    return toasts


def full_run_steps() -> list[StepEvent]:
    """A run's steps up to its very last one: generator 40, router 30, validator 30."""
    return ([StepEvent("generator", i, 40, 5.0 - i / 20, 90.0) for i in range(1, 41)]
            + [StepEvent("router", i, 30, 0.7 - i / 100, 900.0) for i in range(1, 31)]
            + [StepEvent("validator", i, 30, 0.6 - i / 100, 900.0) for i in range(1, 31)])


def status_line(app) -> str:
    return str(app.main.query_one("#train-status").render())


async def start_teaching_run(pilot, engine) -> None:
    engine.teach_trains = True
    engine.train_gate = asyncio.Event()
    engine.train_steps = full_run_steps()
    await pilot.press("ctrl+g")
    await settle(pilot, skip=("models", "teach"))
    app = pilot.app
    assert engine.training and app.main.metrics.progress.running
    assert [(c.name, c.status) for c in app.main.tool_log.calls][-1] == ("train", "running")
    assert app.main.header.activity.startswith("training #1 · 100%")


async def test_esc_stops_teaching_and_esc_again_cancels_its_run(engine, clock):
    """Bug 1: every part of the UI reaches a final state, and says so."""
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        toasts = record_toasts(app)
        await settle(pilot)
        await start_teaching_run(pilot, engine)
        assert "calibrating and saving" in status_line(app)  # not `ETA 0.0 s` after the last step

        await pilot.press("escape")  # teaching stops; the run it started goes on
        await settle(pilot)
        assert not app.main.session.teaching and engine.training
        last = app.main.tool_log.calls[-1]
        assert (last.name, last.status, last.summary) == ("train", "error", "cancelled")
        assert "Teaching stopped. Training run #1 goes on; esc cancels it." in notices(app, "information")
        assert app.main.header.activity.startswith("training #1")

        await pilot.press("escape")  # cancels the run, cooperatively
        await settle(pilot)
        assert engine.cancelled_training and not engine.training
        assert app.main.header.activity == ""
        assert not app.main.metrics.progress.running
        assert status_line(app) == "Last run #1 cancelled; the models are unchanged."
        assert "Run #1 cancelled; the models are unchanged." in notices(app, "warning")
        assert any("cancelled" in t for t in toasts)


async def test_a_run_that_vanishes_without_a_report_is_ended_by_the_ui(engine, clock):
    """Bug 1 with the old core: the tool call and the run were dropped without a final event."""
    engine.core_fixed = False
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await start_teaching_run(pilot, engine)
        await pilot.press("escape")
        await settle(pilot)
        assert not engine.training  # the run's task went with the tool call, no TrainingFinished
        for _ in range(20):  # 5 s of the screen's 4 Hz flush
            app.main.flush()
        await settle(pilot)
        assert app.main.header.activity == ""
        assert not app.main.metrics.progress.running
        assert "ended without a report" in status_line(app)
        assert [(c.status, c.summary) for c in app.main.tool_log.calls][-1] == ("error", "cancelled")
        assert any("ended without a report" in text for text in notices(app, "warning"))


async def test_header_and_pane_show_one_progress_figure_that_fits_at_90_columns(engine, clock):
    """Bug 4: the same figure (steps done / steps planned) in the header and the pane, whole at 90 columns."""
    engine.teacher = FakeTeacher("claude-sonnet-5 through the team's gateway")
    app = make_app(engine, clock)
    async with app.run_test(size=(90, 30)) as pilot:
        await settle(pilot)
        steps = full_run_steps()[:52]  # generator done, router 12/30
        await emit(pilot, engine, TrainingStarted(1, "manual", 100), *[TrainingStep(1, s) for s in steps])
        await settle(pilot)
        assert app.main.metrics.progress.fraction == 0.52
        assert app.main.header.activity == "training #1 ·  52%"
        assert str(app.main.query_one("#train-pct").render()).strip() == "52%"
        assert "router 12/30" in status_line(app)
        activity = app.main.header.query_one("#activity")
        assert activity.region.right <= 90 and activity.region.width >= len(app.main.header.activity)


async def test_runs_that_start_by_themselves_are_announced_with_a_toast(engine, clock):
    """Bug 10: an automatic run and a tool's run are announced, and their end is toasted."""
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        toasts = record_toasts(app)
        await settle(pilot)
        await emit(pilot, engine, TrainingStarted(7, "auto", 100))
        await settle(pilot)
        assert any(t.startswith("Training run #7 started by itself") for t in notices(app, "information"))
        await emit(pilot, engine, TrainingFinished(7, scripted_report()))
        await settle(pilot)
        done = "Run #7 done · 1,280 examples · 80 steps · 14 s · 88.4 ex/s"
        assert done in notices(app, "information") and done in toasts
        await emit(pilot, engine, TrainingStarted(8, "tool", 100))
        await settle(pilot)
        assert any("started by the teacher" in t for t in notices(app, "information"))


async def test_tool_results_have_no_none_and_end_in_an_ellipsis_when_cut(engine, clock):
    """Bug 5."""
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        long = "queued 120, rejected 3: " + ", ".join(f"pair {i} was a duplicate" for i in range(20))
        await emit(pilot, engine,
                   ToolCalled(ToolCallEvent("a", "query_local_model", {"query": "x"}, "ok", 0.0, 1.0, "forward: None")),
                   ToolCalled(ToolCallEvent("b", "generate_training_data", {}, "ok", 0.0, 1.0, long)))
        await settle(pilot)
        table = app.main.query_one("#tool-table")
        first, second = (table.get_cell_at((row, 4)) for row in (0, 1))
        assert isinstance(first, Text) and first.plain == "forward: —"
        width = table.ordered_columns[4].width
        assert second.plain.endswith("…") and len(second.plain) == width
        assert table.ordered_columns[4].get_render_width(table) + sum(
            c.get_render_width(table) for c in table.ordered_columns[:4]) <= table.size.width


async def test_counters_read_right_and_teaching_wording(engine, clock):
    """Bugs 8 and 10: the queue is labelled, the run's own figures are shown, plurals are right."""
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        engine.stats_value = dataclasses.replace(engine.stats_value, examples_queued=121)
        await ask(pilot, "/stats")
        await settle(pilot)
        assert str(app.main.query_one("#stat-queue").render()) == "121 queued · a run starts at 32"
        view = list(app.main.query(AnswerView))[-1]
        assert "engine.stats()" not in badge_line(view)

        engine.settings = dataclasses.replace(engine.settings, auto_train=False)
        app.main.fetch_stats()
        await settle(pilot)
        assert str(app.main.query_one("#stat-queue").render()) == "121 queued · auto-train off"

        async def one_turn(rounds=1, topic=None, on_text=None):
            from shammah_tui.core.teaching import TeachSummary

            return TeachSummary(iterations=1, tool_calls=1, stopped_because="iteration_limit")

        engine.teach = one_turn  # type: ignore[method-assign]
        await pilot.press("ctrl+g")
        await settle(pilot)
        view = list(app.main.query(AnswerView))[-1]
        assert badge_line(view) == f" teacher  {view.meta}"
        assert view.meta == "1 turn · 1 tool call · stopped at the turn limit"


async def test_tool_pane_hint_fits_and_rows_never_scroll_sideways(clock):
    from textual.widgets import DataTable

    from shammah_tui.core.records import ToolCallRow
    from tests.ui.conftest import ANSWERS

    for size in ((160, 48), (120, 40)):
        app = make_app(FakeEngine(answers=dict(ANSWERS)), clock)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            log = app.main.tool_log
            hint = log.query_one(".empty-hint")
            assert hint.region.width <= log.content_region.width  # wrapped, not cut off
            assert hint.size.height >= 2

        store = FakeStore()
        store.stored_tool_calls = [
            ToolCallRow(i, f"toolu_{i}", "generate_training_data", {"pairs": [{"query": "3 + 4?" * 9}]}, "ok",
                        35.2, "queued 2 examples, 0 rejected " * 4, "", 0.0) for i in range(30)]
        app = make_app(FakeEngine(store=store), clock)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            table = app.main.tool_log.query_one(DataTable)
            assert table.show_vertical_scrollbar and not table.show_horizontal_scrollbar
            assert table.virtual_size.width <= table.scrollable_content_region.width
            await pilot.press("f3")
            await settle(pilot)
            assert app.focused is table and table.scroll_x == 0 and table.max_scroll_x == 0


async def test_a_cancelled_call_is_titled_cancelled():
    from textual.app import App

    from shammah_tui.core.tool_calls import ToolCallEvent
    from shammah_tui.ui.screens.tool_detail import ToolDetailScreen

    call = ToolCallEvent("c1", "train", {"wait": True}, "error", 0.0, 3.0, "cancelled", "The call was cancelled.")
    failed = ToolCallEvent("c2", "train", {}, "error", 0.0, 3.0, "bad input", "Invalid input")
    app: App[None] = App()
    async with app.run_test() as pilot:
        for event, title in ((call, "train · cancelled · 3.0 ms"), (failed, "train · error · 3.0 ms")):
            await app.push_screen(ToolDetailScreen(event))
            await pilot.pause()
            assert str(app.screen.query_one("#tool-title").render()) == title
            app.pop_screen()
