"""The Claude teacher through the engine: the real anthropic SDK against the loopback Messages API.

Tool turns run the real tools on a real engine; forwarded answers are learned and served locally
the next time; the API key never reaches the data directory; every kind of teacher failure
leaves a clear message and an engine that keeps working.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from shammah_tui.core.ask import Question
from shammah_tui.engine import Engine
from shammah_tui.core.events import Notice, ToolCalled
from shammah_tui.paths import DB_NAME
from shammah_tui.core.text import normalize_query
from shammah_tui.settings import Settings
from shammah_tui import curriculum
from shammah_tui.teachers.claude import SYSTEM_PROMPT_ANSWER, SYSTEM_PROMPT_TEACH, ClaudeTeacher
from tests.fakeapi import FakeMessagesAPI
from tests.datadirs import seed_data_dir

CANARY = "sk-ant-canary-4242"
MODEL = "claude-test-model"
SETTINGS = dataclasses.replace(Settings(teacher="claude", claude_model=MODEL), steps_per_run=6,
                               max_new_tokens=16, spot_check_rate=0.0)
HAMLET = "Who wrote Hamlet?"
HAMLET_ANSWER = "William Shakespeare wrote Hamlet."



def claude(base_url: str) -> ClaudeTeacher:
    return ClaudeTeacher(MODEL, api_key=CANARY, base_url=base_url, max_retries=0, timeout_s=10.0)


async def open_engine(data_dir: Path, models_seed: Path, teacher: ClaudeTeacher) -> Engine:
    engine = await Engine.open(seed_data_dir(data_dir, models_seed), SETTINGS, teacher)
    await engine.load_models()
    return engine


@pytest.fixture
async def engine(tmp_path, models_seed, fake_api: FakeMessagesAPI):
    eng = await open_engine(tmp_path / "data", models_seed, claude(fake_api.base_url))
    try:
        yield eng
    finally:
        await eng.close()


def distinct_pairs(n: int, seed: int, family: str) -> list[dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in curriculum.sample_items(4 * n, seed, families=[family]):
        out.setdefault(normalize_query(item.query), {"query": item.query, "answer": item.answer})
    return list(out.values())[:n]


def last_tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message of a request."""
    content = body["messages"][-1]["content"]
    assert body["messages"][-1]["role"] == "user" and isinstance(content, list)
    return [block for block in content if block.get("type") == "tool_result"]


def hamlet_responder(body: dict[str, Any]) -> str | None:
    last = body["messages"][-1]["content"]
    return HAMLET_ANSWER if isinstance(last, str) and "Hamlet" in last else None


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- (a) a teaching session driven by scripted Claude turns ------------------------------


async def test_scripted_teaching_session_runs_real_tools_and_returns_real_losses(
        engine: Engine, fake_api: FakeMessagesAPI) -> None:
    examples = distinct_pairs(40, 11, "capitals")
    assert len(examples) == 40
    gen_id, = fake_api.enqueue_tool_use([("generate_training_data", {"examples": examples, "topic": "capitals"})],
                                        text_before="Capitals are weakest; teaching them.")
    train_id, = fake_api.enqueue_tool_use([("train", {"wait": True})])
    probe = examples[0]
    query_id, = fake_api.enqueue_tool_use([("query_local_model", {"query": probe["query"]})])
    fake_api.enqueue_text("Taught 40 capitals and trained once; they are now answered locally.")
    events: list[ToolCalled] = []
    engine.subscribe(lambda e: events.append(e) if isinstance(e, ToolCalled) else None)
    text: list[str] = []

    summary = await engine.teach(rounds=1, on_text=text.append)

    assert (summary.stopped_because, summary.tool_calls, summary.iterations) == ("done", 3, 4)
    assert summary.final_text == "Taught 40 capitals and trained once; they are now answered locally."
    assert "Capitals are weakest" in "".join(text)
    assert fake_api.pending == 0 and len(fake_api.requests) == 4
    first = fake_api.requests[0].body
    assert first["model"] == MODEL and first["system"] == SYSTEM_PROMPT_TEACH
    assert sorted(t["name"] for t in first["tools"]) == sorted(engine.tool_registry().names)

    # generate_training_data really queued the examples.
    (gen_result,) = last_tool_results(fake_api.requests[1].body)
    assert gen_result["tool_use_id"] == gen_id and gen_result["is_error"] is False
    assert gen_result["content"].startswith("Queued 40 example(s); rejected 0.")

    # train(wait=true): the result sent back to Claude carries the losses of the run just stored.
    (train_result,) = last_tool_results(fake_api.requests[2].body)
    assert train_result["tool_use_id"] == train_id and train_result["is_error"] is False
    sent = {m: (float(old), float(new)) for m, old, new in
            re.findall(r"^- (\w+): loss ([\d.]+) → ([\d.]+)", train_result["content"], re.MULTILINE)}
    run = await engine.store.last_finished_run()
    assert run is not None and run.trigger == "tool"
    assert set(sent) == set(run.losses) == {"generator", "router", "validator"}
    for model, (old, new) in sent.items():
        assert (old, new) == (round(run.losses[model].old_loss, 4), round(run.losses[model].new_loss, 4))
    con = sqlite3.connect(engine.data_dir / DB_NAME)
    try:
        db_gen = con.execute("SELECT old_loss, new_loss FROM run_losses WHERE run_id = ? AND model = 'generator'",
                             (run.id,)).fetchone()
    finally:
        con.close()
    assert sent["generator"] == (round(db_gen[0], 4), round(db_gen[1], 4))
    assert sent["generator"][1] < sent["generator"][0]

    # query_local_model answered a taught question locally.
    (query_result,) = last_tool_results(fake_api.requests[3].body)
    assert query_result["tool_use_id"] == query_id and query_result["is_error"] is False
    assert query_result["content"].startswith(f"Local answer from learned: {probe['answer']}")

    # Every call is in the log under Claude's tool_use id, and was shown running then ok.
    rows = await engine.store.tool_calls()
    assert [(r.call_id, r.name, r.status) for r in rows] == [
        (gen_id, "generate_training_data", "ok"), (train_id, "train", "ok"), (query_id, "query_local_model", "ok")]
    assert [(e.event.call_id, e.event.status) for e in events] == [
        (gen_id, "running"), (gen_id, "ok"), (train_id, "running"), (train_id, "ok"),
        (query_id, "running"), (query_id, "ok")]


# --- (b) forwarded once, then answered locally --------------------------------------------


async def test_a_forwarded_answer_is_learned_and_served_locally_next_time(
        engine: Engine, fake_api: FakeMessagesAPI) -> None:
    fake_api.responder = hamlet_responder
    streamed: list[str] = []
    first = await engine.ask(Question(HAMLET), on_text=streamed.append)
    assert first.error is None
    assert (first.source, first.answer, first.teacher_answer) == ("forward", HAMLET_ANSWER, HAMLET_ANSWER)
    assert "".join(streamed) == HAMLET_ANSWER and len(streamed) > 1  # streamed in fragments
    assert len(fake_api.requests) == 1
    body = fake_api.requests[0].body
    assert body["system"] == SYSTEM_PROMPT_ANSWER and body["messages"] == [{"role": "user", "content": HAMLET}]

    second = await engine.ask(Question(HAMLET))
    third = await engine.ask(Question("who wrote hamlet"))
    for local in (second, third):
        assert local.error is None and (local.source, local.answer) == ("learned", HAMLET_ANSWER)
        assert local.teacher_answer is None
    assert len(fake_api.requests) == 1  # the teacher was not asked again

    learned = await engine.store.learned_answers()
    assert [(a.query, a.answer, a.origin, a.hits) for a in learned] == [(HAMLET, HAMLET_ANSWER, "forward", 2)]
    assert await engine.store.example_counts() == {"queued": 1, "trained": 0}
    assert [q.source for q in await engine.store.queries()] == ["forward", "learned", "learned"]
    stats = await engine.stats()
    assert stats.by_source["forward"] == 1 and stats.by_source["learned"] == 2
    assert stats.teacher_tokens_used > 0


# --- (c) the key never reaches the data dir ------------------------------------------------


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


async def test_the_api_key_is_written_nowhere_and_shown_nowhere(
        tmp_path, models_seed, fake_api: FakeMessagesAPI) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, models_seed, claude(fake_api.base_url))
    notices: list[str] = []
    engine.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else None)
    errors: list[str] = []
    try:
        # A teaching session (tool calls and a training run are logged) ...
        fake_api.enqueue_tool_use([("generate_training_data", {"examples": distinct_pairs(12, 5, "calendar")})])
        fake_api.enqueue_tool_use([("train", {"wait": True})])
        fake_api.enqueue_text("Done.")
        await engine.teach(rounds=1)
        # ... a forwarded answer (learned, queued, logged) ...
        fake_api.responder = hamlet_responder
        assert (await engine.ask(Question(HAMLET))).source == "forward"
        # ... and failures, one from a server that echoes the key back in its error message.
        fake_api.enqueue_error(401, "authentication_error", "invalid x-api-key")
        fake_api.enqueue_error(500, "api_error", f"internal error while checking key {CANARY}")
        fake_api.enqueue_error(400, "invalid_request_error", f"bad header x-api-key: {CANARY}")
        for question in ("What is the meaning of life?", "Why is the sky blue?", "What is love?"):
            result = await engine.ask(Question(question))
            assert result.error, question
            errors.append(result.error)
        fake_api.enqueue_error(500, "api_error", f"tool turn failed for {CANARY}")
        try:
            await engine.teach(rounds=1)
        except Exception as exc:  # a teaching failure surfaces as one line, without the key
            errors.append(str(exc))
        else:
            pytest.fail("teach should have failed on the 500")

        # The key was really used (the server saw it) ...
        assert any(CANARY in v for v in fake_api.requests[0].headers.values())
        # ... but no file of the data dir holds it: not the database, its WAL, settings or models.
        names = {p.name for p in data.rglob("*") if p.is_file()}
        assert {DB_NAME, f"{DB_NAME}-wal", "settings.toml"} <= names, names
        assert (data / f"{DB_NAME}-wal").stat().st_size > 0
        assert files_holding(data, CANARY.encode()) == []
        assert files_holding(data, b"canary-4242") == []
    finally:
        await engine.close()
    assert files_holding(data, CANARY.encode()) == []  # nor after the WAL is checkpointed on close

    assert len(errors) == 4
    assert "rejected the API key (401)" in errors[0]
    assert "[redacted]" in errors[1] and "[redacted]" in errors[2] and "[redacted]" in errors[3]
    for text in errors + notices:
        assert CANARY not in text and "canary-4242" not in text, text
    stored = [q.error for q in await _queries(data) if q.error]
    assert len(stored) == 3 and all("[redacted]" in e or "401" in e for e in stored)


async def _queries(data: Path):
    from shammah_tui.store import Store

    store = await Store.open(data / DB_NAME)
    try:
        return await store.queries()
    finally:
        await store.close()


# --- (d) every failure: a clear message, nothing learned, the engine goes on -------------


def refused(api: FakeMessagesAPI) -> None:
    """Point nothing at the server: the engine's teacher uses a closed port (see the test)."""


ERRORS = {
    "401": (lambda api: api.enqueue_error(401, "authentication_error", "invalid x-api-key"),
            "Claude rejected the API key (401). Check ANTHROPIC_API_KEY."),
    "429": (lambda api: api.enqueue_error(429, "rate_limit_error", "Number of requests exceeded",
                                          {"retry-after": "7"}),
            "Claude's rate limit was reached (429); retry after 7 s."),
    "500": (lambda api: api.enqueue_error(500, "api_error", "Internal server error"),
            "Claude had a server error (500): Internal server error."),
    "529": (lambda api: api.enqueue_error(529, "overloaded_error", "Overloaded"),
            "Claude is overloaded (529); try again in a moment."),
    "cut-stream": (lambda api: api.enqueue_cut_stream("William Shakespeare wr"),
                   "The connection to Claude dropped mid-answer (RemoteProtocolError); "
                   "the partial answer was discarded."),
    "refused": (refused, "Could not connect to Claude at http://127.0.0.1:{port}"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
async def test_teacher_failures_give_a_clear_error_and_the_engine_keeps_working(
        kind: str, tmp_path, models_seed, fake_api: FakeMessagesAPI) -> None:
    script, expected = ERRORS[kind]
    port = closed_port()
    base_url = f"http://127.0.0.1:{port}" if kind == "refused" else fake_api.base_url
    engine = await open_engine(tmp_path / "data", models_seed, claude(base_url))
    notices: list[Notice] = []
    engine.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
    try:
        script(fake_api)
        streamed: list[str] = []
        result = await engine.ask(Question(HAMLET), on_text=streamed.append)

        assert result.error is not None and result.error.startswith(expected.format(port=port)), result.error
        assert "\n" not in result.error and CANARY not in result.error
        assert (result.answer, result.source, result.teacher_answer) == (None, None, None)
        assert notices == []  # reported once: in the result, not again as a notice
        if kind == "cut-stream":
            assert "".join(streamed).startswith("William")  # the partial text was shown, not kept
        # Nothing learned, nothing queued; the failure is in the query log.
        assert await engine.store.learned_answers() == [] and len(engine.local.index) == 0
        assert await engine.store.example_counts() == {"queued": 0, "trained": 0}
        (logged,) = await engine.store.queries()
        assert (logged.query, logged.source, logged.answer, logged.error) == (HAMLET, None, None, result.error)

        # The engine keeps working: exact local answers need no teacher ...
        local = await engine.ask(Question("what is 2+3"))
        assert (local.error, local.source, local.answer) == (None, "template", "5")
        if kind == "refused":
            again = await engine.ask(Question(HAMLET))  # still unreachable: the same clear error, no crash
            assert again.error is not None and again.error.startswith(expected.format(port=port))
        else:
            # ... and the next forward, once the API answers again, is learned as usual.
            fake_api.responder = hamlet_responder
            again = await engine.ask(Question(HAMLET))
            assert (again.error, again.source, again.answer) == (None, "forward", HAMLET_ANSWER)
            assert [a.answer for a in await engine.store.learned_answers()] == [HAMLET_ANSWER]
            assert len(fake_api.requests) == 2
    finally:
        await engine.close()
