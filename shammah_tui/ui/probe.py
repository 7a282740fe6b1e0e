"""UI measurements for `shammah-tui bench`: time to the first frame, event-loop lag while training,
answer latency as the user sees it.

Run as `python -m shammah_tui.ui.probe first-frame|lag|answer-latency DATA_DIR [--cpu-hog]`; prints
one JSON object. The benchmark starts it as a process of its own, so nothing in the core imports the UI.

The lag probe runs the real app (headless) over a real engine while a real
training run goes on, with a 10 ms timer that records how late each tick is.
The answer-latency probe types questions into the real app (Pilot) over a real engine and times
each from enter to the first frame written with its answer in it (and, as a second figure, to the
screen idle again: newly mounted widgets take one more layout after their first frame): first idle,
then while a real run trains (`--cpu-hog`: with a second, CPU-bound process running all along).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shammah_tui.benchmark.measure import percentile

_FIRST_FRAME_SCRIPT = """
import sys
from pathlib import Path
from shammah_tui.settings import Settings
from shammah_tui.ui import build_app

async def first_frame(pilot):
    print("FRAME", flush=True)
    await pilot.exit(0)

build_app(Path(sys.argv[1]), Settings(teacher="offline")).run(headless=True, auto_pilot=first_frame)
"""


def first_frame_seconds(data_dir: Path) -> float:
    """Seconds from starting a fresh process to the app's first frame (headless)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", _FIRST_FRAME_SCRIPT, str(data_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "FRAME":
            elapsed = time.perf_counter() - started
            break
    else:
        elapsed = float("nan")
    process.wait(timeout=60)
    return elapsed


async def _lag_while_training(data_dir: Path, interval_s: float) -> dict[str, Any]:
    from shammah_tui.curriculum import sample_items
    from shammah_tui.engine.open import open_engine
    from shammah_tui.settings import load_settings
    from shammah_tui.teachers.offline import OfflineTeacher
    from shammah_tui.ui.app import ShammahApp

    # The data dir's own settings (answer_model = "smollm2" measures an adapter's run), offline.
    settings = load_settings(data_dir).with_overrides({"teacher": "offline", "auto_train": False}, "probe")
    engine = await open_engine(data_dir, settings, OfflineTeacher())
    await engine.load_models()
    items = sample_items(96, seed=11)
    await engine.teaching.learn_pairs([(i.query, i.answer) for i in items], "bench")
    app = ShammahApp(engine)
    lateness: list[float] = []
    async with app.run_test(headless=True, size=(160, 48)) as pilot:
        await pilot.pause(0.5)
        last = time.perf_counter()

        def tick() -> None:
            nonlocal last
            now = time.perf_counter()
            lateness.append(max(0.0, (now - last - interval_s) * 1000))
            last = now

        timer = app.set_interval(interval_s, tick)
        task = engine.start_training("bench")
        started = time.perf_counter()
        report = await task if task is not None else None
        seconds = time.perf_counter() - started
        timer.stop()
        await pilot.pause(0.2)
    await engine.close()
    return {"ui_lag_p50_ms": percentile(lateness, 0.5), "ui_lag_p99_ms": percentile(lateness, 0.99),
            "ui_lag_max_ms": max(lateness) if lateness else float("nan"), "ui_lag_ticks": len(lateness),
            "ui_lag_training_s": seconds, "ui_lag_run_status": report.status if report else None}


def measure_lag_while_training(data_dir: Path, interval_s: float = 0.01) -> dict[str, Any]:
    """Lag of the app's event loop during one real training run (runs its own event loop)."""
    return asyncio.run(_lag_while_training(data_dir, interval_s))


#: Questions the answer-latency probe asks that no neural answer is needed for (exact templates).
TEMPLATE_QUESTIONS = ["what is 12 * 7?", "what is 345 + 678?", "what is 6 * 7", "what is 81 / 9?",
                      "hello", "what is 1000 - 1?", "what is 17 + 25?", "what is 9 * 9?"]


#: Seconds the probe waits for an answer on screen before it gives up (instead of hanging the bench).
ANSWER_TIMEOUT_S = 30.0
#: Seconds between the typed question drawn and enter (a fast typist's gap between two keys is ~0.1 s).
TYPING_GAP_S = 0.03


class FirstFrame:
    """Times the first frame written with a new, settled answer on screen.

    It wraps the app's display call (where each frame goes to the terminal): the frame counts when
    the newest answer, not the one before enter, is settled and among the widgets it shows.
    """

    def __init__(self, app: Any) -> None:
        from shammah_tui.ui.widgets.answer import AnswerView
        from shammah_tui.ui.widgets.conversation import Conversation

        self.conversation = app.main.query_one(Conversation)
        self._answer_type = AnswerView
        self.previous: Any = None
        self.drawn_at: float | None = None
        display = app._display

        def display_and_watch(screen: Any, update: Any) -> None:
            display(screen, update)
            written = time.perf_counter()  # what follows is the probe's own work
            if self.drawn_at is None:
                view = self.last_answer()
                if (view is not None and view is not self.previous and view.state != "pending"
                        and view in screen._compositor.visible_widgets):
                    self.drawn_at = written

        app._display = display_and_watch

    def last_answer(self) -> Any:
        """The newest answer view (children read directly: a DOM query would cost more than the answer)."""
        return next((w for w in reversed(self.conversation.children) if isinstance(w, self._answer_type)), None)

    def expect_new(self) -> None:
        """The next answer to time is the one after the newest now."""
        self.previous, self.drawn_at = self.last_answer(), None


async def _refreshed(app: Any) -> float:
    """Wait until the screen has no update left to draw; the time it was reached."""
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def reached() -> None:
        if not done.done():
            done.set_result(time.perf_counter())

    app.call_after_refresh(reached)
    return await done


async def _answer_on_screen(app: Any, frames: FirstFrame, question: str) -> tuple[float, float, str]:
    """Type `question`, press enter; (ms to the first frame with its answer, ms until the screen is
    idle again, the answer's source)."""
    from textual import events

    main = app.main
    main.prompt.focus()
    main.prompt.value = question
    await _refreshed(app)
    await asyncio.sleep(TYPING_GAP_S)  # enter comes after the last key drawn, as it does from a person
    frames.expect_new()
    started = time.perf_counter()
    # The key as the terminal driver delivers it (Pilot.press would add its own idle waits).
    app.post_message(events.Key("enter", None))
    while frames.drawn_at is None:
        if time.perf_counter() - started > ANSWER_TIMEOUT_S:
            raise TimeoutError(f"no frame showed the answer to {question!r} within {ANSWER_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.0005)
    drawn = frames.drawn_at
    idle = await _refreshed(app)
    return (drawn - started) * 1000, (idle - started) * 1000, frames.last_answer().state


async def _answer_latency(data_dir: Path, per_phase: int, cpu_hog: bool) -> dict[str, Any]:
    from shammah_tui.curriculum import sample_items
    from shammah_tui.engine.open import open_engine
    from shammah_tui.settings import Settings
    from shammah_tui.teachers.offline import OfflineTeacher
    from shammah_tui.ui.app import ShammahApp

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if cpu_hog else None
    try:
        engine = await open_engine(data_dir, Settings(teacher="offline", auto_train=False), OfflineTeacher())
        await engine.load_models()
        items = sample_items(128, seed=11)
        await engine.teaching.learn_pairs([(i.query, i.answer) for i in items], "bench")
        # Non-neural questions: exact templates, and questions the teacher answered before (learned).
        questions = [q for pair in zip(TEMPLATE_QUESTIONS * 8, [i.query for i in items]) for q in pair]
        core_ms: list[float] = []  # engine.ask alone, as the UI's worker awaits it
        errors: list[str] = []
        ask = engine.ask

        async def timed_ask(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            result = await ask(*args, **kwargs)
            core_ms.append((time.perf_counter() - t0) * 1000)
            if result.error:
                errors.append(result.error)
            return result

        engine.ask = timed_ask  # type: ignore[method-assign]  # times the core's share of each answer
        app = ShammahApp(engine, load_models=False)
        idle: list[float] = []
        busy: list[float] = []
        settled: dict[str, list[float]] = {"idle": [], "training": []}
        sources: dict[str, dict[str, int]] = {"idle": {}, "training": {}}
        async with app.run_test(headless=True, size=(160, 48)) as pilot:
            await pilot.pause(0.5)
            frames = FirstFrame(app)
            for question in questions[:per_phase]:
                ms, quiet_ms, source = await _answer_on_screen(app, frames, question)
                idle.append(ms)
                settled["idle"].append(quiet_ms)
                sources["idle"][source] = sources["idle"].get(source, 0) + 1
            core_idle, core_ms[:] = list(core_ms), []
            task = engine.start_training("bench")
            started = time.perf_counter()
            await asyncio.sleep(0.5)  # into the run (the first evaluations)
            for question in questions[per_phase:]:
                if task is None or task.done() or len(busy) >= per_phase:
                    break
                ms, quiet_ms, source = await _answer_on_screen(app, frames, question)
                busy.append(ms)
                settled["training"].append(quiet_ms)
                sources["training"][source] = sources["training"].get(source, 0) + 1
                await asyncio.sleep(0.05)
            report = await task if task is not None else None
            seconds = time.perf_counter() - started
            await pilot.pause(0.2)
        await engine.close()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return {
        "answer_p50_ms_idle": percentile(idle, 0.5), "answer_p95_ms_idle": percentile(idle, 0.95),
        "answer_p50_ms_while_training": percentile(busy, 0.5),
        "answer_p95_ms_while_training": percentile(busy, 0.95),
        "answer_settled_p50_ms_idle": percentile(settled["idle"], 0.5),
        "answer_settled_p50_ms_while_training": percentile(settled["training"], 0.5),
        "core_ask_p50_ms_idle": percentile(core_idle, 0.5),
        "core_ask_p50_ms_while_training": percentile(core_ms, 0.5),
        "core_ask_p95_ms_while_training": percentile(core_ms, 0.95),
        "answers_idle": len(idle), "answers_while_training": len(busy), "answer_sources": sources,
        "answer_errors": sorted(set(errors))[:3],
        "answer_training_s": seconds, "answer_run_status": report.status if report else None,
        "answer_run_error": report.error if report else None,
        "cpu_hog": cpu_hog,
    }


def measure_answer_latency(data_dir: Path, per_phase: int = 40, cpu_hog: bool = False) -> dict[str, Any]:
    """Answer latency in the TUI, submit to answer on screen, idle and while a run trains."""
    return asyncio.run(_answer_latency(data_dir, per_phase, cpu_hog))


def main(argv: list[str]) -> int:
    flags = [a for a in argv if a.startswith("--")]
    argv = [a for a in argv if not a.startswith("--")]
    if len(argv) != 2 or argv[0] not in ("first-frame", "lag", "answer-latency") or set(flags) - {"--cpu-hog"}:
        print("usage: python -m shammah_tui.ui.probe first-frame|lag|answer-latency DATA_DIR [--cpu-hog]",
              file=sys.stderr)
        return 2
    data_dir = Path(argv[1])
    if argv[0] == "first-frame":
        result: dict[str, Any] = {"first_frame_s": first_frame_seconds(data_dir)}
    elif argv[0] == "answer-latency":
        result = measure_answer_latency(data_dir, cpu_hog="--cpu-hog" in flags)
    else:
        result = measure_lag_while_training(data_dir)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
