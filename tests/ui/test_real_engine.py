"""The app on the real Engine and Store (tmp data dir, scripted teacher, models never loaded)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from shammah_tui.settings import Settings
from shammah_tui.core.records import QueryRecord
from shammah_tui.store import Store
from shammah_tui.core.teaching import TeachSummary, TeacherReply, Turn
from shammah_tui.teachers.base import Teacher, TeachRequest
from shammah_tui.ui import build_app
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.user_message import UserMessage
from tests.ui.helpers import ask, settle


class ScriptedTeacher(Teacher):
    """Never called in these tests (nothing is asked); only labels the header."""

    kind = "offline"

    def __init__(self) -> None:
        self.closed = False

    @property
    def label(self) -> str:
        return "scripted teacher"

    async def answer(self, query: str, history: Sequence[Turn] = (), on_text=None) -> TeacherReply:
        return TeacherReply(f"answer to {query}")

    async def teach(self, tools, request: TeachRequest, on_text=None) -> TeachSummary:
        return TeachSummary()

    async def close(self) -> None:
        self.closed = True


async def seed_store(data_dir: Path) -> None:
    """An earlier session, written through the store's own API (closed before the app opens it)."""
    store = await Store.open(data_dir / "shammah.db")
    try:
        conversation = await store.new_conversation()
        await store.add_message(conversation, "user", "what is 3 + 4?")
        query_id = await store.log_query(QueryRecord("what is 3 + 4?", "template", "3 + 4 = 7", 0.3))
        await store.add_message(conversation, "assistant", "3 + 4 = **7**", "template", query_id)
        await store.record_tool_call(call_id="toolu_1", name="compare_responses",
                                     input={"query": "what is 3 + 4?"}, status="ok", duration_ms=12.0,
                                     summary="agree (score 1.00)", result_text="verdict: agree")
    finally:
        await store.close()


async def test_real_engine_restores_the_last_session(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    await seed_store(data_dir)
    teacher = ScriptedTeacher()
    app = build_app(data_dir, Settings(), teacher, load_models=False, resume_last=True)
    app.animation_level = "none"
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.engine is not None and not app.engine.models_ready
        assert app.main.header.teacher == "scripted teacher"
        assert [u.text for u in app.main.query(UserMessage)] == ["what is 3 + 4?"]
        assert [v.state for v in app.main.query(AnswerView)] == ["template"]
        assert app.main.metrics.all_time_counts["template"] == 1
        assert [c.name for c in app.main.tool_log.calls] == ["compare_responses"]
        assert app.main.session.history == [("user", "what is 3 + 4?"), ("assistant", "3 + 4 = **7**")]
        # engine.stats() from the real store reaches the metrics pane.
        assert "0 queued · a run starts at 32" in str(app.main.query_one("#stat-queue").render())
        await ask(pilot, "/find Rome")
    assert teacher.closed  # engine.close() ran on the way out
    assert "torch" not in sys.modules or app.engine.models is None

    # A plain start opens a new conversation; ↑ in the input still recalls the last session's line.
    app = build_app(data_dir, Settings(), ScriptedTeacher(), load_models=False)
    app.animation_level = "none"
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert not app.main.query(UserMessage) and app.main.session.history == []
        app.main.prompt.focus()
        await pilot.press("up")
        assert app.main.prompt.value == "/find Rome"


async def test_unusable_data_dir_exits_1_with_one_line(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    teacher = ScriptedTeacher()
    app = build_app(not_a_dir, Settings(), teacher, load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert app.return_code == 1
    assert teacher.closed
    said = app.exit_reason or ""  # run_tui prints it as `shammah-tui: <reason>` to stderr
    assert said.startswith("cannot use data dir") and said.endswith("File exists")
    assert "\n" not in said


async def test_the_tui_serves_the_messages_api_and_its_answers_show_in_the_panes(tmp_path):
    """`shammah-tui --serve`: the server runs on the app's loop over its engine, so a client's
    question is answered (here by a template) and counted in the metrics pane like a typed one."""
    from anthropic import AsyncAnthropic

    data_dir = tmp_path / "data"
    app = build_app(data_dir, Settings(teacher="offline", spot_check_rate=0.0), ScriptedTeacher(),
                    load_models=False, serve_port=0)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if app._server is not None:
                break
        server = app._server
        assert server is not None and server.url.startswith("http://127.0.0.1:")
        client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
        try:
            reply = await client.messages.with_raw_response.create(
                model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "What is 6 * 7?"}])
        finally:
            await client.close()
        assert reply.headers["shammah-source"] == "template"
        assert (await reply.parse()).content[0].text.endswith("42")
        await settle(pilot)
        assert app.main.metrics.session_counts["template"] == 1
        assert any("Serving the Messages API at" in str(n.render()) for n in app.main.query("NoticeLine"))
        await app.stop_serving()
        assert app._server is None
