"""The store against a real SQLite file: round trips, migrations, transactions."""

from __future__ import annotations

import sqlite3

import pytest

from shammah_tui.core.kinds import SOURCES
from shammah_tui.core.records import Label, LossPoint, ModelLoss, QueryRecord
from shammah_tui.store import Store, StoreError
from shammah_tui.store.migrations import LATEST_VERSION, MIGRATIONS


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


async def open_store(tmp_path) -> Store:
    return await Store.open(tmp_path / "s.db", clock=Clock())


async def test_fresh_database_is_migrated_to_latest(tmp_path):
    store = await open_store(tmp_path)
    assert await store.schema_version() == LATEST_VERSION
    assert await store.integrity_ok()
    mode = (await store._fetchone("PRAGMA journal_mode"))[0]
    assert mode == "wal"
    await store.close()


@pytest.mark.parametrize("version", [m.version for m in MIGRATIONS[:-1]])
async def test_migrates_from_each_earlier_version(tmp_path, version):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at REAL NOT NULL)")
    for m in MIGRATIONS[:version]:
        conn.executescript(m.sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (m.version, m.name))
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO query_log (query, source, answer, latency_ms, created_at)"
                 " VALUES ('old', 'forward', 'kept', 1.0, 0)")
    conn.commit()
    conn.close()
    store = await Store.open(path)
    assert await store.schema_version() == LATEST_VERSION
    rows = await store.queries()
    assert [r.answer for r in rows] == ["kept"]
    assert rows[0].teacher_input_tokens == 0  # a column a later migration added
    await store.close()


async def test_newer_schema_is_refused_clearly(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer Shammah"):
        await Store.open(path)


async def test_garbage_file_is_refused_clearly(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot"):
        await Store.open(path)


async def test_learn_stores_answer_example_and_log_in_one_transaction(tmp_path):
    store = await open_store(tmp_path)
    learned_id, example_id, log_id = await store.learn(
        query="What is 2+2?", norm_query="what is 2+2", context="", context_key="", answer="4",
        origin="forward", log=QueryRecord("What is 2+2?", "forward", "4", 12.5))
    assert learned_id and example_id and log_id
    assert (await store.example_counts()) == {"queued": 1, "trained": 0}
    [row] = await store.learned_answers()
    assert (row.norm_query, row.answer) == ("what is 2+2", "4")
    # The same question again replaces the answer instead of duplicating it.
    again, _, _ = await store.learn(query="what is 2+2", norm_query="what is 2+2", context="",
                                    context_key="", answer="four", origin="forward")
    assert again == learned_id and [r.answer for r in await store.learned_answers()] == ["four"]
    await store.close()


async def test_failed_transaction_leaves_nothing(tmp_path):
    store = await open_store(tmp_path)
    with pytest.raises(RuntimeError):
        async with store.transaction() as db:
            await db.execute("INSERT INTO conversations (title, created_at) VALUES ('x', 0)")
            raise RuntimeError("boom")
    assert await store.latest_conversation() is None
    await store.close()


async def test_runs_losses_points_and_trained_examples(tmp_path):
    store = await open_store(tmp_path)
    await store.learn_many([{"query": f"q{i}", "norm_query": f"q{i}", "context": "", "context_key": "",
                             "answer": f"a{i}"} for i in range(3)], "tool")
    queued = await store.examples("queued")
    run_id = await store.start_run("manual", "cpu")
    await store.add_loss_points([LossPoint(run_id, "generator", s, 5.0 - s) for s in range(1, 4)])
    await store.finish_run(run_id, status="done", examples=96, steps=3, examples_per_s=100.0,
                           losses={"generator": ModelLoss(5.0, 2.0, 60.0)},
                           trained_ids=[e.id for e in queued[:2]])
    assert await store.example_counts() == {"queued": 1, "trained": 2}
    last = await store.last_finished_run()
    assert last.losses["generator"].improvement_pct == 60.0
    assert [p.loss for p in await store.loss_history("generator")] == [4.0, 3.0, 2.0]
    assert await store.run_count() == 1
    await store.close()


async def test_stale_running_run_is_marked_failed(tmp_path):
    store = await open_store(tmp_path)
    await store.start_run("auto", "cpu")
    assert await store.close_stale_runs() == 1
    assert (await store.runs())[0].status == "failed"
    await store.close()


async def test_messages_labels_tool_calls_and_values_round_trip(tmp_path):
    store = await open_store(tmp_path)
    conv = await store.new_conversation("t")
    await store.add_message(conv, "user", "hi")
    await store.add_message(conv, "assistant", "hello", "template")
    assert [(m.role, m.text, m.source) for m in await store.messages(conv)] == [
        ("user", "hi", None), ("assistant", "hello", "template")]
    await store.add_labels([Label("q", "a", "neural", 1, "self_eval", features=[0.9, 1.0, 0.0])])
    [label] = await store.labels()
    assert label.features == [0.9, 1.0, 0.0] and label.label == 1
    await store.record_tool_call(call_id="c1", name="train", input={"wait": True}, status="ok",
                                 duration_ms=5.0, summary="s", result_text="r")
    [call] = await store.tool_calls()
    assert call.input == {"wait": True}
    await store.set_value("k", "v1")
    await store.set_value("k", "v2")
    assert await store.get_value("k") == "v2"
    await store.close()


async def test_source_counts_and_spot_checks(tmp_path):
    store = await open_store(tmp_path)
    for source, verified, checked in [("neural", True, True), ("learned", False, True),
                                      ("template", None, False), ("forward", None, False)]:
        await store.log_query(QueryRecord("q", source, "a", 1.0, verified=verified, spot_checked=checked))
    assert await store.source_counts() == {"neural": 1, "learned": 1, "template": 1, "forward": 1}
    assert await store.spot_check_counts() == (2, 1)
    assert await store.spot_check_counts_by_source() == {"neural": (1, 1), "learned": (1, 0)}
    assert await store.recent_sources(2) == ["template", "forward"]
    await store.close()


async def test_quotes_and_sql_in_text_are_data(tmp_path):
    store = await open_store(tmp_path)
    nasty = "'); DROP TABLE query_log; --"
    await store.log_query(QueryRecord(nasty, "forward", nasty, 1.0))
    assert (await store.queries())[0].query == nasty
    await store.close()


async def test_sources_are_checked_in_code_not_by_the_schema(tmp_path):
    """Every known source is logged; an unknown one is refused before it reaches the table (adding
    a source is a registry row, not a table rebuild)."""
    store = await open_store(tmp_path)
    for source in SOURCES:
        await store.log_query(QueryRecord("q", source, "a", 1.0))
    with pytest.raises(ValueError, match="unknown answer source 'oracle'"):
        await store.log_query(QueryRecord("q", "oracle", "a", 1.0))  # type: ignore[arg-type]
    assert len(await store.queries()) == len(SOURCES)
    schema = (await store._fetchone("SELECT sql FROM sqlite_master WHERE name = 'query_log'"))[0]
    assert "CHECK" not in schema
    await store.close()
