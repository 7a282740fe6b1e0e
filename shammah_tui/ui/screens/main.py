"""The main screen: conversation, tool-call log and metrics, and the messages between them.

The session (`ui.session.Session`) holds the state and does the work on the engine; it runs here
as workers that only post messages. Engine events arrive as messages too (see `ui.messages`).
The handlers here pass what they bring down to the widgets.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, getters, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Tab, Tabs, TextArea
from textual.worker import Worker, WorkerState

from shammah_tui.core.events import (
    EngineEvent, ModelsLoaded, Notice, QueryAnswered, QueryVerified, ToolCalled, TrainingFinished, TrainingStarted,
    TrainingStep, RequestServed,
)
from shammah_tui.core.sanitize import strip_controls
from shammah_tui.formatting import describe_models, error_line, join_nonempty, plural
from shammah_tui.ui import messages as msg
from shammah_tui.ui.command_table import bindings
from shammah_tui.ui.editable_settings import format_value, settings_text
from shammah_tui.ui.session import Post, Session
from shammah_tui.ui.slash import SLASH_COMMANDS, SlashCommand, SlashError, parse_slash
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.conversation import Conversation
from shammah_tui.ui.widgets.header_bar import HeaderBar
from shammah_tui.ui.widgets.metrics import MetricsPane
from shammah_tui.ui.widgets.prompt import PromptInput
from shammah_tui.ui.widgets.request_log import RequestLog
from shammah_tui.ui.widgets.search_bar import SearchBar
from shammah_tui.ui.widgets.tool_log import ToolLog
from shammah_tui.ui.widgets.training_progress import summarize_report
from shammah_tui.ui.widgets.user_message import UserMessage

if TYPE_CHECKING:
    from shammah_tui.ui.engine_api import EngineLike


def question_text(text: str) -> str:
    """`text` as the engine takes it: no control characters, NFC, no surrounding whitespace."""
    return unicodedata.normalize("NFC", strip_controls(text)).strip()

#: Below this many columns the panes become tabs.
NARROW_WIDTH = 120
#: Seconds between flushes of the tool log and the run's progress (bar and header).
FLUSH_INTERVAL = 0.25
#: Panes and the widget each one focuses.
PANES = {"chat": "#prompt", "tools": "#tool-table", "metrics": "#metrics", "requests": "#request-table"}
#: Pane titles (on their borders), with the key that focuses each.
PANE_TITLES = {"conversation": "Chat · f2", "metrics": "Metrics · f4", "tool-log": "Tool calls · f3",
               "request-log": "Requests · f5"}
#: Longest question shown in full in the conversation (the engine judges the real limit).
SHOWN_QUERY_CHARS = 4000
#: An answer that comes sooner is shown with its question in one go; a later one shows "thinking…"
#: first. Below what a person notices, above most local answers (p50 4 ms while a run trains).
SHOW_PENDING_AFTER_S = 0.05
#: Said when the user cancels a run (Session.cancel_training holds runs started by questions).
CANCELLING_RUN = ("Cancelling the training run… No run starts by itself until another batch of examples is "
                  "queued (ctrl+t trains now).")
#: How a run is announced, by what started it.
TRIGGER_NOTES = {
    "manual": "started",
    "auto": "started by itself: a batch of examples is queued",
    "tool": "started by the teacher's train tool",
}


class MainScreen(Screen[None]):
    """Conversation, tool calls and metrics; narrow terminals show one pane at a time."""

    # main.tcss is loaded by ShammahApp.CSS_PATH: Textual does not read CSS_PATH of the default screen.
    AUTO_FOCUS = "#prompt"
    # The footer's bindings are static on purpose: refreshing them rebuilds the footer (~20 ms).
    BINDINGS = bindings(on_app=False)

    pane: reactive[str] = reactive("chat")
    """The pane shown on a narrow terminal (and focused by F2–F4)."""

    conversation = getters.query_one("#conversation", Conversation)
    metrics = getters.query_one("#metrics", MetricsPane)
    tool_log = getters.query_one("#tool-log", ToolLog)
    request_log = getters.query_one("#request-log", RequestLog)
    header = getters.query_one("#header", HeaderBar)
    prompt = getters.query_one("#prompt", PromptInput)
    search_bar = getters.query_one("#search-bar", SearchBar)

    def __init__(self, *, clock: Callable[[], float], data_dir: Path | None = None) -> None:
        super().__init__(id="main")
        self._clock = clock
        self.session = Session(clock=clock, post=self.post_message, data_dir=data_dir,
                               run=lambda work, group: self.run_worker(work, group=group, exit_on_error=False))
        """The conversation and what runs on the engine."""
        self._unsubscribe: Callable[[], None] | None = None
        self._asked: tuple[UserMessage, AnswerView, str | None] | None = None
        """The question being answered, its answer, and the prompt text to clear once shown."""
        self._shown = False
        self.show_pending_after_s = SHOW_PENDING_AFTER_S
        """How long an answer may take to be shown together with its question."""
        self._mounted = False
        self.flush_timer: Timer | None = None
        """The 4 Hz timer that moves buffered events into the panes (set on mount)."""
        self._pending_attach: tuple[EngineLike, bool, Callable[[], object] | None, bool] | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Set before the children mount, so the first layout needs no restyle of the whole tree.
        self.set_class(self.app.size.width < NARROW_WIDTH, "-narrow")
        yield HeaderBar(id="header")
        yield Tabs(Tab("Chat F2", id="tab-chat"), Tab("Tools F3", id="tab-tools"),
                   Tab("Metrics F4", id="tab-metrics"),
                   Tab("Requests F5", id="tab-requests", classes="-hidden"), id="pane-tabs")
        with Horizontal(id="panes", classes="-tab-chat"):
            yield Conversation(id="conversation")
            with Vertical(id="side"):
                yield MetricsPane(clock=self._clock, id="metrics")
                yield ToolLog(id="tool-log")
                yield RequestLog(id="request-log")
        search = SearchBar(id="search-bar")
        search.display = False
        yield search
        yield PromptInput(id="prompt")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for pane_id, title in PANE_TITLES.items():
            self.query_one(f"#{pane_id}").border_title = title
        self.flush_timer = self.set_interval(FLUSH_INTERVAL, self.flush, name="flush")
        self._mounted = True
        if self._pending_attach is not None:
            engine, loading, then, resume = self._pending_attach
            self._pending_attach = None
            self.attach(engine, loading_models=loading, then=then, resume=resume)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def watch_pane(self, pane: str) -> None:
        panes = self.query_one("#panes")
        for name in PANES:
            panes.set_class(name == pane, f"-tab-{name}")
        tabs = self.query_one("#pane-tabs", Tabs)
        if tabs.active != f"tab-{pane}":
            tabs.active = f"tab-{pane}"

    @on(Tabs.TabActivated, "#pane-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab is not None and event.tab.id:
            self.pane = event.tab.id.removeprefix("tab-")

    def on_key(self, event: events.Key) -> None:
        """Typing while a pane without a text field has the focus goes to the input, not nowhere."""
        focused = self.focused
        if (not event.is_printable or not event.character or focused is None
                or isinstance(focused, (Input, TextArea)) or event.key in self.active_bindings):
            return
        event.stop()
        event.prevent_default()
        self.action_show_pane("chat")
        self.prompt.insert(event.character)

    # ------------------------------------------------------------ engine link
    def attach(self, engine: EngineLike, *, loading_models: bool, then: Callable[[], object] | None = None,
               resume: bool = False) -> None:
        """Start showing `engine`: subscribe to its events and restore the last session.

        `then` runs once subscribed (the app starts loading the models there, so
        no ModelsLoaded event can come before the screen listens). `resume` (`--continue`)
        reopens the conversation open at the last quit; else a new one starts.
        """
        if not self._mounted:
            self._pending_attach = (engine, loading_models, then, resume)
            return
        self.session.attach(engine)
        self.header.teacher = engine.teacher.label
        self.header.teacher_kind = engine.teacher.kind
        self.header.models_state = "ready" if engine.models_ready else ("loading" if loading_models else "off")
        self.metrics.progress.batch_size = engine.settings.step_batch_size
        self.metrics.run_at = engine.settings.batch_size
        self._unsubscribe = engine.subscribe(self._on_engine_event)
        self.run_worker(self.session.restore(resume=resume), group="restore", exit_on_error=False)
        if then is not None:
            then()

    def detach(self) -> None:
        """Stop listening to the engine (before it closes)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_engine_event(self, event: EngineEvent) -> None:
        """The engine listener: may run on a training thread, so it only posts a message."""
        self.post_message(msg.CoreEvent.of(event))

    def _need_engine(self) -> bool:
        if self.session.engine is None:
            self.conversation.add_notice("warning", "Still opening the data directory; try again in a moment.")
            return False
        return True

    def on_session_restored(self, message: msg.SessionRestored) -> None:
        self.conversation.restore(message.messages)
        self.prompt.load_history(message.inputs)
        self.metrics.restore(all_time=message.source_counts, recent=message.recent_sources,
                             losses=message.losses, last_run=message.last_run, skills=message.skills)
        self.tool_log.restore(message.tool_calls)
        self.request_log.restore(message.requests)
        self._requests_tab()
        self.metrics.redraw()

    # ------------------------------------------------------------ engine events
    def on_core_event(self, message: msg.CoreEvent) -> None:
        """Each core event, in order, to the widget that shows it."""
        steps = [e.step for e in message.events if isinstance(e, TrainingStep)]
        if steps:
            self.metrics.add_steps(steps)  # data only; drawn by the timers
        for event in message.events:
            match event:
                case ModelsLoaded():
                    engine = self.session.engine
                    self.header.device, self.header.model_size = describe_models(
                        event.info, engine.settings if engine else None)
                    self.header.models_state = "ready"  # its warnings also come as Notice events
                case QueryAnswered():
                    self.metrics.record_answer(event.result.source)
                    self.session.stats_dirty = True
                case QueryVerified() if event.query_id is not None:
                    # The engine starts a spot check once the answer is returned: its view knows the id.
                    self.conversation.show_verdict(event.query_id, event.verified)
                case Notice():
                    self.conversation.add_notice(event.level, event.text)
                case TrainingStarted():
                    self.metrics.run_began(event.run_id, event.trigger, event.total_steps)
                    self.header.activity = self._activity()
                    note = TRIGGER_NOTES.get(event.trigger, f"started ({event.trigger})")
                    self.conversation.add_notice("information", f"Training run #{event.run_id} {note}. "
                                                                "Esc cancels it.")
                case TrainingFinished():
                    self._training_finished(event)
                case ToolCalled():
                    self.tool_log.push(event.event)
                    if event.event.status != "running":
                        self.session.stats_dirty = True
                case RequestServed():
                    self.request_log.push(event.request)

    def on_models_failed(self, message: msg.ModelsFailed) -> None:
        self.header.models_state = "failed"
        self.conversation.add_notice("error", f"The local models could not be loaded: {message.reason}. "
                                              "Questions go to the teacher.")

    def _training_finished(self, event: TrainingFinished) -> None:
        progress = self.metrics.progress
        if progress.run_id not in (None, event.run_id):
            return  # an older run's late report: the one shown goes on
        trigger = progress.trigger
        if progress.running:
            self.metrics.run_ended(event.run_id, event.report)
        self.header.activity = self._activity()
        summary = summarize_report(event.run_id, event.report, lead="Run")
        done = event.report.status == "done"
        self.conversation.add_notice("information" if done else "warning", summary)
        self._toast(summary, title=f"Training run ({trigger or 'run'})", severity="information" if done else "warning")
        self.session.stats_dirty = True
        self.metrics.redraw()

    def _activity(self) -> str:
        """What the header says runs now: the run's progress, and teaching."""
        return join_nonempty([self.metrics.progress.short_status(), "teaching" if self.session.teaching else ""])

    def _toast(self, text: str, *, title: str = "", severity: SeverityLevel = "information") -> None:
        self.app.notify(text, title=title, severity=severity, timeout=6)

    def on_stats_fetched(self, message: msg.StatsFetched) -> None:
        engine = self.session.engine
        self.metrics.show_stats(message.stats, engine.settings.auto_train if engine else None)

    def on_tool_log_selected(self, message: ToolLog.Selected) -> None:
        from shammah_tui.ui.screens.tool_detail import ToolDetailScreen

        self.app.push_screen(ToolDetailScreen(message.call))

    def on_request_log_selected(self, message: RequestLog.Selected) -> None:
        from shammah_tui.ui.screens.request_detail import RequestDetailScreen

        self.app.push_screen(RequestDetailScreen(message.request))

    def reveal_requests(self) -> None:
        """Show the request log (and its tab on a narrow terminal), even before a request comes."""
        self.request_log.reveal()
        self._requests_tab()

    def _requests_tab(self) -> None:
        if self.request_log.revealed:
            tab = self.query_one("#tab-requests", Tab)
            if tab.has_class("-hidden"):
                self.query_one("#pane-tabs", Tabs).show("tab-requests")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.conversation.add_notice("error", error_line(error) if error else "a background task failed")

    # ------------------------------------------------------------ periodic work
    def flush(self) -> None:
        """Apply buffered tool-log and request-log rows, draw the run's progress (bar and header, one figure),
        end a run the engine no longer has, and refresh the stats when something changed."""
        self.tool_log.flush()
        self.request_log.flush()
        self._requests_tab()
        progress = self.metrics.progress
        if progress.running:
            progress.redraw()
        if self.session.run_orphaned(progress.running):
            summary = progress.abandon().replace("Last run", "Training run")
            self.conversation.add_notice("warning", summary)
            self._toast(summary, title="Training", severity="warning")
        self.header.activity = self._activity()
        if self.session.stats_due():
            self.fetch_stats()

    def fetch_stats(self) -> None:
        """Read the stats off the handler path (StatsFetched shows them)."""
        self.run_worker(self.session.fetch_stats(), group="stats", exit_on_error=False)

    # -------------------------------------------------------------- the input
    @on(PromptInput.Submitted, "#prompt")
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        event.stop()
        line = event.value
        if not line.strip():
            self.prompt.value = ""
            return
        self.prompt.remember(line)
        self.session.remember_input(line)
        try:
            command = parse_slash(line)
        except SlashError as exc:
            self.prompt.value = ""
            self.conversation.add_notice("warning", str(exc))
            return
        if command is None:
            self.ask(line, typed=True)  # the prompt clears when the question is shown
        else:
            self.prompt.value = ""
            await self.run_slash(command)

    async def run_slash(self, command: SlashCommand) -> None:
        """Run a parsed slash command: its row's action, with its argument."""
        row = SLASH_COMMANDS[command.name]
        await self.app.run_action(row.slash_action(command.arg), self.app if row.on_app else self)

    async def run_slash_line(self, line: str) -> None:
        """Run a `/command` line as if typed."""
        try:
            command = parse_slash(line)
        except SlashError as exc:
            self.conversation.add_notice("warning", str(exc))
            return
        if command is not None:
            await self.run_slash(command)

    # ------------------------------------------------------------------- ask
    def ask(self, text: str, *, typed: bool = False) -> None:
        """Show the question and answer it in a worker.

        A question `typed` in the prompt stays there until it is shown in the conversation (one
        frame for both), and stays for good when it cannot be asked now.
        """
        if not self._need_engine():
            return
        if self.session.asking:
            self.conversation.add_notice("warning", "Still answering the last question (Esc cancels it).")
            return
        # Counted as the engine counts it (a paste's trailing newline is not part of the question),
        # so that this and a "query is N characters" refusal give the same number.
        size = len(question_text(text))
        shown = text if len(text) <= SHOWN_QUERY_CHARS else (
            text[:SHOWN_QUERY_CHARS] + f"… ({size:,} characters)")
        ready = self.session.engine is not None and self.session.engine.models_ready
        view = AnswerView(meta="thinking…" if ready else "thinking… (waiting for the models to load)")
        # The question and its answer are shown together when the answer comes within
        # SHOW_PENDING_AFTER_S (most local answers): one layout instead of two. Messages the worker
        # posts to the view meanwhile wait in its queue until it is mounted.
        self._asked, self._shown = (UserMessage(shown), view, text if typed else None), False
        self.session.start_ask(text, view.post_message)
        self.set_timer(self.show_pending_after_s, self._show_asked)

    def _show_asked(self) -> None:
        """Show the question being answered and its (pending or settled) answer, once."""
        if self._asked is not None and not self._shown:
            question, view, typed = self._asked
            self._shown = True
            if typed is not None and self.prompt.value == typed:
                self.prompt.value = ""
            self.conversation.add_exchange(question, view)

    def on_ask_finished(self, message: msg.AskFinished) -> None:
        if self._asked is None:
            return
        view = self._asked[1]
        if not self._shown and message.result is not None:
            view.preset(AnswerView.Settled.from_result(message.result))  # drawn settled at once
        self._show_asked()
        self._asked = None
        if message.result is not None and message.result.query_id is not None:
            view.query_id = message.result.query_id
        self.session.answered(message.result)

    # ---------------------------------------------------------------- teaching
    def start_teaching(self, topic: str | None = None) -> None:
        """Start an active-teaching session; its text streams into the conversation."""
        if not self._need_engine() or self.session.teaching:
            return
        title = f"teaching: {topic}" if topic else "teaching"
        view = self.conversation.add_answer(badge="teacher", state="teacher", meta=f"{title}…")
        self.session.start_teaching(topic, view.post_message)
        self.header.activity = self._activity()

    def on_teach_finished(self, message: msg.TeachFinished) -> None:
        self.session.teach_stopping = False
        # Calls the session left running (their end never came) end here, unless a slash
        # command's tool call is still going.
        if not any(w.group == "tools" and not w.is_finished for w in self.workers):
            self.tool_log.settle_open("cancelled" if message.stopped else "ended without a result")
        self.header.activity = self._activity()
        run = self.metrics.progress.run_id
        if message.stopped:
            text = "Teaching stopped." + (f" Training run #{run} goes on; esc cancels it." if run is not None else "")
            self.conversation.add_notice("information", text)
            self._toast(text, title="Teaching")
        elif message.error:
            self._toast(f"Teaching failed: {message.error}", title="Teaching", severity="error")
        else:
            self._toast(f"Teaching round done: {message.summary}", title="Teaching")

    # ---------------------------------------------------------- tools, stats
    def _answer_with(self, title: str, badge: str, meta: str,
                     work: Callable[[Post], Coroutine[Any, Any, None]]) -> None:
        """Show `title` as a question and run `work(reply)` for its answer (as a tool call)."""
        if not self._need_engine():
            return
        self.conversation.add_user(title)
        view = self.conversation.add_answer(badge=badge, state="pending", meta=meta)
        self.run_worker(work(view.post_message), group="tools", exit_on_error=False)

    # ---------------------------------------------------------- copy, search
    def on_conversation_copy_requested(self, message: Conversation.CopyRequested) -> None:
        message.stop()
        self.copy_text(message.text, message.what)

    def copy_text(self, text: str, what: str) -> None:
        """Put `text` on the clipboard (OSC 52 through the terminal) and say so."""
        if not text:
            self._toast(f"Nothing to copy: the {what} is empty.", title="Copy", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self._toast(f"Copied the {what} ({plural(len(text), 'character')}).", title="Copy")

    def on_search_bar_changed(self, message: SearchBar.Changed) -> None:
        self.search_bar.show_count(*self.conversation.search(message.query))

    def on_search_bar_step(self, message: SearchBar.Step) -> None:
        self.search_bar.show_count(*self.conversation.step_match(message.delta))

    def on_search_bar_closed(self, message: SearchBar.Closed) -> None:
        self.conversation.end_search()
        self.prompt.focus()

    # ------------------------------------------------------ export, history
    def on_exported(self, message: msg.Exported) -> None:
        if message.path is None:
            self.conversation.add_notice("warning", message.error or "Nothing exported.")
            return
        text = f"Exported {plural(message.count, 'message')} to {message.path}"
        self.conversation.add_notice("information", text)
        self._toast(text, title="Export")

    @work(group="history", exclusive=True, exit_on_error=False)
    async def pick_conversation(self) -> None:
        """List past conversations; picking one reopens it."""
        from shammah_tui.ui.screens.conversations import ConversationsScreen

        if not self._need_engine():
            return
        rows = await self.session.conversations()
        chosen = await self.app.push_screen_wait(ConversationsScreen(rows, current=self.session.conversation_id))
        if chosen is not None:
            await self.session.load_conversation(chosen)

    def open_conversation(self, conversation_id: int) -> None:
        """Reopen a stored conversation: its messages, and its history as the engine's context."""
        if self._need_engine():
            self.run_worker(self.session.load_conversation(conversation_id), group="history", exclusive=True,
                            exit_on_error=False)

    async def on_conversation_loaded(self, message: msg.ConversationLoaded) -> None:
        self.session.cancel_ask()
        await self.conversation.clear()
        self.session.reopened(message.conversation_id, message.messages)
        self.conversation.restore(message.messages)
        self.conversation.add_notice("information", f"Conversation #{message.conversation_id} reopened "
                                                    f"({plural(len(message.messages), 'message')}).")

    # ------------------------------------------------------------ settings
    def change_setting(self, key: str, value: Any) -> None:
        """Save one setting to settings.toml and apply it (SettingChanged says how it went)."""
        self.run_worker(self.session.change_setting(key, value), group="settings", exit_on_error=False)

    def on_setting_changed(self, message: msg.SettingChanged) -> None:
        if message.error:
            self.conversation.add_notice("warning", f"{message.key} not changed: {message.error}")
            return
        when = "in effect now" if message.applied else "takes effect at the next start"
        text = f"{message.key} = {format_value(message.value)}, saved to settings.toml ({when})."
        if message.key != "theme":  # the new colours say it already
            self.conversation.add_notice("information", text)
        self._toast(text, title="Settings")
        if message.key == "step_batch_size" and message.applied:
            self.metrics.progress.batch_size = int(message.value)
        if message.key == "batch_size" and message.applied:
            self.metrics.run_at = int(message.value)

    # ----------------------------------------------------------------- actions
    def action_train(self) -> None:
        """Start a training run on the queued examples."""
        if self._need_engine() and not self.session.start_training():
            self.conversation.add_notice("information", "A training run is already going (Esc cancels it).")

    def action_cancel_training(self) -> None:
        """Cancel the training run, if one is going."""
        if self.session.cancel_training():
            self.conversation.add_notice("information", CANCELLING_RUN)

    @work(group="reset-adapter", exclusive=True)
    async def action_reset_adapter(self) -> None:
        """Forget what the adapter learned (the engine says what became of it)."""
        if self._need_engine():
            assert self.session.engine is not None
            self.conversation.add_notice("information", await self.session.engine.reset_adapter())

    def action_teach(self) -> None:
        """Start teaching (no topic)."""
        self.start_teaching(None)

    def action_toggle_teaching(self, topic: str = "") -> None:
        """Start teaching (on `topic`), or stop the session that runs."""
        if not self.session.teaching:
            self.start_teaching(topic or None)
        elif not self.session.teach_stopping:
            self.session.stop_teaching()

    def action_stop_teaching(self) -> None:
        """Stop the teaching session (a training run it started goes on; esc then cancels it)."""
        self.session.stop_teaching()

    def action_cancel(self) -> None:
        """Cancel the answer in flight, else teaching, else the training run, else the search."""
        match self.session.cancel():
            case "training":
                self.conversation.add_notice("information", CANCELLING_RUN)
            case "" if self.search_bar.display:
                self.search_bar.action_close()

    async def action_clear(self) -> None:
        """Start a new conversation (the old one stays in the store: ctrl+o or /open brings it back)."""
        self.session.cancel_ask()
        if not self.session.history and not self.conversation.items:
            self.conversation.add_notice("information", "This conversation is already empty.")
            return
        await self.conversation.clear()
        previous = await self.session.new_conversation()
        if previous is not None:
            self._toast(f"New conversation. The last one (#{previous}) is kept: /open {previous}, ctrl+o, "
                        "or “Undo clear” in ctrl+p brings it back.", title="Cleared")

    def action_undo_clear(self) -> None:
        """Reopen the conversation left by the last clear (or reopen)."""
        if self.session.left_conversation is None:
            self._toast("No earlier conversation to go back to.", title="Undo", severity="warning")
            return
        self.open_conversation(self.session.left_conversation)

    def action_open_conversations(self, number: str = "") -> None:
        """Reopen conversation `number`; without one, list past conversations to pick from."""
        if number:
            self.open_conversation(int(number.lstrip("#")))
        else:
            self.pick_conversation()

    def action_export(self, arg: str = "md") -> None:
        """Export the conversation (`md` or `json`, then an optional path; else to the data dir's exports/)."""
        from shammah_tui.ui.export import parse_export_args

        try:
            fmt, path = parse_export_args(arg)
        except ValueError as exc:
            self.conversation.add_notice("warning", str(exc))
            return
        if self._need_engine():
            self.run_worker(self.session.export(fmt, path), group="export", exit_on_error=False)

    def action_analyze(self) -> None:
        """Evaluate the local models per category (the analyze_model tool)."""
        self._answer_with("/analyze", "tool", "analyze_model…",
                          lambda reply: self.session.call_tool("analyze_model", {}, reply))

    def action_compare(self, question: str) -> None:
        """The local answer next to the teacher's (the compare_responses tool)."""
        self._answer_with(f"/compare {question}", "tool", "compare_responses…",
                          lambda reply: self.session.call_tool("compare_responses", {"query": question}, reply))

    def action_stats(self) -> None:
        """Rates, losses, queue and token counts, as an answer."""
        self._answer_with("/stats", "stats", "reading…", self.session.stats_answer)

    def action_copy(self, what: str = "") -> None:
        """Copy the last answer, or (`code`) the last code block of the conversation."""
        text = self.conversation.last_answer_text(code=what == "code")
        if text:
            self.copy_text(text, "code block" if what == "code" else "answer")
        else:
            self._toast("No code block in this conversation yet." if what == "code" else "No answer to copy yet.",
                        title="Copy", severity="warning")

    def action_set(self, arg: str = "") -> None:
        """Show the editable settings, or change one (`key value`)."""
        if not arg:
            engine = self.session.engine
            self.conversation.add_user("/set")
            view = self.conversation.add_answer(badge="settings", state="pending", meta="")
            view.post_message(AnswerView.Settled("settings", "tool", "/set KEY VALUE changes one",
                                                 text=settings_text(engine.settings if engine else None), plain=True))
            return
        parsed = self.session.parse_set(arg)
        if isinstance(parsed, str):
            self.conversation.add_notice("warning", parsed)
        else:
            self.change_setting(*parsed)

    def action_search(self, text: str = "") -> None:
        """Open the search bar (with `text` to look for)."""
        self.action_show_pane_only("chat")
        self.search_bar.open()
        if text:
            self.search_bar.query_one(Input).value = text

    def action_show_pane(self, pane: str) -> None:
        """Show (on narrow terminals) and focus a pane; f2 on the input goes to the messages."""
        if pane not in PANES:
            return
        if pane == "chat" and self.prompt.has_focus and self.pane == "chat":
            self.conversation.focus()
            return
        if pane == "requests":
            self.reveal_requests()
        self.pane = pane
        self.call_after_refresh(self._focus_pane, pane)

    def action_show_pane_only(self, pane: str) -> None:
        """Show a pane on a narrow terminal without moving the focus."""
        if pane in PANES:
            self.pane = pane

    def _focus_pane(self, pane: str) -> None:
        target = self.query(PANES[pane])
        if target:
            target.first().focus()
