"""Secrets: the API key is never stored, printed or put in an error message.

A canary key is set in the environment and the Claude teacher pointed at a closed port; every
byte the commands leave behind (stdout, stderr, every file of the data dir: database, WAL,
settings, logs, checkpoints) is searched for it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.engine import Engine
from shammah_tui.settings import Settings
from shammah_tui.teachers.claude import ClaudeTeacher
from tests.fakeapi import FakeMessagesAPI

CANARY = "sk-ant-canary-5f1c0e7d9b3a4e21"
CLI = [sys.executable, "-m", "shammah_tui"]


def leaks_in(directory: Path, secret: str) -> list[str]:
    """Files under `directory` whose bytes hold `secret` (as UTF-8 or UTF-16)."""
    needles = [secret.encode(), secret.encode("utf-16-le"), secret[len("sk-ant-"):].encode()]
    return [str(p) for p in directory.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def test_canary_key_never_leaves_the_environment(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # loose on purpose: the app must tighten it
    batch = tmp_path / "queries.txt"
    batch.write_text('What is the capital of Peru?\nWhat is 2+2?\n{"query": "hello"}\n')
    env = {**os.environ, "ANTHROPIC_API_KEY": CANARY, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    common = ["--teacher", "claude", "--data-dir", str(data)]
    # ask and batch run side by side (each waits out the SDK's retries against the closed port).
    procs = {name: subprocess.Popen([*CLI, *args, *common], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env, stdin=subprocess.DEVNULL)
             for name, args in (("ask", ["ask", "What is the capital of Peru?", "--json"]),
                                ("batch", ["batch", str(batch), "--json"]))}
    runs = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        runs[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    runs["stats"] = subprocess.run([*CLI, "stats", "--json", *common], capture_output=True, text=True, env=env,
                                   timeout=60)
    assert runs["ask"].returncode == 1 and "127.0.0.1:9" in runs["ask"].stdout  # the forward failed, said where
    # Every batch line was tried; the one that needed Claude failed: exit 1 with a one-line summary.
    assert runs["batch"].returncode == 1 and runs["stats"].returncode == 0, runs
    assert runs["batch"].stderr.strip().splitlines()[-1] == "shammah-tui: 1 of 3 queries not answered (line 1)"
    for name, run in runs.items():
        assert "Traceback" not in run.stderr, (name, run.stderr)
        for text in (run.stdout, run.stderr):
            assert CANARY not in text and CANARY[len("sk-ant-"):] not in text, name
    assert leaks_in(data, CANARY) == []
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "shammah.db").exists() and (data / "settings.toml").exists()


async def test_key_echoed_by_the_api_and_hostile_answers_are_not_kept(tmp_path, fake_api: FakeMessagesAPI):
    """An API error whose message repeats the key: the stored error and the result are redacted. An answer
    with terminal escapes and lone surrogates: stored and returned clean (and storable at all)."""
    fake_api.enqueue_error(400, "invalid_request_error", f"bad header value {CANARY}")
    fake_api.enqueue_text("Lima\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m \ud800!")
    data = tmp_path / "data"
    teacher = ClaudeTeacher("claude-test-model", api_key=CANARY, base_url=fake_api.base_url, max_retries=0,
                            timeout_s=5.0)
    engine = await Engine.open(data, Settings(teacher="claude", spot_check_rate=0.0), teacher)
    try:
        refused = await engine.ask(Question("What is the capital of Peru?"), AskPolicy(auto_train="off"))
        answered = await engine.ask(Question("What is the capital of Peru?"), AskPolicy(auto_train="off"))
        stored = await engine.store.queries()
        learned = await engine.store.learned_answers()
    finally:
        await engine.close()
    assert refused.error and CANARY not in refused.error and "[redacted]" in refused.error
    assert answered.error is None and answered.source == "forward"
    assert answered.answer.startswith("Lima") and "\x1b" not in answered.answer and "\x9b" not in answered.answer
    assert "\ud800" not in answered.answer
    assert all(CANARY not in (r.error or "") for r in stored)
    assert [a.answer for a in learned] == [answered.answer]
    assert leaks_in(data, CANARY) == []
