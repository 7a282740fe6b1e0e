"""The session controller on the scripted engine, without an app: what it posts, what it keeps."""

from __future__ import annotations

import asyncio
import json

import pytest
from textual.message import Message

from shammah_tui.core.events import AskResult
from shammah_tui.settings import default_settings_toml, load_settings
from shammah_tui.core.records import Message as StoredMessage
from shammah_tui.ui import messages as msg
from shammah_tui.ui.session import ORPHAN_FLUSHES, STATS_MIN_INTERVAL, Session
from shammah_tui.ui.widgets.answer import AnswerView
from tests.ui.conftest import FixedClock
from tests.ui.fakes import FakeEngine, FakeStore


class Posted:
    """Collects what the session posts (to the screen, or to one answer)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> bool:
        self.messages.append(message)
        return True

    def of(self, kind: type) -> list:
        return [m for m in self.messages if isinstance(m, kind)]


class TaskJob:
    """A background job as an asyncio task (the app uses Textual workers)."""

    def __init__(self, work) -> None:
        self.task = asyncio.ensure_future(work)

    @property
    def is_finished(self) -> bool:
        return self.task.done()

    def cancel(self) -> None:
        self.task.cancel()


def make_session(engine: FakeEngine | None = None, *, clock: FixedClock | None = None,
                 data_dir=None) -> tuple[Session, FakeEngine, Posted]:
    engine = engine or FakeEngine()
    screen = Posted()
    session = Session(clock=clock or FixedClock(), post=screen, data_dir=data_dir,
                      run=lambda work, group: TaskJob(work))
    session.attach(engine)
    return session, engine, screen


async def test_ask_streams_settles_and_keeps_the_context():
    session, engine, screen = make_session()
    session.show_conversation(4, [StoredMessage(1, 4, "user", "hi", None, None, 0.0),
                                  StoredMessage(2, 4, "notice", "a notice", None, None, 0.0)])
    reply = Posted()
    await session.ask("explain KV caching", reply)

    assert engine.asked == [("explain KV caching", 4, [("user", "hi")])]
    assert "".join(f.text for f in reply.of(AnswerView.Fragment)) == "Answer to: explain KV caching"
    settled = reply.of(AnswerView.Settled)
    assert [s.state for s in settled] == ["forward"]
    (finished,) = screen.of(msg.AskFinished)
    assert finished.result is not None and finished.result.query_id == 1

    session.asking = True
    session.answered(finished.result)
    assert not session.asking
    assert session.history[-2:] == [("user", "explain KV caching"), ("assistant", "Answer to: explain KV caching")]


async def test_a_failed_answer_is_not_context_and_an_engine_error_is_one_line():
    engine = FakeEngine(answers={"hello?": AskResult(query="hello?", error="the teacher is down")})
    session, engine, screen = make_session(engine)
    await session.ask("hello?", Posted())
    session.answered(screen.of(msg.AskFinished)[0].result)
    assert session.history == []

    async def broken(*args, **kwargs):
        raise RuntimeError("boom\nwith a second line")

    engine.ask = broken  # type: ignore[method-assign]
    reply = Posted()
    await session.ask("anything", reply)
    (settled,) = reply.of(AnswerView.Settled)
    assert settled.state == "error" and settled.error and "\n" not in settled.error


async def test_a_cancelled_answer_says_so():
    session, engine, screen = make_session()
    engine.ask_gate = asyncio.Event()
    reply = Posted()
    task = asyncio.ensure_future(session.ask("capital of France?", reply))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [s.state for s in reply.of(AnswerView.Settled)] == ["cancelled"]
    assert screen.of(msg.AskFinished)[0].result is None


async def test_esc_cancels_the_answer_then_teaching_then_the_run():
    session, engine, screen = make_session()
    engine.ask_gate, engine.teach_gate, engine.train_gate = asyncio.Event(), asyncio.Event(), asyncio.Event()
    session.start_ask("capital of France?", Posted())
    session.start_teaching("units", Posted())
    assert session.start_training()
    await asyncio.sleep(0.01)
    assert session.asking and session.teaching and engine.training

    assert session.cancel() == "answer"
    await asyncio.sleep(0.01)
    session.answered(screen.of(msg.AskFinished)[0].result)
    assert session.cancel() == "teaching" and session.teach_stopping
    await asyncio.sleep(0.01)
    assert not session.teaching and screen.of(msg.TeachFinished)[0].stopped
    assert session.cancel() == "training" and engine.cancelled_training
    await asyncio.sleep(0.01)
    assert session.cancel() == ""


async def test_restore_starts_a_new_conversation_unless_resumed():
    def with_history() -> FakeStore:
        store = FakeStore(latest=3)
        store.stored_messages = [StoredMessage(1, 2, "user", "two", None, None, 0.0),
                                 StoredMessage(2, 3, "user", "three", None, None, 0.0)]
        return store

    # Default (`shammah-tui`): a new conversation, as `claude` starts one.
    session, engine, screen = make_session(FakeEngine(store=with_history()))
    await session.restore()
    (restored,) = screen.of(msg.SessionRestored)
    assert restored.conversation_id == session.conversation_id == 4 and restored.messages == []
    assert session.stats_dirty
    # ...reusing the last start's conversation while it is still empty.
    await session.restore()
    assert screen.of(msg.SessionRestored)[1].conversation_id == 4 and engine.store.conversations_made == 1

    # `--continue`: the conversation open at the last quit, else the newest.
    store = with_history()
    store.values["ui.open_conversation"] = "2"
    session, engine, screen = make_session(FakeEngine(store=store))
    await session.restore(resume=True)
    (restored,) = screen.of(msg.SessionRestored)
    assert restored.conversation_id == session.conversation_id == 2
    assert [m.text for m in restored.messages] == ["two"] and session.history == [("user", "two")]
    session, engine, screen = make_session(FakeEngine(store=with_history()))
    await session.restore(resume=True)
    assert screen.of(msg.SessionRestored)[0].conversation_id == 3

    session, engine, screen = make_session()
    await session.restore(resume=True)
    assert screen.of(msg.SessionRestored)[0].conversation_id == 1 and engine.store.conversations_made == 1


async def test_save_keeps_the_open_conversation_and_the_input_lines_for_the_next_start():
    session, engine, screen = make_session(FakeEngine(store=FakeStore(latest=3)))
    await session.restore()
    for line in ("first", "/stats", "/stats", "second"):
        session.remember_input(line)
    await session.save()
    assert engine.store.values["ui.open_conversation"] == str(session.conversation_id)

    again = Session(clock=FixedClock(), post=screen, run=lambda work, group: TaskJob(work))
    again.attach(engine)
    await again.restore(resume=True)
    restored = screen.of(msg.SessionRestored)[-1]
    assert restored.conversation_id == session.conversation_id
    assert restored.inputs == again.inputs == ["first", "/stats", "second"]


async def test_a_question_asked_while_the_store_is_read_is_stored_in_the_conversation():
    store = FakeStore(latest=3)
    store.read_gate = asyncio.Event()
    session, engine, screen = make_session(FakeEngine(store=store))
    restoring = asyncio.ensure_future(session.restore(resume=True))
    await asyncio.sleep(0)
    session.start_ask("asked early", Posted())
    await asyncio.sleep(0.01)
    store.read_gate.set()
    await restoring
    await session._ask_job.task  # type: ignore[union-attr]
    assert engine.asked[0][1] == 3
    assert [(m.conversation_id, m.text) for m in store.stored_messages] == [(3, "asked early"),
                                                                           (3, "Answer to: asked early")]


async def test_teaching_reports_its_turns_and_a_stop():
    session, engine, screen = make_session()
    reply = Posted()
    await session.teach("arithmetic", reply)
    assert engine.teach_calls == ["arithmetic"]
    (finished,) = screen.of(msg.TeachFinished)
    assert finished.summary.startswith("2 turns · 1 tool call")
    assert reply.of(AnswerView.Settled)[0].meta == finished.summary

    engine.teach_gate = asyncio.Event()
    session, _, screen = make_session(engine)
    task = asyncio.ensure_future(session.teach(None, Posted()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert screen.of(msg.TeachFinished)[0].stopped


async def test_training_starts_once_and_cancels():
    session, engine, _ = make_session()
    engine.train_gate = asyncio.Event()
    assert session.start_training()
    await asyncio.sleep(0)
    assert not session.start_training()  # one run at a time
    assert engine.train_calls == ["manual"]
    assert session.cancel_training() and engine.cancelled_training
    await asyncio.sleep(0.01)
    assert not session.cancel_training()


def test_a_run_the_engine_no_longer_has_is_ended_after_some_flushes():
    session, engine, _ = make_session()
    results = [session.run_orphaned(True) for _ in range(ORPHAN_FLUSHES)]
    assert results == [False] * (ORPHAN_FLUSHES - 1) + [True]
    assert not session.run_orphaned(False)


async def test_tool_calls_and_stats_answers():
    session, engine, screen = make_session()
    engine.tool_results["analyze_model"] = "generator: fine"
    reply = Posted()
    await session.call_tool("analyze_model", {}, reply)
    assert reply.of(AnswerView.Settled)[0].text == "generator: fine"

    engine.registry_error = RuntimeError("models still loading")
    reply = Posted()
    await session.call_tool("analyze_model", {}, reply)
    assert "not available yet" in (reply.of(AnswerView.Settled)[0].error or "")

    reply = Posted()
    await session.stats_answer(reply)
    assert screen.of(msg.StatsFetched) and reply.of(AnswerView.Settled)[0].state == "tool"


async def test_stats_are_read_when_changed_and_not_too_often():
    clock = FixedClock()
    session, engine, screen = make_session(clock=clock)
    assert not session.stats_due()  # nothing changed
    session.stats_dirty = True
    assert session.stats_due()
    session.stats_dirty = True
    assert not session.stats_due()  # a read is going
    await session.fetch_stats()
    assert not session.stats_due()  # too soon
    clock.now += STATS_MIN_INTERVAL
    assert session.stats_due()
    await session.fetch_stats()
    assert len(screen.of(msg.StatsFetched)) == 2


async def test_export_writes_the_conversation(tmp_path):
    session, engine, screen = make_session(data_dir=tmp_path)
    session.show_conversation(1, [])
    await session.export("json")
    assert screen.of(msg.Exported)[0].path is None  # nothing to export yet

    await engine.store.add_message(1, "user", "what is 2 + 2?")
    await engine.store.add_message(1, "assistant", "4", "template", 1)
    await session.export("json")
    exported = screen.of(msg.Exported)[-1]
    assert exported.path is not None and exported.path.parent == tmp_path / "exports" and exported.count == 2
    assert "what is 2 + 2?" in json.dumps(json.loads(exported.path.read_text()))


async def test_switching_conversations_remembers_the_one_left():
    session, engine, screen = make_session(FakeEngine(store=FakeStore(latest=2)))
    session.show_conversation(2, [])
    assert await session.new_conversation() == 2
    assert session.conversation_id == 3 and session.left_conversation == 2 and session.history == []

    await session.load_conversation(9)
    assert "no conversation #9" in str(screen.messages[-1].events[0])  # type: ignore[attr-defined]
    await session.load_conversation(2)
    loaded = screen.of(msg.ConversationLoaded)[0]
    session.reopened(loaded.conversation_id, loaded.messages)
    assert session.conversation_id == 2 and session.left_conversation == 3


async def test_a_setting_is_saved_and_applied(tmp_path):
    (tmp_path / "settings.toml").write_text(default_settings_toml())
    session, engine, screen = make_session(data_dir=tmp_path)
    assert session.parse_set("spot_check_rate 0.25") == ("spot_check_rate", "0.25")
    assert "Settings:" in str(session.parse_set("nonsense 1"))
    assert str(session.parse_set("nonsense 1")).startswith("Unknown setting 'nonsense'")
    assert str(session.parse_set("batch_size")).startswith("/set batch_size takes a value")

    await session.change_setting("spot_check_rate", "0.25")
    (changed,) = screen.of(msg.SettingChanged)
    assert changed.applied and changed.value == 0.25 and engine.settings.spot_check_rate == 0.25
    assert load_settings(tmp_path, environ={}).spot_check_rate == 0.25

    await session.change_setting("spot_check_rate", "lots")
    assert screen.of(msg.SettingChanged)[-1].error

    session, engine, screen = make_session(data_dir=None)
    engine.data_dir = None
    session.data_dir = None
    await session.change_setting("auto_train", False)
    assert screen.of(msg.SettingChanged)[0].error == "no data directory to save settings in"


def test_the_settings_list_indents_each_description_under_its_setting():
    from shammah_tui.settings import Settings
    from shammah_tui.ui.editable_settings import DESCRIPTION_WIDTH, EDITABLE, settings_text

    lines = settings_text(Settings()).splitlines()
    described = [line for line in lines if line.startswith("    ")]
    assert described and all(len(line) <= DESCRIPTION_WIDTH + 4 for line in described)
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == list(EDITABLE)
    assert "tier_order" in EDITABLE and "claude_model" in EDITABLE
    # The order the description gives is the default one.
    assert "template, learned, neural" in EDITABLE["tier_order"]
    assert Settings().tier_order == ("template", "learned", "neural")
