"""UI measurements for `shammah-tui bench`: time to the first frame, event-loop lag while training.

Run as `python -m shammah_tui.ui.probe first-frame|lag DATA_DIR`; prints one JSON object. The
benchmark starts it as a process of its own, so nothing in the core imports the UI.

The lag probe runs the real app (headless) over a real engine while a real
training run goes on, with a 10 ms timer that records how late each tick is.
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
    from shammah_tui.engine import Engine
    from shammah_tui.settings import Settings
    from shammah_tui.teachers.offline import OfflineTeacher
    from shammah_tui.ui.app import ShammahApp

    engine = await Engine.open(data_dir, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    await engine.load_models()
    items = sample_items(96, seed=11)
    await engine.learn_pairs([(i.query, i.answer) for i in items], "bench")
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


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("first-frame", "lag"):
        print("usage: python -m shammah_tui.ui.probe first-frame|lag DATA_DIR", file=sys.stderr)
        return 2
    data_dir = Path(argv[1])
    if argv[0] == "first-frame":
        result: dict[str, Any] = {"first_frame_s": first_frame_seconds(data_dir)}
    else:
        result = measure_lag_while_training(data_dir)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
