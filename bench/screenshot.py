"""Make the README screenshot: a fresh data dir, questions, one teaching round, questions again.

python bench/screenshot.py docs/teaching.svg
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from shammah_tui.engine.open import open_engine
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher
from shammah_tui.ui.app import ShammahApp

QUESTIONS = ["What is the capital of Japan?", "what is 17 * 23", "How do I reverse a list in Python?",
             "How many days are in April?", "Convert 10 km to miles"]


async def main(out: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="shammah-shot-"))
    engine = await open_engine(data, Settings(teacher="offline", spot_check_rate=0.0), OfflineTeacher())
    app = ShammahApp(engine)
    async with app.run_test(headless=True, size=(160, 48)) as pilot:
        app.animation_level = "none"
        await engine.load_models()

        async def ask(text: str) -> None:
            await pilot.press(*text)
            await pilot.press("enter")
            await pilot.pause(1.5)

        for q in QUESTIONS:
            await ask(q)
        await pilot.press("ctrl+g")  # teach: one round of the offline teacher's tool loop
        await pilot.pause(1.0)
        for _ in range(600):  # until the teaching worker and its training run are done
            await pilot.pause(0.5)
            teaching = any(w.group == "teach" and not w.is_finished for w in app.workers)
            if not teaching and not engine.training:
                break
        for q in QUESTIONS[2:] + ["How do I reverse a list in Python?"]:
            await ask(q)
        await pilot.pause(2.0)
        out.write_text(app.export_screenshot(title="Shammah TUI"), encoding="utf-8")
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/teaching.svg")))
