"""Reliability: kill -9 at random moments, bad files, full and read-only disks, load.

The subprocesses run the real CLI (`python -m shammah_tui`) with the offline teacher on data
dirs copied from one template (tokenizer and checkpoints already written; `batch_size = 8` and
few steps, so training runs start often and end fast).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.datadirs import integrity, make_template, model_warnings, open_engine  # noqa: F401

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.cli import main
from shammah_tui.core.text import normalize_query
from shammah_tui.curriculum import sample_items

CLI = [sys.executable, "-m", "shammah_tui"]
SMALL_SETTINGS = 'teacher = "offline"\nbatch_size = 8\nsteps_per_run = 3\n'
#: Seed of the kill schedule (the moments are random, the run is reproducible).
KILL_SEED = 20_251_124


# ----------------------------------------------------------------------------- helpers



@pytest.fixture(scope="module")
def template_dir(tmp_path_factory) -> Path:
    """A data dir with its tokenizer and all three checkpoints written, and small settings."""
    return make_template(tmp_path_factory.mktemp("template") / "data", SMALL_SETTINGS)


def copy_data(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def run_cli(*args: str, timeout: float = 180, prefix: list[str] | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), *CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def write_queries(path: Path, queries: list[str]) -> Path:
    path.write_text("".join(json.dumps({"query": q}) + "\n" for q in queries), encoding="utf-8")
    return path




def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def parse_lines(lines: list[str]) -> list[dict]:
    """The complete JSON lines (a line cut by the kill was never printed)."""
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(json.loads(line))
    return out




def lost_rows(db: Path, printed: Counter, forwarded: Counter) -> dict[str, int]:
    """Printed outcomes missing from the store: query-log rows, learned answers, examples."""
    lost = {"query_log": 0, "learned_answers": 0, "training_examples": 0}
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        for query, n in printed.items():
            logged = conn.execute("SELECT COUNT(*) FROM query_log WHERE query = ?", (query,)).fetchone()[0]
            lost["query_log"] += max(0, n - logged)
        for query, n in forwarded.items():
            learned = conn.execute("SELECT COUNT(*) FROM learned_answers WHERE norm_query = ?",
                                   (normalize_query(query),)).fetchone()[0]
            lost["learned_answers"] += 0 if learned else 1
            examples = conn.execute("SELECT COUNT(*) FROM training_examples WHERE query = ?",
                                    (query,)).fetchone()[0]
            lost["training_examples"] += max(0, n - examples)
    return lost


class BatchProcess:
    """`batch FILE --json` in a subprocess; a thread collects stdout lines as they are printed."""

    def __init__(self, data: Path, queries: Path, stderr: Path) -> None:
        self._stderr = open(stderr, "wb")
        self.proc = subprocess.Popen([*CLI, "batch", str(queries), "--json", "--data-dir", str(data)],
                                     stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8"))

    def wait_until(self, condition: Callable[[], bool], timeout: float, poll_s: float = 0.002) -> bool:
        """True once `condition()` holds while the process still runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if condition():
                return self.proc.poll() is None
            time.sleep(poll_s)
        return False

    def kill(self) -> bool:
        """SIGKILL (if still running); True when it was killed rather than finished."""
        killed = self.proc.poll() is None
        if killed:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=30)
        self._stderr.close()
        return killed and self.proc.returncode == -signal.SIGKILL


# ------------------------------------------------------------------- 1. kill -9 anywhere


def test_kill_9_at_random_moments_loses_nothing_committed(tmp_path, template_dir):
    """kill -9 after k printed lines, mid-training and during a checkpoint write: every printed
    answer's query-log row, learned answer and example survives; the database passes
    integrity_check; the checkpoints load with no warning; `stats --json` works afterwards."""
    data = copy_data(template_dir, tmp_path / "data")
    db = data / "shammah.db"
    models = data / "models"
    rng = random.Random(KILL_SEED)
    plan = [("lines", rng.randint(1, 6)), ("training", rng.uniform(0.0, 1.5)),
            ("lines", rng.randint(7, 30)), ("checkpoint", 0.0)]
    printed: Counter[str] = Counter()
    forwarded: Counter[str] = Counter()
    kills, in_flight, report = 0, 0, []
    for i, (kind, arg) in enumerate(plan):
        items = sample_items(70, seed=1000 + i)
        queries = [it.query for it in items] + [items[0].query, items[1].query]  # a few repeats
        qfile = write_queries(tmp_path / f"q{i}.jsonl", queries)
        last_run = rows(db, "SELECT COALESCE(MAX(id), 0) FROM training_runs")[0][0]
        logged_before = rows(db, "SELECT COUNT(*) FROM query_log")[0][0]
        proc = BatchProcess(data, qfile, tmp_path / f"err{i}.txt")
        if kind == "lines":
            # Defaults bind this round's process and count (the condition runs within the round anyway).
            reached = proc.wait_until(lambda proc=proc, arg=arg: len(proc.lines) >= arg, timeout=120)
        elif kind == "training":
            with closing(sqlite3.connect(db, timeout=30)) as conn:
                reached = proc.wait_until(lambda last_run=last_run: conn.execute(
                    "SELECT COUNT(*) FROM training_runs WHERE status = 'running' AND id > ?",
                    (last_run,)).fetchone()[0] > 0, timeout=120, poll_s=0.01)
            time.sleep(arg)
        else:  # the moment a checkpoint's temporary file exists: mid-write
            reached = proc.wait_until(lambda: any(".tmp-" in n for n in os.listdir(models)),
                                      timeout=120, poll_s=0.0005)
        killed = proc.kill()
        kills += killed
        stderr = (tmp_path / f"err{i}.txt").read_text()
        assert "Traceback" not in stderr, stderr
        results = parse_lines(proc.lines)
        for r in results:
            assert r["error"] is None, r
            printed[r["query"]] += 1
            if r["source"] == "forward":
                forwarded[r["query"]] += 1
        assert integrity(db) == "ok"
        lost = lost_rows(db, printed, forwarded)
        assert lost == {"query_log": 0, "learned_answers": 0, "training_examples": 0}, (kind, lost)
        logged_now = rows(db, "SELECT COUNT(*) FROM query_log")[0][0]
        unprinted = logged_now - logged_before - len(results)
        assert 0 <= unprinted <= 1, "at most the query in flight is logged without being printed"
        in_flight += unprinted
        torn = [n for n in os.listdir(models) if ".tmp-" in n]  # a save cut short (never the real file)
        warnings = model_warnings(data)
        assert warnings == [], warnings
        assert not [n for n in os.listdir(models) if ".tmp-" in n], "the next start removes them"
        report.append(f"{kind}({arg:.2f}) reached={reached} killed={killed} printed={len(results)} "
                      f"in_flight={unprinted} torn_tmp={len(torn)}")
    stats = run_cli("stats", "--json", "--data-dir", str(data), timeout=60)
    assert stats.returncode == 0, stats.stderr
    answered = rows(db, "SELECT COUNT(*) FROM query_log WHERE source IS NOT NULL")[0][0]
    assert json.loads(stats.stdout)["queries"] == answered
    assert not rows(db, "SELECT id FROM training_runs WHERE status = 'running'"), "stale runs are closed"
    print(f"\nkill -9: {kills} kills survived, {sum(printed.values())} printed answers, 0 rows lost, "
          f"{in_flight} in-flight rows; " + "; ".join(report))
    assert kills == len(plan)


# -------------------------------------------------------------------------- 2. bad files


def test_truncated_generator_checkpoint_is_reported_and_replaced(tmp_path, template_dir):
    data = copy_data(template_dir, tmp_path / "data")
    gen = data / "models" / "generator.safetensors"
    gen.write_bytes(gen.read_bytes()[: gen.stat().st_size // 2])
    out = run_cli("ask", "What is the capital of France?", "--json", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "warning" in out.stderr and "generator" in out.stderr, out.stderr
    assert json.loads(out.stdout)["answer"] == "Paris"
    assert list((data / "models").glob("generator.safetensors.bad-*")), "the bad file is kept aside"
    assert model_warnings(data) == []  # moved aside: the next start is quiet (fresh weights)


def test_truncated_tokenizer_is_reported_and_rebuilt(tmp_path, template_dir):
    data = copy_data(template_dir, tmp_path / "data")
    tok = data / "models" / "tokenizer.json"
    tok.write_bytes(tok.read_bytes()[:1000])

    async def scenario() -> tuple[list[str], str | None]:
        engine = await open_engine(data)
        try:
            warnings = await engine.load_models()
            result = await engine.ask(Question("What is 12 plus 30?"), AskPolicy(auto_train="off"))
            return list(warnings), result.answer
        finally:
            await engine.close()

    warnings, answer = asyncio.run(scenario())
    assert any("tokenizer" in w for w in warnings), warnings
    assert answer == "42"
    assert list((data / "models").glob("tokenizer.json.bad-*"))
    assert (data / "models" / "tokenizer.json").stat().st_size > 1000, "a new tokenizer was written"


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(directory)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(directory.rglob("*"))}


def test_database_from_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with closing(sqlite3.connect(data / "shammah.db")) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE future (x INTEGER)")
        conn.execute("INSERT INTO future VALUES (42)")
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
    before = snapshot(data)
    for args in (["stats", "--json"], ["ask", "hello"]):
        out = run_cli(*args, "--data-dir", str(data), timeout=60)
        assert out.returncode == 1, out
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert "newer" in out.stderr and "schema 99" in out.stderr, out.stderr
        assert snapshot(data) == before, "nothing in the data dir was touched"


def _drop_root() -> list[str] | None:
    """A command prefix under which file permissions apply (root ignores them); None if impossible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search",
              "--inh-caps", "-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def _chmod_tree(root: Path, dir_mode: int, file_mode: int) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(dir_mode if path.is_dir() else file_mode)


def test_read_only_data_dir_gives_a_clear_message(tmp_path, template_dir):
    prefix = _drop_root()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    data = copy_data(template_dir, tmp_path / "data")
    parent = tmp_path / "locked"
    parent.mkdir()
    _chmod_tree(data, 0o500, 0o400)
    parent.chmod(0o500)
    try:
        for args in (["stats", "--json", "--data-dir", str(data)],
                     ["ask", "What is 2+2?", "--data-dir", str(data)],
                     ["stats", "--data-dir", str(parent / "new")]):
            out = run_cli(*args, prefix=prefix, timeout=60)
            assert out.returncode == 1, out
            assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
            assert "shammah-tui:" in out.stderr
            assert any(w in out.stderr.lower() for w in ("read", "permission")), out.stderr
    finally:
        _chmod_tree(data, 0o700, 0o600)
        parent.chmod(0o700)


@pytest.mark.parametrize("content, named", [
    (b"\x00\xff\xfe\x80garbage\x1b[31m", "not valid TOML"),
    (b"batch_size = = 3\n", "not valid TOML"),
    (b"[[[\n", "not valid TOML"),
    (b"batch_size = 'lots'\n", "batch_size"),
    (b"no_such_setting = 1\n", "no_such_setting"),
    (b"tier_order = ['neural', 'psychic']\n", "tier_order"),
    (b"learning_rate = nan\n", "learning_rate"),
    (b"[teacher]\nname = 'x'\n", "teacher"),
    (b"spot_check_rate = 1979-05-27T07:32:00Z\n", "spot_check_rate"),
])
def test_garbage_settings_toml_exits_2_naming_the_problem(tmp_path, capsys, content, named):
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_bytes(content)
    assert main(["stats", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "settings.toml" in err, err


def test_out_of_range_seed_is_a_settings_error(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_text("seed = 99999999999999999999999\n")
    assert main(["stats", "--data-dir", str(data)]) == 2
    assert "seed" in capsys.readouterr().err


def test_checkpoint_save_failure_fails_the_run_not_the_app(tmp_path, template_dir, monkeypatch):
    """A full disk while writing checkpoints (injected ENOSPC): the run is 'failed' with the reason,
    the old checkpoints stay, the examples stay queued, auto-training does not retry after every
    query, and answering goes on."""
    import shammah_tui.models.bundle as bundle

    data = copy_data(template_dir, tmp_path / "data")
    before = {p.name: p.read_bytes() for p in (data / "models").iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle, "save_checkpoint", disk_full)
    notices = []

    async def scenario():
        engine = await open_engine(data)
        engine.subscribe(lambda e: notices.append(e))
        try:
            items = sample_items(40, seed=5)
            await engine.teaching.learn_pairs([(it.query, it.answer) for it in items[:8]], "tool")
            report = await engine.train("test")
            runs = [await engine.ask(Question(it.query), AskPolicy(auto_train="wait")) for it in items[8:12]]
            counts = await engine.store.example_counts()
            return report, runs, counts, await engine.store.runs()
        finally:
            await engine.close()

    report, answers, counts, runs = asyncio.run(scenario())
    assert report.status == "failed" and "No space left" in report.error
    assert all(a.error is None and a.answer for a in answers)
    assert counts["trained"] == 0 and counts["queued"] >= 8
    assert [r.status for r in runs] == ["failed"], "no retry on each of the next queries"
    assert {p.name: p.read_bytes() for p in (data / "models").iterdir()} == before
    assert any(getattr(n, "level", "") == "error" and "No space left" in n.text for n in notices)


FULL_DISK_SCRIPT = r"""
set -u
mount -t tmpfs -o size=3m tmpfs "$MNT" || exit 97
mkdir -m 700 "$MNT/data" "$MNT/data/models"
cp "$SETTINGS" "$MNT/data/settings.toml"
cp "$TOKENIZER" "$MNT/data/models/tokenizer.json"
"$PY" -m shammah_tui batch "$QUERIES" --json --data-dir "$MNT/data" > "$OUT/batch.out" 2> "$OUT/batch.err"
echo $? > "$OUT/batch.rc"
"$PY" -m shammah_tui stats --json --data-dir "$MNT/data" > "$OUT/stats.out" 2> "$OUT/stats.err"
echo $? > "$OUT/stats.rc"
cp -a "$MNT/data" "$OUT/after"
"""


def test_real_full_disk(tmp_path, template_dir):
    """The data dir on a 3 MB tmpfs (a private mount namespace; root only): the checkpoint save
    fails with ENOSPC, then the database fills. The CLI ends with one line and exit 1, never a
    traceback; the database stays intact and every printed answer is in it."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare to mount a small tmpfs")
    if subprocess.run([unshare, "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a mount namespace here")
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    settings = tmp_path / "settings.toml"
    settings.write_text(SMALL_SETTINGS)
    filler = "x" * 7000
    queries = [it.query for it in sample_items(30, seed=9)]
    queries += [f"Tell me about item {i}: {filler}" for i in range(400)]
    qfile = write_queries(tmp_path / "q.jsonl", queries)
    env = {**os.environ, "MNT": str(mnt), "OUT": str(out), "PY": sys.executable, "SETTINGS": str(settings),
           "QUERIES": str(qfile), "TOKENIZER": str(template_dir / "models" / "tokenizer.json")}
    done = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c", FULL_DISK_SCRIPT],
                          env=env, capture_output=True, text=True, timeout=300)
    if done.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    batch_err = (out / "batch.err").read_text()
    assert "Traceback" not in batch_err, batch_err
    assert (out / "batch.rc").read_text().strip() == "1", batch_err
    assert "disk is full" in batch_err or "No space" in batch_err, batch_err
    assert batch_err.strip().splitlines()[-1].startswith("shammah-tui: ")
    assert (out / "stats.rc").read_text().strip() == "0", (out / "stats.err").read_text()
    db = out / "after" / "shammah.db"
    assert integrity(db) == "ok"
    printed = Counter(json.loads(line)["query"] for line in (out / "batch.out").read_text().splitlines())
    assert printed, "some answers were printed before the disk filled"
    assert lost_rows(db, printed, Counter())["query_log"] == 0
    failed = rows(db, "SELECT error FROM training_runs WHERE status = 'failed'")
    assert any("No space" in (e or "") for (e,) in failed), failed


# -------------------------------------------------------------------------------- 6. load


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


#: Set SHAMMAH_LOAD_QUERIES=5000 for the full run; the suite keeps a 1,000-query one.
LOAD_QUERIES = int(os.environ.get("SHAMMAH_LOAD_QUERIES", "1000"))


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc for RSS")
def test_steady_memory_and_latency_under_load(tmp_path, template_dir):
    """Templates, repeats and forwards through one Engine, training off: RSS after the first tenth
    vs at the end within +50 MB; p50 latency of the last fifth within 2x of the first fifth."""
    data = copy_data(template_dir, tmp_path / "data")
    n = LOAD_QUERIES
    rng = random.Random(11)
    queries: list[str] = []
    for item in sample_items(n, seed=12):
        queries.append(rng.choice(queries) if queries and rng.random() < 0.3 else item.query)

    async def run():
        engine = await open_engine(data)
        latencies, rss_early = [], 0.0
        try:
            await engine.load_models()
            for i, query in enumerate(queries, start=1):
                t0 = time.perf_counter()
                result = await engine.ask(Question(query), AskPolicy(auto_train="off"))
                latencies.append((time.perf_counter() - t0) * 1000)
                assert result.error is None, result
                if i == n // 10:
                    rss_early = _rss_mb()
            return latencies, rss_early, _rss_mb(), await engine.stats()
        finally:
            await engine.close()

    latencies, rss_early, rss_end, stats = asyncio.run(run())
    window = n // 5
    p50_first, p50_last = statistics.median(latencies[:window]), statistics.median(latencies[-window:])
    print(f"\nload {n} queries: rss {rss_early:.1f} MB after {n // 10} -> {rss_end:.1f} MB at end; "
          f"p50 first {window} {p50_first:.2f} ms, last {window} {p50_last:.2f} ms; "
          f"by source {stats.by_source}")
    assert stats.queries == n and stats.examples_trained == 0
    assert rss_end - rss_early < 50, (rss_early, rss_end)
    assert p50_last < 2 * p50_first + 0.5, (p50_first, p50_last)
