"""Issue #13, what chat TUIs are expected to have: copy, export, past conversations, search,
several-line questions, focus that follows the keys, settings and a theme that last."""

from __future__ import annotations

import json

import pytest

from textual import events
from textual.widgets import Input

from shammah_tui.settings import Settings, default_settings_toml, load_settings
from shammah_tui.store import Store
from shammah_tui.ui import build_app
from shammah_tui.ui.screens.conversations import ConversationsScreen
from shammah_tui.ui.screens.tool_detail import ToolDetailScreen
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.notice_line import NoticeLine
from shammah_tui.ui.widgets.prompt import PromptInput
from shammah_tui.ui.widgets.user_message import UserMessage
from shammah_tui.core.records import Message as StoredMessage
from tests.ui.fakes import FakeEngine, FakeStore
from tests.ui.helpers import ask, make_app, settle


def notices(app, level: str | None = None) -> list[str]:
    return [n.text for n in app.main.query(NoticeLine) if level is None or n.level == level]


def questions(app) -> list[str]:
    return [u.text for u in app.main.query(UserMessage)]


async def test_copy_the_last_answer_a_message_and_a_code_block(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        engine.answers["show code"] = engine.answers["explain KV caching"].__class__(
            query="show code", answer="Like this:\n\n```python\nprint(42)\n```\n\nDone.", source="forward",
            latency_ms=5.0)
        for question in ("capital of France?", "show code"):
            await ask(pilot, question)
            await settle(pilot)
        await app.main.run_slash_line("/copy")
        assert app.clipboard == "Like this:\n\n```python\nprint(42)\n```\n\nDone."
        await app.main.run_slash_line("/copy code")
        assert app.clipboard == "print(42)"

        # From the keyboard: f2 on the input goes to the messages; ↑ moves; c and y copy.
        assert app.main.prompt.has_focus
        await pilot.press("f2")
        await pilot.pause()
        assert app.main.conversation.has_focus
        assert app.main.conversation.selected is list(app.main.query(AnswerView))[-1]
        await pilot.press("y")
        assert app.clipboard == "print(42)"
        await pilot.press("up", "c")
        assert app.clipboard == "show code"
        await pilot.press("up", "c")
        assert app.clipboard == "Paris is the capital of France."
        toasts: list[str] = []
        app.notify = lambda message, **kwargs: toasts.append(str(message))  # type: ignore[method-assign]
        await pilot.press("y")  # no code block in it: the whole answer, and the toast says so
        assert app.clipboard == "Paris is the capital of France."
        assert toasts == ["Copied the whole answer: it has no code block (31 characters)."]
        await pilot.press("i")  # back to the input
        await pilot.pause()
        assert app.main.prompt.has_focus


async def test_export_markdown_and_json_into_the_data_dir(clock, tmp_path):
    engine = FakeEngine(data_dir=tmp_path)
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, "/export")
        await settle(pilot)
        assert "Nothing to export yet: this conversation is empty." in notices(app, "warning")
        for question in ("what is 12 * 7?", "capital of France?"):
            await ask(pilot, question)
            await settle(pilot)
        await ask(pilot, "/export")
        await settle(pilot)
        files = sorted((tmp_path / "exports").glob("conversation-1-*.md"))
        assert len(files) == 1
        text = files[0].read_text()
        assert "## You\n\nwhat is 12 * 7?" in text and "## Shammah · forward\n\nAnswer to: capital of France?" in text
        assert f"Exported 4 messages to {files[0]}" in notices(app, "information")

        target = tmp_path / "out" / "chat.json"
        await ask(pilot, f"/export json {target}")
        await settle(pilot)
        data = json.loads(target.read_text())
        assert data["conversation_id"] == 1
        assert [(m["role"], m["text"]) for m in data["messages"]][:2] == [
            ("user", "what is 12 * 7?"), ("assistant", "Answer to: what is 12 * 7?")]

        await app.main.run_slash_line("/export yaml")
        assert any("/export takes md or json" in n for n in notices(app, "warning"))


async def test_reopen_a_past_conversation_and_undo_a_clear(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, "what is 12 * 7?")
        await settle(pilot)
        first = app.main.session.conversation_id
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert questions(app) == [] and app.main.session.conversation_id != first
        await ask(pilot, "capital of France?")
        await settle(pilot)

        await pilot.press("ctrl+o")
        await settle(pilot, skip=("models", "history"))  # the list waits for a choice
        screen = app.screen
        assert isinstance(screen, ConversationsScreen)
        assert [(r.id, r.title, r.messages) for r in screen.rows] == [
            (2, "capital of France?", 2), (1, "what is 12 * 7?", 2)]
        await pilot.press("down")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.main
        assert app.main.session.conversation_id == first
        assert questions(app) == ["what is 12 * 7?"]
        assert app.main.session.history[0] == ("user", "what is 12 * 7?")
        await ask(pilot, "capital of France?")
        await settle(pilot)
        assert engine.asked[-1][1] == first  # the next question continues it

        # "Undo clear" goes back to the conversation left by the last clear or reopen.
        app.main.action_undo_clear()
        await settle(pilot)
        assert app.main.session.conversation_id == 2 and questions(app) == ["capital of France?"]
        await app.main.run_slash_line("/open 99")
        await settle(pilot)
        assert "There is no conversation #99." in notices(app, "warning")


async def test_store_lists_conversations_with_title_count_and_date(tmp_path):
    store = await Store.open(tmp_path / "shammah.db", clock=iter(range(100, 200)).__next__)
    try:
        a = await store.new_conversation()
        await store.add_message(a, "user", "what is\n2 + 2?")
        await store.add_message(a, "assistant", "4", "template")
        empty = await store.new_conversation()
        named = await store.new_conversation("Units")
        await store.add_message(named, "user", "2 km in m?")
        rows = await store.conversations()
        assert [(r.id, r.title, r.messages) for r in rows] == [(named, "Units", 1), (a, "what is 2 + 2?", 2)]
        assert rows[0].last_at > rows[1].last_at
        assert [r.id for r in await store.conversations(include_empty=True)] == [named, empty, a]
        assert (await store.conversation(empty)).messages == 0
        assert await store.conversation(999) is None
    finally:
        await store.close()


async def test_search_the_conversation(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for question in ("what is 12 * 7?", "capital of France?", "explain KV caching"):
            await ask(pilot, question)
            await settle(pilot)
        await pilot.press("ctrl+f")
        await pilot.press(*"capital")
        await settle(pilot)
        bar = app.main.query_one("#search-bar")
        # The newest match first (the answer), enter goes to the older one (the question).
        assert bar.display and str(bar.query_one("#search-count").render()) == "2 of 2"
        assert app.main.conversation.selected.has_class("-match", "-selected")
        await pilot.press("enter")
        await pilot.pause()
        assert str(bar.query_one("#search-count").render()) == "1 of 2"
        assert app.main.conversation.selected.text == "capital of France?"
        await pilot.press("escape")
        await pilot.pause()
        assert not bar.display and app.main.prompt.has_focus
        assert not app.main.conversation.query(".-match")

        # Up goes to the older match, from the newest; down (and shift+enter) to the newer one.
        await ask(pilot, "capital of France?")
        await settle(pilot)
        await pilot.press("ctrl+f")
        await pilot.press(*"capital")
        await settle(pilot)
        count = bar.query_one("#search-count")
        steps = []
        for key in ("up", "up", "down", "enter", "shift+enter"):
            await pilot.press(key)
            await pilot.pause()
            steps.append(str(count.render()))
        assert steps == ["3 of 4", "2 of 4", "3 of 4", "2 of 4", "3 of 4"]


async def test_several_lines_from_the_keyboard_and_from_a_paste(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        prompt = app.main.query_one(PromptInput)
        prompt.focus()
        await pilot.press("a", "ctrl+j", "b", "shift+enter", "c", "enter")
        await settle(pilot)
        assert engine.asked[-1][0] == "a\nb\nc"
        app.post_message(events.Paste("first line\nsecond line"))  # the terminal's paste
        await pilot.pause()
        assert prompt.value == "first line\nsecond line"
        await pilot.press("enter")
        await settle(pilot)
        assert engine.asked[-1][0] == "first line\nsecond line"
        await pilot.press("up")  # history
        assert prompt.value == "first line\nsecond line"

        # A long paste ending in a newline: counted as the engine counts it ("query is N characters").
        from shammah_tui.core.sanitize import QueryRejected, clean_query

        pasted = "word " * 1922 + "ab\n"  # 9,613 characters, the last a newline
        with pytest.raises(QueryRejected, match="query is 9,612 characters"):
            clean_query(pasted)
        prompt.value = ""
        app.post_message(events.Paste(pasted))
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert str(app.main.query(UserMessage).last().render()).endswith("… (9,612 characters)")


async def test_typing_in_a_pane_goes_to_the_input_and_focus_keys_light_a_ring(engine, clock):
    """Bug 7: after f3 and enter on a tool row, typing a question reaches the input and enter sends it."""
    from shammah_tui.core.events import ToolCalled
    from shammah_tui.core.tool_calls import ToolCallEvent

    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        engine.emit(ToolCalled(ToolCallEvent("t1", "analyze_model", {}, "ok", 0.0, 5.0, "ok", "all good")))
        await settle(pilot)
        ring = {name: app.main.query_one(f"#{name}").styles.border_top[1] for name in ("tool-log", "metrics")}
        await pilot.press("f3")
        await pilot.pause()
        assert app.focused.id == "tool-table"
        assert app.main.query_one("#tool-log").styles.border_top[1] != ring["tool-log"]  # the ring lights up
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ToolDetailScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused.id == "tool-table"
        await pilot.press(*"hi there", "enter")
        await settle(pilot)
        assert app.screen is app.main
        assert engine.asked[-1][0] == "hi there"
        await pilot.press("f4")
        await pilot.pause()
        assert app.focused.id == "metrics"
        assert app.main.query_one("#metrics").styles.border_top[1] != ring["metrics"]
        assert app.main.query_one("#tool-log").styles.border_top[1] == ring["tool-log"]


async def test_settings_and_theme_are_saved_to_settings_toml(clock, tmp_path):
    (tmp_path / "settings.toml").write_text(default_settings_toml())
    engine = FakeEngine(data_dir=tmp_path)
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        toasts: list[str] = []
        app.notify = lambda message, **kwargs: toasts.append(str(message))  # type: ignore[method-assign]
        await settle(pilot)
        await ask(pilot, "/set spot_check_rate 0.25")
        await settle(pilot)
        assert load_settings(tmp_path, environ={}).spot_check_rate == 0.25
        assert engine.settings.spot_check_rate == 0.25 and engine.applied_settings
        assert any("spot_check_rate = 0.25, saved to settings.toml (in effect now)" in n
                   for n in notices(app, "information"))
        await ask(pilot, "/set error_bound 3")
        await settle(pilot)
        # One plain line: no exception class, no file path, the value as typed.
        assert "error_bound not changed: must be in (0, 1) (got 3)" in notices(app, "warning")
        await ask(pilot, "/set tier_order neural, nope")
        await settle(pilot)
        assert ("tier_order not changed: must list distinct tiers from neural, learned, template "
                "(got neural, nope)") in notices(app, "warning")
        await ask(pilot, "/set foo 1")
        await settle(pilot)
        assert notices(app, "warning")[-1].startswith("Unknown setting 'foo'. Settings: spot_check_rate")
        await ask(pilot, "/set batch_size")
        await settle(pilot)
        assert notices(app, "warning")[-1].startswith("/set batch_size takes a value")
        assert load_settings(tmp_path, environ={}).error_bound == Settings().error_bound
        app.edit_setting("auto_train")  # the palette's toggle
        await settle(pilot)
        assert load_settings(tmp_path, environ={}).auto_train is False

        # The palette's editor keeps an invalid value open with its problem, and saves a valid one.
        from shammah_tui.ui.screens.setting_edit import SettingEditScreen

        app.edit_setting("batch_size")
        await settle(pilot)
        assert isinstance(app.screen, SettingEditScreen)
        field = app.screen.query_one(Input)
        field.value = "lots"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SettingEditScreen)
        assert str(app.screen.query_one("#setting-error").render()) == "Not saved: must be an integer (got lots)"
        field.value = "64"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.main and load_settings(tmp_path, environ={}).batch_size == 64

        # The teacher's model can be chosen; the teacher takes it at the next start.
        await ask(pilot, "/set claude_model claude-opus-5")
        await settle(pilot)
        assert load_settings(tmp_path, environ={}).claude_model == "claude-opus-5"
        assert any("claude_model = claude-opus-5, saved to settings.toml (takes effect at the next start)" in n
                   for n in notices(app, "information"))
        assert "# δ: the estimated error rate of local answers is kept under this bound." in (
            tmp_path / "settings.toml").read_text()  # the comments stay

        app.theme = "textual-light"
        await settle(pilot)
        assert load_settings(tmp_path, environ={}).theme == "textual-light"
        assert any("theme = textual-light" in t for t in toasts)

    # The next start has it.
    again = build_app(tmp_path, load_settings(tmp_path, environ={}), load_models=False)
    assert again.theme == "textual-light"
    assert build_app(tmp_path, Settings(theme="no-such-theme"), load_models=False).theme == "textual-dark"


async def test_a_reopened_conversation_shows_its_end_by_ctrl_o_as_by_open(clock):
    store = FakeStore(latest=2)
    for i in range(30):
        store.stored_messages += [StoredMessage(2 * i + 1, 1, "user", f"question {i}", None, None, 0.0),
                                  StoredMessage(2 * i + 2, 1, "assistant", f"answer {i}", "learned", i, 0.0)]
    engine = FakeEngine(store=store)
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        conversation = app.main.conversation
        await app.main.run_slash_line("/open 1")
        await settle(pilot)
        assert conversation.max_scroll_y > 0 and conversation.scroll_y == conversation.max_scroll_y
        await pilot.press("ctrl+l")
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot, skip=("models", "history"))
        await pilot.press("enter")  # the newest is conversation #1 (#2 is empty)
        await settle(pilot)
        assert app.main.session.conversation_id == 1
        assert conversation.max_scroll_y > 0 and conversation.scroll_y == conversation.max_scroll_y
