"""Pilot tests for the key flows: ask, slash commands, train, cancel, teach, help, tool detail."""

from __future__ import annotations

import asyncio
import threading

from textual.message import Message
from textual.widgets import Markdown

from shammah_tui.core.events import TrainingFinished, TrainingStarted, TrainingStep
from shammah_tui.core.records import Message as StoredMessage
from shammah_tui.core.runs import StepEvent
from shammah_tui.ui import messages as msg
from shammah_tui.ui.screens.help import HelpScreen
from shammah_tui.ui.screens.tool_detail import ToolDetailScreen
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.conversation import MAX_ITEMS, message_text
from shammah_tui.ui.widgets.loss_chart import LossChart
from shammah_tui.ui.widgets.notice_line import NoticeLine
from shammah_tui.ui.widgets.user_message import UserMessage
from tests.ui.fakes import FakeEngine
from tests.ui.helpers import ask, badge_line, make_app, settle


def notices(app, level: str | None = None) -> list[str]:
    return [n.text for n in app.main.query(NoticeLine) if level is None or n.level == level]


def answers(app) -> list[AnswerView]:
    return list(app.main.query(AnswerView))


async def test_asking_streams_labelled_answers_and_reports_failures(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await ask(pilot, "explain KV caching")
        await settle(pilot)
        view = answers(app)[-1]
        assert view.state == "forward" and view.has_class("-forward")
        assert view.text == engine.answers["explain KV caching"].answer  # streamed in fragments
        assert "840 ms" in badge_line(view)

        for question in ("capital of France?", "what is 12 * 7?", "reverse the word stone"):
            await ask(pilot, question)
            await settle(pilot)
        assert [v.state for v in answers(app)] == ["forward", "learned", "template", "neural"]
        assert "✓ verified" in badge_line(answers(app)[1])
        assert "✗ teacher disagreed" in badge_line(answers(app)[3])
        assert dict(app.main.metrics.session_counts) == {"forward": 1, "learned": 1, "template": 1, "neural": 1}
        # The engine got the conversation so far as context, in this conversation.
        _, conversation_id, history = engine.asked[1]
        assert conversation_id == app.main.session.conversation_id is not None
        assert history == [("user", "explain KV caching"),
                           ("assistant", engine.answers["explain KV caching"].answer)]

        # A background spot check's verdict lands on its answer later.
        from shammah_tui.core.events import QueryVerified

        neural = answers(app)[3]
        assert neural.query_id == 4
        engine.emit(QueryVerified(4, True, "enots"))
        await settle(pilot)
        assert "✓ verified" in badge_line(neural)
        assert "disagreed" not in badge_line(neural)

        # A teacher failure: one clear line in the answer, the engine's Notice not shown twice.
        await ask(pilot, "hello?")
        await settle(pilot)
        view = answers(app)[-1]
        assert view.state == "error"
        assert "rejected the API key" in view.error
        assert notices(app, "error") == []
        assert len(app.main.session.history) == 8  # failed answers are not context

        # Pasted junk is shown without escape sequences, and shortened.
        await ask(pilot, "\x1b[31mred\x1b[0m " + "x" * 50_000)
        await settle(pilot)
        text = str(app.main.query(UserMessage).last().render())
        assert "\x1b" not in text and text.startswith("› red x")
        assert "50,004 characters" in text  # counted as asked: without the escape sequences

        # An unexpected engine exception becomes one line, never a traceback.
        async def broken_ask(*args, **kwargs):
            raise RuntimeError("database is locked\nTraceback (most recent call last): ...")

        engine.ask = broken_ask  # type: ignore[method-assign]
        await ask(pilot, "anything")
        await settle(pilot)
        error = answers(app)[-1].error
        assert "RuntimeError: database is locked" in error and "Traceback" not in error


async def test_escape_cancels_the_answer_in_flight(engine, clock):
    engine.ask_gate = asyncio.Event()
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await ask(pilot, "capital of France?")
        await pilot.pause()
        await ask(pilot, "second question")  # refused while the first is in flight
        assert len(engine.asked) == 1
        assert any("Still answering" in text for text in notices(app, "warning"))
        assert app.main.prompt.value == "second question"  # kept, to send again
        await pilot.press("escape")
        await settle(pilot)
        assert answers(app)[-1].state == "cancelled"
        engine.ask_gate.set()
        await settle(pilot)


async def test_a_quick_answer_shows_with_its_question_and_a_slow_one_shows_thinking_first(engine, clock):
    from shammah_tui.ui.screens.main import SHOW_PENDING_AFTER_S

    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        conversation = app.main.conversation
        # Every frame written to the terminal: is the question on screen, is its answer on screen
        # and settled, is the prompt empty.
        frames: list[tuple[bool, bool, bool]] = []
        display = app._display

        def watch(screen, update) -> None:
            display(screen, update)
            visible = screen._compositor.visible_widgets
            shown = [w for w in conversation.items if w in visible]
            frames.append((any(isinstance(w, UserMessage) for w in shown),
                           any(isinstance(w, AnswerView) and w.state != "pending" for w in shown),
                           app.main.prompt.value == ""))

        # "Quick" is decided by which comes first, the answer or the pending timer: a long timer
        # makes this answer quick however busy the machine is.
        app.main.show_pending_after_s = 30.0
        # Typed first, then watched: frames drawn while the prompt took focus, still empty, tell nothing.
        app.main.prompt.focus()
        app.main.prompt.value = "capital of France?"
        await pilot.pause()
        app._display = watch  # type: ignore[method-assign]
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot)
        kinds = [type(w).__name__ for w in conversation.items]
        assert kinds == ["UserMessage", "AnswerView"] and answers(app)[0].state == "learned"
        # The first frame with the question has its settled answer too, and the typed text gone.
        first = next(frame for frame in frames if frame[0])
        assert first == (True, True, True)
        assert not any(prompt_empty for _, _, prompt_empty in frames[:frames.index(first)])
        assert not answers(app)[0].children  # a plain answer is one widget

        app.main.show_pending_after_s = SHOW_PENDING_AFTER_S
        engine.ask_gate = asyncio.Event()
        await ask(pilot, "what is 12 * 7?")
        for _ in range(200):  # the pending answer shows once SHOW_PENDING_AFTER_S has passed
            await pilot.pause(SHOW_PENDING_AFTER_S / 2)
            if len(answers(app)) == 2:
                break
        pending = answers(app)[-1]
        assert pending.state == "pending" and "thinking" in badge_line(pending)
        assert isinstance(conversation.items[-2], UserMessage)
        engine.ask_gate.set()
        await settle(pilot)
        assert answers(app)[-1] is pending and pending.state == "template"
        assert len(conversation.items) == 4
        assert pending.text == "12 × 7 = **84**" and pending.query_children(Markdown)  # drawn as Markdown


async def test_a_long_conversation_keeps_its_last_messages_on_screen(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        conversation = app.main.conversation
        stored = [StoredMessage(id=i, conversation_id=1, role=("user", "assistant")[i % 2],
                                text=f"message {i}", source=(None, "learned")[i % 2], query_id=None,
                                created_at=float(i))
                  for i in range(MAX_ITEMS + 30)]
        conversation.restore(stored)
        await settle(pilot)
        assert [message_text(w) for w in conversation.items] == [m.text for m in stored[30:]]
        assert conversation.hidden_count == 30
        assert "30 earlier messages not shown" in str(conversation.query_one(".earlier").render())
        await ask(pilot, "capital of France?")
        await settle(pilot)
        assert len(conversation.items) == MAX_ITEMS and conversation.hidden_count == 32
        assert message_text(conversation.items[-2]) == "capital of France?"
        assert "32 earlier messages" in str(conversation.query_one(".earlier").render())
        assert len(conversation.query(".earlier")) == 1
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert conversation.hidden_count == 0 and not conversation.query(".earlier")


async def test_training_start_progress_and_cancel(engine, clock):
    seen: list[Message] = []
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48), message_hook=seen.append) as pilot:
        await settle(pilot)
        # The train key posts a training start; the run's steps and result reach the metrics.
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert engine.train_calls == ["manual"]
        events = [e for m in seen if isinstance(m, msg.CoreEvent) for e in m.events]
        began = [e for e in events if isinstance(e, TrainingStarted)]
        assert began and began[0].trigger == "manual"
        ended = [e for e in events if isinstance(e, TrainingFinished)]
        assert ended and ended[0].report.status == "done"
        assert app.main.query_one(LossChart).points("generator") == [4.0, 3.0]
        assert any("Run #1 done" in text for text in notices(app, "information"))

        # /train while a run goes; a second one is refused; Esc cancels it.
        engine.train_gate = asyncio.Event()
        await ask(pilot, "/train")
        await pilot.pause()
        assert engine.training and app.main.metrics.progress.running
        assert "training #2" in app.main.header.activity
        await ask(pilot, "/train")
        assert engine.train_calls == ["manual", "manual"]
        assert any("already going" in text for text in notices(app, "information"))
        await pilot.press("escape")
        await settle(pilot)
        assert engine.cancelled_training
        assert not app.main.metrics.progress.running
        assert any("cancelled" in text for text in notices(app, "warning"))
        assert app.main.header.activity == ""

        # Steps emitted from a training thread all arrive (post_message is thread-safe).
        def train() -> None:
            for i in range(1, 201):
                engine.emit(TrainingStep(9, StepEvent("router", i, 200, 1.0 / i, 500.0)))

        thread = threading.Thread(target=train)
        thread.start()
        thread.join()
        await settle(pilot)
        assert len(app.main.query_one(LossChart).points("router")) == 200


async def test_teaching_starts_streams_stops_and_finishes(engine, clock):
    engine.teach_gate = asyncio.Event()
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await ask(pilot, "/teach fractions")
        await settle(pilot, skip=("models", "teach"))
        assert engine.teach_calls == ["fractions"]
        view = answers(app)[-1]
        assert view.state == "teacher" and "check what the local model knows" in view.text
        assert [(c.name, c.status) for c in app.main.tool_log.calls] == [("query_local_model", "ok")]
        await pilot.press("ctrl+g")  # the same key stops it
        await settle(pilot)
        assert view.state == "cancelled"
        assert "Teaching stopped." in notices(app, "information")
        assert app.main.header.activity == ""

        engine.teach_gate = None
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert engine.teach_calls == ["fractions", None]
        view = answers(app)[-1]
        assert view.state == "teacher"
        assert "2 turns · 1 tool call · finished" in badge_line(view)


async def test_tool_commands_and_the_tool_log(engine, clock):
    from shammah_tui.core.events import ToolCalled
    from shammah_tui.core.tool_calls import ToolCallEvent

    engine.tool_results["analyze_model"] = "Accuracy per category:\n- arithmetic 0.95\n- units 0.80"
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await ask(pilot, "/analyze")
        await settle(pilot)
        await ask(pilot, "/compare what is 2 + 2?")
        await settle(pilot)
        calls = app.main.tool_log.calls
        assert [c.name for c in calls] == ["analyze_model", "compare_responses"]
        assert calls[1].input == {"query": "what is 2 + 2?"}
        views = answers(app)
        assert views[0].state == "tool" and "arithmetic 0.95" in views[0].text
        assert views[1].state == "tool"

        # Bad commands explain themselves and reach nothing.
        await ask(pilot, "/compare")
        await ask(pilot, "/frobnicate now")
        await settle(pilot)
        warnings = notices(app, "warning")
        assert any("/compare needs a question" in w for w in warnings)
        assert any("Unknown command /frobnicate" in w for w in warnings)
        assert engine.asked == []

        # A running call's row is updated in place when it ends; a reused id starts a new row.
        engine.emit(ToolCalled(ToolCallEvent("c1", "train", {"wait": True}, "running", 0.0)))
        await settle(pilot)
        assert app.main.tool_log.calls[-1].status == "running"
        engine.emit(ToolCalled(ToolCallEvent("c1", "train", {"wait": True}, "ok", 0.0, 950.0, "trained")))
        engine.emit(ToolCalled(ToolCallEvent("c1", "train", {"wait": True}, "running", 0.0)))
        await settle(pilot)
        assert [c.status for c in app.main.tool_log.calls[2:]] == ["ok", "running"]

        # Without the tool registry (not built yet, or broken), a clear error.
        engine.registry_error = ModuleNotFoundError("No module named 'shammah_tui.tools.registry'")
        await ask(pilot, "/analyze")
        await settle(pilot)
        view = answers(app)[-1]
        assert view.state == "error"
        assert "not available yet" in view.error


async def test_stats_clear_and_command_palette(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await ask(pilot, "what is 12 * 7?")
        await ask(pilot, "/stats")
        await settle(pilot)
        assert "forward          12    30.0%" in answers(app)[-1].text
        first_conversation = app.main.session.conversation_id
        await ask(pilot, "/clear")
        await settle(pilot)
        assert answers(app) == [] and app.main.session.history == []
        assert app.main.session.conversation_id != first_conversation
        await pilot.press("ctrl+l")  # already empty: no new conversation
        await settle(pilot)
        assert engine.store.conversations_made == 2
        await ask(pilot, "what is 12 * 7?")
        await settle(pilot)
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert engine.store.conversations_made == 3  # start-up, /clear, ctrl+l

        titles = {command.title for command in app.get_system_commands(app.main)}
        for title in ("Train now", "Start teaching", "Stop teaching", "Cancel", "Cancel training",
                      "Clear conversation", "Analyze models", "Show stats", "Help", "Show metrics pane"):
            assert title in titles
        command = next(c for c in app.get_system_commands(app.main) if c.title == "Train now")
        command.callback()
        await settle(pilot)
        assert engine.train_calls == ["manual"]


async def test_last_session_help_and_tool_detail(populated_engine, clock):
    engine = populated_engine
    app = make_app(engine, clock, resume_last=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        # Continuity: the last conversation, rates, losses, last run and tool calls come back.
        assert [u.text for u in app.main.query(UserMessage)] == ["what is 2 + 2?", "capital of Italy?"]
        assert [v.state for v in answers(app)] == ["template", "learned"]
        assert app.main.session.conversation_id == 3
        assert app.main.metrics.all_time_counts["forward"] == 22
        assert len(app.main.query_one(LossChart).points("generator")) == 400
        assert len(app.main.tool_log.calls) == 2

        # Help opens with F1 and /help, closes with Esc or q.
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        await ask(pilot, "/help")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
        assert app.screen is app.main

        # Enter on a tool call shows its full input and result.
        table = app.main.query_one("#tool-table")
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ToolDetailScreen)
        assert app.screen.call.name == "generate_training_data"
        assert '"query": "3 + 4?"' in str(app.screen.query_one("#tool-input").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main

        # The next question continues the stored conversation, with its history.
        await ask(pilot, "what is 12 * 7?")
        await settle(pilot)
        _, conversation_id, history = engine.asked[-1]
        assert conversation_id == 3
        assert history[0] == ("user", "what is 2 + 2?") and len(history) == 4
        assert app.main.metrics.all_time_counts["template"] == 7


async def test_models_load_after_the_first_frame(engine, clock):
    engine.load_gate = asyncio.Event()
    app = make_app(engine, clock, load_models=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.main.header.models_state == "loading"
        engine.load_gate.set()
        await settle(pilot)
        assert app.main.header.models_state == "ready"
        assert app.main.header.device == "cpu" and app.main.header.model_size == "1.49M params"


async def test_model_load_failure_is_a_notice(engine, clock):
    async def failing_load():
        raise OSError("models/generator.safetensors: unexpected end of file")

    engine.load_models = failing_load  # type: ignore[method-assign]
    app = make_app(engine, clock, load_models=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.main.header.models_state == "failed"
        assert any("could not be loaded" in text for text in notices(app, "error"))


async def test_narrow_terminal_switches_panes(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.main.has_class("-narrow")
        assert app.main.conversation.display and not app.main.query_one("#side").display
        await pilot.press("f3")
        await pilot.pause()
        assert app.main.pane == "tools"
        assert app.main.query_one("#tool-log").display and not app.main.conversation.display
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert not app.main.has_class("-narrow")
        assert app.main.conversation.display and app.main.query_one("#side").display


async def test_quitting_during_training_closes_the_engine(engine, clock):
    engine.train_gate = asyncio.Event()
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert engine.training
        await pilot.press("ctrl+q")
    assert engine.closed
    assert engine._listeners == []


async def test_engine_opened_inside_the_app_loop_and_open_failure_exits_1(clock, tmp_path):
    from shammah_tui.store import Store
    from shammah_tui.ui.app import ShammahApp

    async def open_engine():
        store = await Store.open(tmp_path / "shammah.db")  # aiosqlite binds to the app's loop
        conversation = await store.new_conversation()
        await store.add_message(conversation, "user", "from an earlier session")
        await store.add_message(conversation, "assistant", "kept in the store", "learned")
        return FakeEngine(store=store)  # type: ignore[arg-type]

    app = ShammahApp(open_engine=open_engine, clock=clock, load_models=False, resume_last=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert [u.text for u in app.main.query(UserMessage)] == ["from an earlier session"]
        assert answers(app)[0].state == "learned"
        engine = app.engine
    assert engine is not None and engine.closed

    async def broken_open():
        raise RuntimeError("cannot open database /nowhere/shammah.db: unable to open database file")

    failing = ShammahApp(open_engine=broken_open, clock=clock, load_models=False)
    async with failing.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert failing.return_code == 1
    assert failing.exit_reason == ("RuntimeError: cannot open database /nowhere/shammah.db: "
                                   "unable to open database file")


def test_training_steps_coalesce_without_losing_points():
    from shammah_tui.core.events import Notice

    def steps(run_id: int, *numbers: int) -> msg.CoreEvent:
        return msg.CoreEvent([TrainingStep(run_id, StepEvent("generator", n, 4, 3.0, 10.0)) for n in numbers])

    first, second, other_run = steps(1, 1), steps(1, 2), steps(2, 1)
    assert first.can_replace(second)
    assert [e.step.step for e in second.events] == [1, 2]
    assert not second.can_replace(other_run)
    notice = msg.CoreEvent.of(Notice("information", "x"))
    assert not first.can_replace(notice) and not notice.can_replace(steps(1, 3))


async def test_quitting_while_serving_stops_the_server_and_closes_the_engine(engine, clock):
    class Server:
        url = "http://127.0.0.1:1"
        stopped = False

        async def stop(self) -> None:
            self.stopped = True

    server = Server()
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app._server = server
        await pilot.press("ctrl+q")
    assert server.stopped and engine.closed


async def test_a_notice_at_start_keeps_the_welcome_and_a_question_ends_it(engine, clock):
    from shammah_tui.core.events import Notice
    from tests.ui.helpers import emit

    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await emit(pilot, engine, Notice("information", "No sentence encoder in the cache."))
        await settle(pilot)
        assert app.main.conversation.query("#welcome")
        assert notices(app) == ["No sentence encoder in the cache."]
        await ask(pilot, "capital of France?")
        await settle(pilot)
        assert not app.main.conversation.query("#welcome")


async def test_a_run_the_user_cancelled_does_not_start_again_by_itself_at_once(engine, clock):
    engine.auto_train_on_ask = True  # as a full queue does: each question would start a run
    engine.queued = 40
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        engine.train_gate = asyncio.Event()
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert engine.cancelled_training and not engine.training
        await ask(pilot, "capital of France?")
        await settle(pilot)
        assert engine.train_calls == ["manual"]
        assert not any("started by itself" in text for text in notices(app, "information"))

        # Another batch queued: runs start by themselves again.
        engine.queued += engine.settings.batch_size
        engine.train_gate = None
        await ask(pilot, "what is 12 * 7?")
        await settle(pilot)
        assert engine.train_calls == ["manual", "auto"]


async def test_question_mark_opens_help_unless_typed_into_a_question(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        prompt = app.main.prompt
        assert prompt.has_focus and prompt.value == ""
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main and prompt.has_focus
        await pilot.press(*"why", "question_mark")
        await pilot.pause()
        assert app.screen is app.main and prompt.value == "why?"
        await pilot.press("f2")  # the messages: ? is not typed there either
        await pilot.pause()
        assert app.main.conversation.has_focus
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
