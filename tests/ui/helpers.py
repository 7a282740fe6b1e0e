"""Helpers shared by the UI tests: building the app and bringing it to a still frame."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot
from textual.worker import WorkerCancelled, WorkerFailed

from shammah_tui.core.events import EngineEvent
from shammah_tui.ui.app import ShammahApp
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.answer_text import AnswerText
from shammah_tui.ui.widgets.prompt import PromptInput
from shammah_tui.ui.widgets.threaded_plot import ThreadedPlot
from tests.ui.fakes import FakeEngine


def make_app(engine: FakeEngine, clock: Callable[[], float], *, load_models: bool = False,
             resume_last: bool = False) -> ShammahApp:
    """The app on a scripted engine, with animations off (`resume_last`: as `--continue`)."""
    app = ShammahApp(engine, clock=clock, load_models=load_models, resume_last=resume_last)
    app.animation_level = "none"
    return app


async def wait_workers(app: ShammahApp, skip: tuple[str, ...] = ("models",)) -> None:
    """Wait for the app's and screens' workers (except groups in `skip`, which may block)."""
    for _ in range(5):
        pending = [w for w in app.workers if not w.is_finished and w.group not in skip]
        if not pending:
            return
        for worker in pending:
            try:
                await asyncio.wait_for(worker.wait(), timeout=5)
            except (WorkerCancelled, WorkerFailed):
                pass


async def settle(pilot: Pilot, skip: tuple[str, ...] = ("models",)) -> None:
    """Let messages, workers and the buffered panes reach a still state, ready for a screenshot."""
    app = pilot.app
    assert isinstance(app, ShammahApp)
    await pilot.pause()
    for _ in range(2):
        await wait_workers(app, skip)
        app.main.flush()  # tool-log rows; may start a stats refresh
        app.main.metrics.redraw()  # may start chart builds (thread workers)
        await wait_workers(app, skip)
        await pilot.pause()
    for _ in range(20):  # until every chart shows its current data at its final size
        app.main.metrics.redraw()
        await wait_workers(app, skip)
        await pilot.pause()
        if not app.main.metrics.region.area or all(plot.settled for plot in app.main.query(ThreadedPlot)):
            break
    for prompt in app.main.query(PromptInput):
        prompt.cursor_blink = False
    await pilot.pause()


async def emit(pilot: Pilot, engine: FakeEngine, *events: EngineEvent) -> None:
    """Inject engine events as the engine would (through its listeners)."""
    for _ in range(100):  # the screen subscribes once it is mounted
        if engine._listeners:
            break
        await pilot.pause()
    assert engine._listeners, "the app never subscribed to the engine"
    for event in events:
        engine.emit(event)
    await pilot.pause()


async def ask(pilot: Pilot, text: str) -> None:
    """Type a line in the input and send it."""
    prompt = pilot.app.main.query_one(PromptInput)
    prompt.focus()
    prompt.value = text
    await pilot.press("enter")
    await pilot.pause()


def badge_line(view: AnswerView) -> str:
    """The first line an answer draws: its badge and meta, as text."""
    heads = view.query_children(AnswerText)
    drawn = heads.first().render() if heads else view.render()
    return str(drawn).split("\n")[0]
