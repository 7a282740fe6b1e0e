"""Many processes starting at once on a new data dir: all of them open it, one schema, no corruption.

A person who starts the TUI and a `batch` on a new machine, or two `serve` workers, starts two
processes on a data dir that does not exist yet. Creating the database (switching it to WAL,
running the migrations) happens under a file lock, so none of them sees "database is locked".
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from shammah_tui.store.migrations import LATEST_VERSION

PROCESSES = 8
ROUNDS = 40


def wait_for(paths: list[Path], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"workers did not get ready: {[p for p in paths if not p.exists()]}"
        time.sleep(0.002)


def test_eight_processes_open_a_new_data_dir_at_once_forty_times(tmp_path):
    workers = [subprocess.Popen([sys.executable, "-m", "tests.open_worker", str(tmp_path), str(ROUNDS), str(w)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for w in range(PROCESSES)]
    try:
        for r in range(ROUNDS):
            wait_for([tmp_path / f"ready-{r}-{w}" for w in range(PROCESSES)])
            (tmp_path / f"go-{r}").touch()
        for proc in workers:
            _, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, stderr
    finally:
        for proc in workers:
            proc.kill()
    failures = []
    for r in range(ROUNDS):
        results = [(tmp_path / f"result-{r}-{w}").read_text() for w in range(PROCESSES)]
        failures += [f"round {r}: {text}" for text in results if text != "ok"]
        with closing(sqlite3.connect(tmp_path / str(r) / "data" / "shammah.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            applied = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
            assert applied == list(range(1, LATEST_VERSION + 1))
    assert failures == []
