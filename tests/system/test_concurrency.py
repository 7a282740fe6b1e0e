"""Two processes on one data dir: no corruption, no lost rows, one training run at a time.

Batches share the database through SQLite (WAL, BEGIN IMMEDIATE, busy timeout). Training takes
an inter-process lock (`shammah_tui.lock`, flock on `<data dir>/train.lock`): while one process
trains, another's run is skipped with a message and its queue stays for the next run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from tests.datadirs import integrity, make_template, model_warnings, open_engine  # noqa: F401

from shammah_tui.engine import TRAINING_ELSEWHERE, Engine
from shammah_tui.core.events import Notice
from shammah_tui.lock import DataDirLock
from shammah_tui.curriculum import sample_items
from shammah_tui.teachers.offline import OfflineTeacher

CLI = [sys.executable, "-m", "shammah_tui"]
SETTINGS = 'teacher = "offline"\nbatch_size = 8\nsteps_per_run = 3\n'




def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()





@pytest.fixture(scope="module")
def template_dir(tmp_path_factory) -> Path:
    """A data dir with its tokenizer and checkpoints written (so each process starts faster)."""
    return make_template(tmp_path_factory.mktemp("template") / "data", SETTINGS)


def runs_overlap(db: Path) -> list[tuple]:
    """Pairs of training runs whose [started, finished] intervals overlap."""
    runs = query(db, "SELECT id, started_at, COALESCE(finished_at, 1e18) FROM training_runs ORDER BY started_at")
    return [(a[0], b[0]) for a, b in zip(runs, runs[1:]) if b[1] < a[2]]


def start(args: list[str], out: Path) -> tuple[subprocess.Popen, object]:
    err = open(out, "wb")
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL), err


N_BATCH = 24


def test_two_batches_at_once_lose_nothing(tmp_path, template_dir):
    """Two `batch --json` processes on one data dir, both training every 8 forwards: every printed
    query is in the log exactly as often as printed, the database is intact, no two training runs
    overlapped, the checkpoints load without a warning."""
    data = shutil.copytree(template_dir, tmp_path / "data")
    procs = []
    for i in range(2):
        items = sample_items(N_BATCH, seed=500 + i)
        qfile = tmp_path / f"q{i}.jsonl"
        qfile.write_text("".join(json.dumps({"query": f"{it.query}"}) + "\n" for it in items))
        procs.append(start(["batch", str(qfile), "--json", "--data-dir", str(data)], tmp_path / f"err{i}"))
    printed: Counter[str] = Counter()
    for i, (proc, err) in enumerate(procs):
        stdout = finish_cleanly(proc, err, tmp_path / f"err{i}")
        lines = [json.loads(line) for line in stdout.splitlines()]
        assert len(lines) == N_BATCH and all(r["error"] is None for r in lines), lines
        printed.update(r["query"] for r in lines)
    db = data / "shammah.db"
    assert integrity(db) == "ok"
    logged = Counter(q for (q,) in query(db, "SELECT query FROM query_log"))
    assert logged == printed, "every printed answer is logged once, nothing else"
    assert runs_overlap(db) == [], "training runs of the two processes never overlap"
    assert not query(db, "SELECT id FROM training_runs WHERE status = 'running'")
    assert model_warnings(data) == []


def finish_cleanly(proc, err, err_path: Path) -> str:
    """Wait for a CLI process; it must exit 0 with no traceback. Its stdout."""
    stdout, _ = proc.communicate(timeout=300)
    err.close()
    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return stdout.decode()


def _queue_examples(data: Path, n: int) -> None:
    async def fill() -> None:
        engine = await open_engine(data)
        try:
            items = sample_items(n, seed=77)
            await engine.teaching.learn_pairs([(it.query, it.answer) for it in items], "tool")
        finally:
            await engine.close()

    asyncio.run(fill())


def test_two_training_runs_at_once_do_not_corrupt_checkpoints(tmp_path, template_dir):
    """Two `train --wait` processes started together: one trains, the other says another process
    is training (or, if they did not overlap, trains after it); checkpoints always load."""
    data = shutil.copytree(template_dir, tmp_path / "data")
    (data / "settings.toml").write_text('teacher = "offline"\nbatch_size = 8\nsteps_per_run = 12\n')
    _queue_examples(data, 24)
    procs = [start(["train", "--wait", "--data-dir", str(data)], tmp_path / f"err{i}") for i in range(2)]
    outputs = []
    for i, (proc, err) in enumerate(procs):
        outputs.append(finish_cleanly(proc, err, tmp_path / f"err{i}"))
    db = data / "shammah.db"
    assert integrity(db) == "ok"
    assert runs_overlap(db) == []
    done = query(db, "SELECT COUNT(*) FROM training_runs WHERE status = 'done'")[0][0]
    skipped = sum(TRAINING_ELSEWHERE in out for out in outputs)
    assert done >= 1 and done + skipped == 2, (done, outputs)
    states = dict(query(db, "SELECT state, COUNT(*) FROM training_examples GROUP BY state"))
    assert states.get("trained", 0) >= 1 and sum(states.values()) == 24, states
    assert model_warnings(data) == []
    print(f"\ntwo trainers: {done} run(s) done, {skipped} skipped with the message")


def test_training_is_skipped_while_another_process_holds_the_lock(tmp_path):
    """Deterministic: the lock held elsewhere makes `train` a no-op with a clear notice; the queue
    and checkpoints are untouched; a stale-looking 'running' run is not closed while the lock is
    held, and is closed once it is free."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "settings.toml").write_text('teacher = "offline"\nbatch_size = 8\nsteps_per_run = 1\n')
    _queue_examples(data, 8)
    db = data / "shammah.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO training_runs (started_at, status, trigger) VALUES (1, 'running', 'other')")
        conn.commit()
    other = DataDirLock(data)
    assert other.try_acquire()
    notices: list[str] = []

    async def scenario():
        engine = await open_engine(data)
        engine.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else None)
        try:
            skipped = await engine.train("test")
            counts = await engine.store.example_counts()
            other.release()
            done = await engine.train("test")
            return skipped, counts, done
        finally:
            await engine.close()

    try:
        skipped, counts, done = asyncio.run(scenario())
    finally:
        other.release()
    assert skipped is None and TRAINING_ELSEWHERE in notices
    assert counts == {"queued": 8, "trained": 0}
    assert done is not None and done.status == "done"
    statuses = [s for (s,) in query(db, "SELECT status FROM training_runs ORDER BY id")]
    assert statuses == ["running", "done"], "the other process's run was left alone"
    asyncio.run(_open_close(data))
    assert [s for (s,) in query(db, "SELECT status FROM training_runs ORDER BY id")] == ["failed", "done"]


async def _open_close(data: Path) -> None:
    engine = await open_engine(data)
    await engine.close()


def test_cli_train_says_another_process_is_training(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "settings.toml").write_text('teacher = "offline"\n')
    _queue_examples(data, 4)
    with DataDirLock(data) as held:
        assert held
        out = subprocess.run([*CLI, "train", "--wait", "--data-dir", str(data)], capture_output=True, text=True,
                             timeout=180, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert TRAINING_ELSEWHERE in out.stdout
    assert query(data / "shammah.db", "SELECT COUNT(*) FROM training_runs")[0][0] == 0


async def test_a_run_first_takes_in_what_another_process_saved(tmp_path):
    """Engine A loaded its models before engine B trained and saved: A's next run loads B's
    checkpoints (instead of overwriting them) and sees B's learned answers."""
    from shammah_tui.core.events import Notice
    from shammah_tui.settings import Settings

    settings = Settings(teacher="offline", auto_train=False, steps_per_run=3)
    a = await Engine.open(tmp_path, settings, OfflineTeacher())
    b = await Engine.open(tmp_path, settings, OfflineTeacher())
    try:
        await a.load_models()
        await b.teaching.learn_pairs([("What is the capital of Chile?", "Santiago")], "tool")
        assert (await b.train()).status == "done"
        notices: list[str] = []
        a.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else None)
        assert (await a.teaching.local_only("What is the capital of Chile?")).answer is None  # not seen yet
        await a.teaching.learn_pairs([("What is the capital of Peru?", "Lima")], "tool")
        assert (await a.train()).status == "done"
        assert any("newer models" in n for n in notices)
        assert (await a.teaching.local_only("What is the capital of Chile?")).answer == "Santiago"
        assert await a.store.run_count() == 2
    finally:
        await a.close()
        await b.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice is per thread on Linux only")
async def test_a_run_trains_at_a_lower_cpu_priority_than_the_rest(tmp_path, monkeypatch):
    """On a busy machine the UI thread must get the CPU before training does."""
    import threading

    from shammah_tui.engine import training
    from shammah_tui.settings import Settings
    from shammah_tui.training import job as jobs

    niceness: list[int] = []
    run_job = jobs.run_training_job

    def observed(job):
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return run_job(job)

    monkeypatch.setattr(jobs, "run_training_job", observed)
    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False, steps_per_run=3),
                               OfflineTeacher())
    try:
        await engine.load_models()
        await engine.teaching.learn_pairs([("What is the capital of Peru?", "Lima")], "tool")
        for _ in range(2):  # the same training thread each run, made nicer once
            assert (await engine.train()).status == "done"
        main_thread = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        expected = min(19, main_thread + training.TRAINING_NICENESS)
        assert niceness == [expected, expected]
        # Answers still come from the shared worker threads, at the process's own priority.
        assert (await engine.teaching.local_only("What is the capital of Peru?")).answer == "Lima"
    finally:
        await engine.close()
