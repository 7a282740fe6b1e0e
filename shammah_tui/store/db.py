"""The store: the only module with SQL. One aiosqlite connection in WAL mode.

Writes run inside `BEGIN IMMEDIATE` transactions behind an asyncio lock, so two
tasks of one process never interleave and a second process waits on SQLite's
busy timeout instead of corrupting anything. Every statement is parameterized.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from shammah_tui.core.kinds import SOURCES
from shammah_tui.lock import OPEN_LOCK_NAME, DataDirLock
from shammah_tui.store.migrations import LATEST_VERSION, MIGRATIONS
from shammah_tui.core.records import (
    RequestLogRow, CalibrationPoint, ConversationSummary, Exchange, Label, LearnedAnswer, LossPoint, Message,
    ModelLoss, PairLabel, QueryRecord, SkillResult, ToolCallRow, TrainingExample, TrainingRun,
)

#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 15.0


class StoreError(RuntimeError):
    """The database cannot be used; the message says why in one line."""


class Store:
    """Async access to the Shammah database."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, clock: Callable[[], float]) -> None:
        self._db = conn
        self.path = path
        self._clock = clock
        self._write_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float] = time.time) -> Store:
        """Open (creating if needed) and migrate the database at `path`.

        Processes open one at a time (a lock file beside the database): creating the file,
        switching it to WAL and migrating it must not race another process doing the same.
        """
        lock = DataDirLock(path.parent, OPEN_LOCK_NAME)
        if not await lock.acquire(BUSY_TIMEOUT_S):
            raise StoreError(f"cannot use database {path}: another process has been opening it "
                             f"for {BUSY_TIMEOUT_S:.0f} s")
        try:
            try:
                conn = await aiosqlite.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open database {path}: {exc}") from None
            conn.row_factory = aiosqlite.Row
            store = cls(conn, path, clock)
            try:
                await store._prepare()
            except BaseException:
                await conn.close()
                raise
        finally:
            lock.release()
        return store

    async def _prepare(self) -> None:
        try:
            await self._db.execute("PRAGMA busy_timeout = %d" % int(BUSY_TIMEOUT_S * 1000))
            version = (await self._fetchrow("PRAGMA user_version"))[0]
            if version > LATEST_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer Shammah (schema {version}, "
                    f"this one knows up to {LATEST_VERSION}); upgrade shammah-tui"
                )
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = NORMAL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            await self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use database {self.path}: {exc}") from None

    async def _migrate(self) -> None:
        async with self.transaction():
            await self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            rows = await self._db.execute_fetchall("SELECT version FROM schema_migrations")
            applied = {row[0] for row in rows}
            for migration in MIGRATIONS:
                if migration.version in applied:
                    continue
                for statement in _statements(migration.sql):
                    await self._db.execute(statement)
                await self._db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, self._clock()),
                )
            await self._db.execute(f"PRAGMA user_version = {int(LATEST_VERSION)}")

    async def close(self) -> None:
        """Close the connection (its worker thread would otherwise hold up exit).

        The last connection to close checkpoints the WAL and removes it: done under the open
        lock too, so a process opening at that moment finds the files settled.
        """
        lock = DataDirLock(self.path.parent, OPEN_LOCK_NAME)
        held = await lock.acquire(BUSY_TIMEOUT_S)
        try:
            await self._db.close()
        finally:
            if held:
                lock.release()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _fetchrow(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row:
        """The row of a query that always yields one (a PRAGMA, an aggregate)."""
        row = await self._fetchone(sql, params)
        if row is None:
            raise StoreError(f"cannot use database {self.path}: no row for {sql!r}")
        return row

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._db.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        return (await self._fetchrow("PRAGMA user_version"))[0]

    async def integrity_ok(self) -> bool:
        row = await self._fetchone("PRAGMA integrity_check")
        return row is not None and row[0] == "ok"

    # ------------------------------------------------------------- conversations
    async def new_conversation(self, title: str = "") -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO conversations (title, created_at) VALUES (?, ?)", (title, self._clock())
            )
            return _rowid(cursor)

    async def latest_conversation(self) -> int | None:
        row = await self._fetchone("SELECT id FROM conversations ORDER BY id DESC LIMIT 1")
        return None if row is None else int(row[0])

    async def add_message(self, conversation_id: int, role: str, text: str,
                          source: str | None = None, query_id: int | None = None) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO messages (conversation_id, role, text, source, query_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, role, text, source, query_id, self._clock()),
            )
            return _rowid(cursor)

    async def conversations(self, limit: int = 50, include_empty: bool = False) -> list[ConversationSummary]:
        """Conversations, the most recently active first, each with its title (else its first
        question), message count and dates; empty ones only with `include_empty`."""
        rows = await self._fetchall(
            "SELECT c.id, c.title, c.created_at, COUNT(m.id) AS n,"
            " COALESCE(MAX(m.created_at), c.created_at) AS last_at,"
            " (SELECT f.text FROM messages f WHERE f.conversation_id = c.id AND f.role = 'user'"
            "  ORDER BY f.id LIMIT 1) AS first_question"
            " FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id"
            " GROUP BY c.id HAVING COUNT(m.id) > 0 OR ?"
            " ORDER BY last_at DESC, c.id DESC LIMIT ?",
            (int(include_empty), limit),
        )
        return [_conversation(r) for r in rows]

    async def conversation(self, conversation_id: int) -> ConversationSummary | None:
        """One conversation's summary, or None when there is no such conversation."""
        row = await self._fetchone(
            "SELECT c.id, c.title, c.created_at, COUNT(m.id) AS n,"
            " COALESCE(MAX(m.created_at), c.created_at) AS last_at,"
            " (SELECT f.text FROM messages f WHERE f.conversation_id = c.id AND f.role = 'user'"
            "  ORDER BY f.id LIMIT 1) AS first_question"
            " FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id"
            " WHERE c.id = ? GROUP BY c.id",
            (conversation_id,),
        )
        return None if row is None else _conversation(row)

    async def rename_conversation(self, conversation_id: int, title: str) -> bool:
        """Give a conversation a title ("" goes back to its first question); False when there is none."""
        async with self.transaction() as db:
            cursor = await db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                                      (title, conversation_id))
            return cursor.rowcount > 0

    async def delete_conversation(self, conversation_id: int) -> bool:
        """Remove a conversation and its messages; False when there is none. The query log and what
        was learned from it stay: they are the stats' history and the models' data, not the chat."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            cursor = await db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            return cursor.rowcount > 0

    async def search_messages(self, text: str, limit: int = 50) -> list[Message]:
        """Messages of every conversation that contain `text` (case-insensitive), newest first."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._fetchall(
            "SELECT * FROM messages WHERE text LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?", (pattern, limit))
        return [_message(r) for r in rows]

    async def messages(self, conversation_id: int, limit: int = 200) -> list[Message]:
        rows = await self._fetchall(
            "SELECT * FROM (SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?)"
            " ORDER BY id",
            (conversation_id, limit),
        )
        return [_message(r) for r in rows]

    # ----------------------------------------------------------------- query log
    async def log_query(self, record: QueryRecord) -> int:
        async with self.transaction() as db:
            return await self._insert_query(db, record)

    async def _insert_query(self, db: aiosqlite.Connection, r: QueryRecord) -> int:
        if r.source is not None and r.source not in SOURCES:
            raise ValueError(f"unknown answer source {r.source!r} (known: {', '.join(SOURCES)})")
        cursor = await db.execute(
            "INSERT INTO query_log (conversation_id, query, context_key, answer, source, latency_ms,"
            " router_p, validator_p, confidence, verified, teacher_answer, error,"
            " teacher_input_tokens, teacher_output_tokens, spot_checked, created_at, credited)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.conversation_id, r.query, r.context_key, r.answer, r.source, r.latency_ms,
             r.router_p, r.validator_p, r.confidence, None if r.verified is None else int(r.verified),
             r.teacher_answer, r.error, r.teacher_input_tokens, r.teacher_output_tokens,
             int(r.spot_checked), r.created_at or self._clock(), int(r.credited)),
        )
        return _rowid(cursor)

    async def set_verification(self, query_id: int | None, verified: bool, teacher_answer: str,
                               input_tokens: int, output_tokens: int) -> None:
        """Record a spot check's verdict on a logged local answer."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE query_log SET spot_checked = 1, verified = ?, teacher_answer = ?,"
                " teacher_input_tokens = teacher_input_tokens + ?,"
                " teacher_output_tokens = teacher_output_tokens + ? WHERE id = ?",
                (int(verified), teacher_answer, input_tokens, output_tokens, query_id),
            )

    async def recent_sources(self, limit: int) -> list[str]:
        """Sources of the last `limit` answered queries, oldest first (for rolling rates)."""
        rows = await self._fetchall(
            "SELECT source FROM (SELECT id, source FROM query_log WHERE source IS NOT NULL"
            " ORDER BY id DESC LIMIT ?) ORDER BY id",
            (limit,),
        )
        return [r[0] for r in rows]

    async def source_counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(SOURCES, 0)
        for row in await self._fetchall(
            "SELECT source, COUNT(*) FROM query_log WHERE source IS NOT NULL GROUP BY source"
        ):
            counts[row[0]] = int(row[1])
        return counts

    async def spot_check_counts(self) -> tuple[int, int]:
        """(spot-checked local answers, how many of them agreed with the teacher)."""
        by_source = await self.spot_check_counts_by_source()
        return sum(n for n, _ in by_source.values()), sum(a for _, a in by_source.values())

    async def spot_check_counts_by_source(self) -> dict[str, tuple[int, int]]:
        """Per local source: (spot-checked answers, how many agreed with the teacher)."""
        rows = await self._fetchall(
            "SELECT source, COUNT(*), COALESCE(SUM(verified), 0) FROM query_log"
            " WHERE spot_checked = 1 AND verified IS NOT NULL AND source != 'forward' GROUP BY source"
        )
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

    async def teacher_token_totals(self) -> tuple[int, int, int]:
        """(input tokens, output tokens, forwarded queries) spent on the teacher."""
        row = await self._fetchrow(
            "SELECT COALESCE(SUM(teacher_input_tokens), 0), COALESCE(SUM(teacher_output_tokens), 0),"
            " COALESCE(SUM(source = 'forward'), 0) FROM query_log"
        )
        return int(row[0]), int(row[1]), int(row[2])

    async def queries(self, limit: int = 100) -> list[QueryRecord]:
        rows = await self._fetchall("SELECT * FROM query_log ORDER BY id DESC LIMIT ?", (limit,))
        return [_query_record(r) for r in reversed(rows)]

    # ------------------------------------------- learned answers and examples
    async def log_answer(self, record: QueryRecord, *, hit_id: int | None = None,
                         exchange: Exchange | None = None) -> int:
        """One answered (or failed) query in one transaction: its log row, the hit of the stored
        answer it served, and the question and reply as messages. Returns the log row's id."""
        async with self.transaction() as db:
            query_id = await self._insert_query(db, record)
            if hit_id is not None:
                await db.execute("UPDATE learned_answers SET hits = hits + 1 WHERE id = ?", (hit_id,))
            await self._insert_exchange(db, exchange, query_id)
            return query_id

    async def _insert_exchange(self, db: aiosqlite.Connection, exchange: Exchange | None,
                               query_id: int | None) -> None:
        if exchange is None:
            return
        now = self._clock()
        await db.executemany(
            "INSERT INTO messages (conversation_id, role, text, source, query_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(exchange.conversation_id, "user", exchange.question, None, None, now),
             (exchange.conversation_id, "assistant" if exchange.answered else "notice", exchange.reply,
              exchange.source, query_id, now)])

    async def learn(self, *, query: str, norm_query: str, context: str, context_key: str,
                    answer: str, origin: str, log: QueryRecord | None = None,
                    exchange: Exchange | None = None, train: bool = True) -> tuple[int, int | None, int | None]:
        """Store a teacher answer and queue it as a training example (unless `train` is False), in one
        transaction (with the query's log row and its messages, when given).

        Returns (learned answer id, training example id or None, query log id or None). The learned
        answer is replaced when the same question in the same context is answered again.
        """
        async with self.transaction() as db:
            # The upstream's usage of this very answer, when it measured one: what reusing it saves.
            usage_in = usage_out = None
            if log is not None and (log.teacher_input_tokens or log.teacher_output_tokens):
                usage_in, usage_out = log.teacher_input_tokens, log.teacher_output_tokens
            await db.execute(
                "INSERT INTO learned_answers (norm_query, context_key, query, answer, origin, created_at,"
                " usage_input_tokens, usage_output_tokens)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (norm_query, context_key) DO UPDATE SET answer = excluded.answer,"
                " query = excluded.query, origin = excluded.origin,"
                " usage_input_tokens = excluded.usage_input_tokens,"
                " usage_output_tokens = excluded.usage_output_tokens",
                (norm_query, context_key, query, answer, origin, self._clock(), usage_in, usage_out),
            )
            example_id = None
            if train:
                cursor = await db.execute(
                    "INSERT INTO training_examples (query, context, context_key, answer, origin, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (query, context, context_key, answer, origin, self._clock()),
                )
                example_id = _rowid(cursor)
            log_id = await self._insert_query(db, log) if log is not None else None
            await self._insert_exchange(db, exchange, log_id)
            learned_id = await self._learned_id(db, norm_query, context_key)
            return learned_id, example_id, log_id

    async def _learned_id(self, db: aiosqlite.Connection, norm_query: str, context_key: str) -> int:
        async with db.execute(
            "SELECT id FROM learned_answers WHERE norm_query = ? AND context_key = ?", (norm_query, context_key)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:  # written in this transaction just before
            raise StoreError(f"learned answer ({norm_query!r}, {context_key!r}) missing after its insert")
        return int(row[0])

    async def learn_many(self, items: Iterable[dict[str, str]], origin: str) -> list[int]:
        """`learn` for a batch (tool input); returns the learned answer ids, in order.

        Each dict has query, norm_query, context, context_key and answer; one whose "train" is "no"
        is stored as a learned answer only.
        """
        now = self._clock()
        rows = list(items)
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO learned_answers (norm_query, context_key, query, answer, origin, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (norm_query, context_key) DO UPDATE SET answer = excluded.answer,"
                " query = excluded.query, origin = excluded.origin",
                [(r["norm_query"], r["context_key"], r["query"], r["answer"], origin, now) for r in rows],
            )
            await db.executemany(
                "INSERT INTO training_examples (query, context, context_key, answer, origin, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(r["query"], r["context"], r["context_key"], r["answer"], origin, now) for r in rows
                 if r.get("train") != "no"],
            )
            return [await self._learned_id(db, r["norm_query"], r["context_key"]) for r in rows]

    async def learned_answers(self) -> list[LearnedAnswer]:
        rows = await self._fetchall("SELECT * FROM learned_answers ORDER BY id")
        return [LearnedAnswer(r["id"], r["norm_query"], r["context_key"], r["query"], r["answer"],
                              r["origin"], r["hits"]) for r in rows]

    async def learned_count(self) -> int:
        return int((await self._fetchrow("SELECT COUNT(*) FROM learned_answers"))[0])

    async def learned_usage(self, learned_id: int) -> tuple[int, int] | None:
        """(input, output) tokens the upstream measured for a stored answer; None when none did."""
        row = await self._fetchone(
            "SELECT usage_input_tokens, usage_output_tokens FROM learned_answers WHERE id = ?", (learned_id,))
        if row is None or row[0] is None or row[1] is None:
            return None
        return int(row[0]), int(row[1])

    async def count_hit(self, learned_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE learned_answers SET hits = hits + 1 WHERE id = ?", (learned_id,))

    async def examples(self, state: str, limit: int = 1_000_000) -> list[TrainingExample]:
        rows = await self._fetchall(
            "SELECT * FROM training_examples WHERE state = ? ORDER BY id LIMIT ?", (state, limit)
        )
        return [_example(r) for r in rows]

    async def examples_by_id(self, ids: Sequence[int]) -> list[TrainingExample]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._fetchall(f"SELECT * FROM training_examples WHERE id IN ({marks})", list(ids))
        return [_example(r) for r in rows]

    async def trained_queries(self) -> list[str]:
        """The questions of every trained example (what the generator has seen)."""
        return [str(r[0]) for r in await self._fetchall(
            "SELECT DISTINCT query FROM training_examples WHERE state = 'trained'")]

    async def trained_example_kinds(self) -> list[tuple[int, str, str]]:
        """(id, query, origin) of every trained example: what a run's replay is stratified by."""
        return [(int(r[0]), str(r[1]), str(r[2])) for r in await self._fetchall(
            "SELECT id, query, origin FROM training_examples WHERE state = 'trained' ORDER BY id")]

    async def example_counts(self) -> dict[str, int]:
        counts = {"queued": 0, "trained": 0}
        for row in await self._fetchall("SELECT state, COUNT(*) FROM training_examples GROUP BY state"):
            counts[row[0]] = int(row[1])
        return counts

    # ------------------------------------------------------------ training runs
    async def start_run(self, trigger: str, device: str) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO training_runs (started_at, status, trigger, device) VALUES (?, 'running', ?, ?)",
                (self._clock(), trigger, device),
            )
            return _rowid(cursor)

    async def add_loss_points(self, points: Sequence[LossPoint]) -> None:
        if not points:
            return
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO loss_points (run_id, model, step, loss, examples_per_s) VALUES (?, ?, ?, ?, ?)",
                [(p.run_id, p.model, p.step, p.loss, p.examples_per_s) for p in points],
            )

    async def finish_run(self, run_id: int, *, status: str, examples: int, steps: int,
                         examples_per_s: float | None, losses: dict[str, ModelLoss],
                         trained_ids: Sequence[int], error: str | None = None) -> None:
        """Close a run: its losses, and the examples it trained, in one transaction."""
        now = self._clock()
        async with self.transaction() as db:
            await db.execute(
                "UPDATE training_runs SET finished_at = ?, status = ?, examples = ?, steps = ?,"
                " examples_per_s = ?, error = ? WHERE id = ?",
                (now, status, examples, steps, examples_per_s, error, run_id),
            )
            await db.executemany(
                "INSERT OR REPLACE INTO run_losses (run_id, model, old_loss, new_loss, improvement_pct,"
                " measured_on) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, m, l.old_loss, l.new_loss, l.improvement_pct, l.measured_on)
                 for m, l in losses.items()],
            )
            await db.executemany(
                "UPDATE training_examples SET state = 'trained', times_trained = times_trained + 1,"
                " trained_at = ? WHERE id = ?",
                [(now, i) for i in trained_ids],
            )

    async def close_stale_runs(self) -> int:
        """Runs left 'running' by a killed process are marked failed at start-up."""
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE training_runs SET status = 'failed', error = 'interrupted'"
                " WHERE status = 'running'"
            )
            return cursor.rowcount

    async def runs(self, limit: int = 20) -> list[TrainingRun]:
        rows = await self._fetchall("SELECT * FROM training_runs ORDER BY id DESC LIMIT ?", (limit,))
        runs = [_run(r) for r in reversed(rows)]
        if runs:
            marks = ",".join("?" * len(runs))
            for r in await self._fetchall(
                f"SELECT * FROM run_losses WHERE run_id IN ({marks})", [run.id for run in runs]
            ):
                next(run for run in runs if run.id == r["run_id"]).losses[r["model"]] = _loss(r)
        return runs

    async def last_finished_run(self) -> TrainingRun | None:
        row = await self._fetchone(
            "SELECT * FROM training_runs WHERE status = 'done' ORDER BY id DESC LIMIT 1")
        if row is None:
            return None
        run = _run(row)
        for r in await self._fetchall("SELECT * FROM run_losses WHERE run_id = ?", (run.id,)):
            run.losses[r["model"]] = _loss(r)
        return run

    async def generator_run(self) -> int | None:
        """The newest run that finished: the one whose generator is in use (None: untrained)."""
        row = await self._fetchone("SELECT MAX(id) FROM training_runs WHERE status = 'done'")
        return None if row is None or row[0] is None else int(row[0])

    async def run_count(self) -> int:
        return int((await self._fetchrow(
            "SELECT COUNT(*) FROM training_runs WHERE status = 'done'"))[0])

    async def runs_started(self) -> int:
        """Every run ever started, whatever its end (a cancelled or failed run has an id too)."""
        return int((await self._fetchrow("SELECT COUNT(*) FROM training_runs"))[0])

    async def loss_history(self, model: str, limit: int = 500) -> list[LossPoint]:
        rows = await self._fetchall(
            "SELECT * FROM (SELECT * FROM loss_points WHERE model = ? ORDER BY id DESC LIMIT ?)"
            " ORDER BY id",
            (model, limit),
        )
        return [LossPoint(r["run_id"], r["model"], r["step"], r["loss"], r["examples_per_s"]) for r in rows]

    # -------------------------------------------------------------------- labels
    async def add_labels(self, labels: Sequence[Label]) -> None:
        if not labels:
            return
        now = self._clock()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO labels (query, context_key, answer, source, label, score, origin, features,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(_text(l.query), _text(l.context_key), _text(l.answer), l.source, l.label, l.score,
                  l.origin, json.dumps(l.features), now) for l in labels],
            )

    async def labels(self, limit: int = 5000) -> list[Label]:
        rows = await self._fetchall(
            "SELECT * FROM (SELECT * FROM labels ORDER BY id DESC LIMIT ?) ORDER BY id", (limit,))
        return [Label(r["query"], r["answer"], r["source"], r["label"], r["origin"], r["context_key"],
                      r["score"], json.loads(r["features"]), r["id"]) for r in rows]

    # ---------------------------------------------------------------- tool calls
    async def record_tool_call(self, *, call_id: str, name: str, input: dict[str, Any], status: str,
                               duration_ms: float | None, summary: str, result_text: str) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO tool_calls (call_id, name, input_json, status, duration_ms, summary,"
                " result_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_text(call_id), _text(name), _input_json(input), status,
                 duration_ms, _text(summary), _text(result_text), self._clock()),
            )
            return _rowid(cursor)

    async def tool_calls(self, limit: int = 200) -> list[ToolCallRow]:
        rows = await self._fetchall(
            "SELECT * FROM (SELECT * FROM tool_calls ORDER BY id DESC LIMIT ?) ORDER BY id", (limit,))
        return [ToolCallRow(r["id"], r["call_id"], r["name"], json.loads(r["input_json"]), r["status"],
                            r["duration_ms"], r["summary"], r["result_text"], r["created_at"]) for r in rows]

    # ------------------------------------------------------- what a tier is credited with
    async def credited_counts(self) -> dict[str, int]:
        """Answers per source that no cheaper tier would have given (forwards: every one)."""
        counts: dict[str, int] = dict.fromkeys(SOURCES, 0)
        for row in await self._fetchall(
            "SELECT source, COUNT(*) FROM query_log WHERE source IS NOT NULL AND credited = 1 GROUP BY source"
        ):
            counts[row[0]] = int(row[1])
        return counts

    # -------------------------------------------------------- embeddings of stored questions
    async def learned_embeddings(self, model: str) -> list[tuple[int, bytes]]:
        """(learned answer id, embedding bytes) of the stored questions `model` embedded."""
        rows = await self._fetchall(
            "SELECT id, embedding FROM learned_answers WHERE embedding_model = ? AND embedding IS NOT NULL",
            (model,))
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def set_embeddings(self, items: Sequence[tuple[int, bytes]], model: str) -> None:
        if not items:
            return
        async with self.transaction() as db:
            await db.executemany(
                "UPDATE learned_answers SET embedding = ?, embedding_model = ? WHERE id = ?",
                [(blob, model, learned_id) for learned_id, blob in items])

    # ---------------------------------------------------------------- pair labels
    async def add_pair_labels(self, labels: Sequence[PairLabel]) -> None:
        if not labels:
            return
        now = self._clock()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO pair_labels (query, stored_query, context_key, label, features, origin, fitted,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(_text(l.query), _text(l.stored_query), _text(l.context_key), int(l.label),
                  json.dumps([float(x) for x in l.features]), l.origin, int(l.fitted), now) for l in labels])

    async def pair_labels(self, origins: Sequence[str], *, limit: int = 5000,
                          fitted: bool | None = None) -> list[PairLabel]:
        """The newest `limit` pair labels of `origins`, oldest first; `fitted` filters when given."""
        marks = ",".join("?" * len(origins))
        where = f"origin IN ({marks})" + ("" if fitted is None else " AND fitted = ?")
        params: list[Any] = [*origins, *([] if fitted is None else [int(fitted)]), limit]
        rows = await self._fetchall(
            f"SELECT * FROM (SELECT * FROM pair_labels WHERE {where} ORDER BY id DESC LIMIT ?) ORDER BY id",
            params)
        return [PairLabel(r["query"], r["stored_query"], int(r["label"]), json.loads(r["features"]),
                          r["origin"], r["context_key"], bool(r["fitted"]), int(r["id"])) for r in rows]

    async def set_pair_label_features(self, rows: Sequence[tuple[int, Sequence[float]]]) -> None:
        """Replace the features of labels by id (recomputed under a new feature version)."""
        if not rows:
            return
        async with self.transaction() as db:
            await db.executemany("UPDATE pair_labels SET features = ? WHERE id = ?",
                                 [(json.dumps([float(x) for x in features]), i) for i, features in rows])

    async def mark_pair_labels_fitted(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        async with self.transaction() as db:
            await db.executemany("UPDATE pair_labels SET fitted = 1 WHERE id = ?", [(i,) for i in ids])

    # --------------------------------------------------------- calibration points
    async def add_calibration_points(self, model: str, points: Sequence[CalibrationPoint]) -> None:
        if not points:
            return
        now = self._clock()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO calibration_points (model, query, answer, features, agreed, origin, created_at,"
                " generator_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(model, _text(p.query), _text(p.answer), json.dumps([float(x) for x in p.features]),
                  int(p.agreed), p.origin, now, p.generator_run) for p in points])

    async def calibration_points(self, model: str, limit: int) -> list[CalibrationPoint]:
        """The newest `limit` points of `model`, newest first."""
        rows = await self._fetchall(
            "SELECT * FROM calibration_points WHERE model = ? ORDER BY id DESC LIMIT ?", (model, limit))
        return [CalibrationPoint(r["query"], r["answer"], json.loads(r["features"]), bool(r["agreed"]),
                                 r["origin"], int(r["id"]), r["generator_run"]) for r in rows]

    # -------------------------------------------------------------- skill results
    async def add_skill_results(self, run_id: int | None, results: Sequence[SkillResult]) -> None:
        if not results:
            return
        now = self._clock()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO skill_results (run_id, skill, accuracy, served, held_out, loss, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, r.skill, r.accuracy, r.served, r.held_out, r.loss, now) for r in results])

    async def skill_history(self, limit: int = 500) -> list[SkillResult]:
        """The newest `limit` skill results, oldest first (a chart per skill over runs)."""
        rows = await self._fetchall(
            "SELECT * FROM (SELECT * FROM skill_results ORDER BY id DESC LIMIT ?) ORDER BY id", (limit,))
        return [SkillResult(r["skill"], r["accuracy"], r["served"], r["held_out"], r["loss"], r["run_id"])
                for r in rows]

    # ------------------------------------------------------------------ settings
    # --------------------------------------------------------- serve: requests
    async def log_request(self, r: RequestLogRow) -> int:
        # One statement, its own transaction: one trip to the database thread instead of three,
        # on the path of every request `serve` answers.
        async with self._write_lock:
            cursor = await self._db.execute(
                "INSERT INTO request_log (request_id, method, path, route, status, source, model, token_name,"
                " latency_ms, input_tokens, output_tokens, saved_input_tokens, saved_output_tokens, saved_usd,"
                " error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.request_id, r.method, r.path, r.route, r.status, r.source, r.model, r.token_name,
                 r.latency_ms, r.input_tokens, r.output_tokens, r.saved_input_tokens, r.saved_output_tokens,
                 r.saved_usd, r.error, r.created_at or self._clock()),
            )
            return _rowid(cursor)

    async def requests(self, limit: int = 200) -> list[RequestLogRow]:
        """The last `limit` served requests, oldest first."""
        rows = await self._fetchall("SELECT * FROM request_log ORDER BY id DESC LIMIT ?", (limit,))
        return [RequestLogRow(
            request_id=r["request_id"], method=r["method"], path=r["path"], route=r["route"], status=r["status"],
            source=r["source"], model=r["model"], token_name=r["token_name"], latency_ms=r["latency_ms"],
            input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
            saved_input_tokens=r["saved_input_tokens"], saved_output_tokens=r["saved_output_tokens"],
            saved_usd=r["saved_usd"], error=r["error"], created_at=r["created_at"], id=r["id"],
        ) for r in reversed(rows)]

    async def savings_by_day(self) -> list[tuple[str, str, int, int, int, float]]:
        """Per UTC day and source of served requests: (day, source, requests, saved input tokens,
        saved output tokens, saved dollars), oldest day first."""
        rows = await self._fetchall(
            "SELECT date(created_at, 'unixepoch'), source, COUNT(*), SUM(saved_input_tokens),"
            " SUM(saved_output_tokens), SUM(saved_usd) FROM request_log WHERE source IS NOT NULL"
            " GROUP BY 1, 2 ORDER BY 1, 2")
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5])) for r in rows]

    # ------------------------------------------------------ serve: client tokens
    async def add_client_token(self, name: str, token_sha256: str) -> None:
        """Raises StoreError when a token of that name exists (revoked or not)."""
        try:
            async with self.transaction() as db:
                await db.execute("INSERT INTO client_tokens (name, token_sha256, created_at) VALUES (?, ?, ?)",
                                 (name, token_sha256, self._clock()))
        except sqlite3.IntegrityError:
            raise StoreError(f"a client token named {name!r} exists already") from None

    async def revoke_client_token(self, name: str) -> bool:
        """False when no live token has that name."""
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE client_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (self._clock(), name))
            return cursor.rowcount > 0

    async def client_token_name(self, token_sha256: str) -> str | None:
        """The name of the live token with this hash."""
        row = await self._fetchone(
            "SELECT name FROM client_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", (token_sha256,))
        return None if row is None else str(row[0])

    async def client_tokens(self) -> list[tuple[str, float, float | None]]:
        """(name, created at, revoked at or None) of every named token."""
        rows = await self._fetchall("SELECT name, created_at, revoked_at FROM client_tokens ORDER BY id")
        return [(str(r[0]), float(r[1]), None if r[2] is None else float(r[2])) for r in rows]

    async def get_value(self, key: str) -> str | None:
        row = await self._fetchone("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_value(self, key: str, value: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _rowid(cursor: aiosqlite.Cursor) -> int:
    """The id of the row an INSERT just wrote."""
    if cursor.lastrowid is None:
        raise StoreError("an INSERT gave no row id")
    return cursor.lastrowid


def _text(value: Any) -> str:
    """Text SQLite can store: tool input arrives from the network, where JSON may carry lone
    surrogates ("\\ud800"), which UTF-8 cannot encode."""
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "replace").decode("utf-8")


def _input_json(value: Any) -> str:
    """A tool input as JSON for the log, whatever it holds (huge ints, deep nesting, surrogates)."""
    try:
        return json.dumps(value, ensure_ascii=True, default=str)
    except (ValueError, RecursionError, TypeError) as exc:
        return json.dumps({"_unrecordable": f"{type(value).__name__} input ({type(exc).__name__})"})


def _statements(script: str) -> list[str]:
    """Split a migration script on semicolons (our migrations hold no literal semicolons)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def _message(r: aiosqlite.Row) -> Message:
    return Message(r["id"], r["conversation_id"], r["role"], r["text"], r["source"], r["query_id"], r["created_at"])


def _query_record(r: aiosqlite.Row) -> QueryRecord:
    return QueryRecord(
        query=r["query"], source=r["source"], answer=r["answer"], latency_ms=r["latency_ms"] or 0.0,
        context_key=r["context_key"], conversation_id=r["conversation_id"], router_p=r["router_p"],
        validator_p=r["validator_p"], confidence=r["confidence"],
        verified=None if r["verified"] is None else bool(r["verified"]),
        teacher_answer=r["teacher_answer"], error=r["error"],
        teacher_input_tokens=r["teacher_input_tokens"], teacher_output_tokens=r["teacher_output_tokens"],
        spot_checked=bool(r["spot_checked"]), created_at=r["created_at"], id=r["id"],
        credited=bool(r["credited"]),
    )


def _loss(r: aiosqlite.Row) -> ModelLoss:
    return ModelLoss(r["old_loss"], r["new_loss"], r["improvement_pct"], r["measured_on"])


def _example(r: aiosqlite.Row) -> TrainingExample:
    return TrainingExample(r["id"], r["query"], r["context"], r["context_key"], r["answer"],
                           r["origin"], r["state"], r["times_trained"])


def _run(r: aiosqlite.Row) -> TrainingRun:
    return TrainingRun(r["id"], r["started_at"], r["finished_at"], r["status"], r["trigger"],
                       r["examples"], r["steps"], r["examples_per_s"], r["device"], r["error"])


def _conversation(r: aiosqlite.Row) -> ConversationSummary:
    title = (r["title"] or "").strip() or " ".join(str(r["first_question"] or "").split())
    return ConversationSummary(int(r["id"]), title, int(r["n"]), float(r["created_at"]), float(r["last_at"]))
