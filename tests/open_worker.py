"""One of several processes that open fresh data dirs at the same moment (tests/system/test_first_start.py).

Run as `python -m tests.open_worker ROOT ROUNDS WORKER`. For each round r it says it is ready
(`ready-r-WORKER`), waits for the coordinator's `go-r`, opens `ROOT/r/data` as the app does (the
engine: store, migrations, settings file), closes it, and writes `result-r-WORKER`: `ok` or the
one-line error. Imports happen once, before the first round, so the opens really are concurrent.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from shammah_tui.engine import Engine
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher


async def open_once(data: Path) -> str:
    try:
        engine = await Engine.open(data, Settings(teacher="offline"), OfflineTeacher())
    except Exception as exc:  # reported, not raised: the coordinator counts them
        return f"{type(exc).__name__}: {exc}"
    await engine.close()
    return "ok"


def main() -> None:
    root, rounds, worker = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    for r in range(rounds):
        (root / f"ready-{r}-{worker}").touch()
        go = root / f"go-{r}"
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.0005)
        result = asyncio.run(open_once(root / str(r) / "data"))
        (root / f"result-{r}-{worker}").write_text(result)


if __name__ == "__main__":
    main()
