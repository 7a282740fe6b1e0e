"""The main screen: conversation, tool-call log and metrics, and the coordinator between them.

Engine events arrive as messages (see `ui.messages`); handlers here own all UI
state and pass data down to the widgets. Engine calls that take time run in
async workers on the UI loop (the engine pushes torch work to threads); those
workers only post messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Tab, Tabs, TextArea
from textual.worker import Worker, WorkerState

from shammah_tui.events import (
    AskResult, EngineEvent, ModelsLoaded, Notice, QueryAnswered, QueryVerified, ToolCalled, TrainingFinished,
    TrainingStarted, TrainingStep,
)
from shammah_tui.formatting import (
    code_blocks, describe_models, error_line, join_nonempty, plural, stats_text, teach_outcome,
)
from shammah_tui.kinds import MODELS
from shammah_tui.ui import messages as msg
from shammah_tui.ui.command_table import bindings
from shammah_tui.ui.editable_settings import EDITABLE, setting_value, settings_text
from shammah_tui.ui.slash import SLASH_COMMANDS, SlashCommand, SlashError, parse_slash
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.conversation import Conversation
from shammah_tui.ui.widgets.header_bar import HeaderBar
from shammah_tui.ui.widgets.metrics import MetricsPane
from shammah_tui.ui.widgets.prompt import PromptInput
from shammah_tui.ui.widgets.search_bar import SearchBar
from shammah_tui.ui.widgets.tool_log import ToolLog
from shammah_tui.ui.widgets.training_progress import summarize_report
from shammah_tui.ui.widgets.user_message import UserMessage

if TYPE_CHECKING:
    from shammah_tui.ui.engine_api import EngineLike

#: Below this many columns the panes become tabs.
NARROW_WIDTH = 120
#: Seconds between flushes of the tool log and the run's progress (bar and header).
FLUSH_INTERVAL = 0.25
#: Least seconds (on the injected clock) between two engine.stats() reads: it scans the store.
STATS_MIN_INTERVAL = 2.0
#: Panes and the widget each one focuses.
PANES = {"chat": "#prompt", "tools": "#tool-table", "metrics": "#metrics"}
#: Pane titles (on their borders), with the key that focuses each.
PANE_TITLES = {"conversation": "Chat · f2", "metrics": "Metrics · f4", "tool-log": "Tool calls · f3"}
#: Longest question shown in full in the conversation (the engine judges the real limit).
SHOWN_QUERY_CHARS = 4000
#: An answer that comes sooner is shown with its question in one go; a later one shows "thinking…"
#: first. Below what a person notices, above most local answers (p50 4 ms while a run trains).
SHOW_PENDING_AFTER_S = 0.05
#: Flushes a run may go on showing after the engine says none is running, before the UI ends it
#: itself (its TrainingFinished may still be queued behind the flush that noticed).
ORPHAN_FLUSHES = 8
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

    BINDINGS = bindings(on_app=False)

    pane: reactive[str] = reactive("chat")
    """The pane shown on a narrow terminal (and focused by F2–F4)."""

    def __init__(self, *, clock: Callable[[], float], data_dir: Path | None = None) -> None:
        super().__init__(id="main")
        self._clock = clock
        self.data_dir = data_dir
        """The data directory (exports and settings.toml go there), when known."""
        self.engine: EngineLike | None = None
        """The engine, once open."""
        self.conversation_id: int | None = None
        """The conversation new messages are stored under."""
        self.history: list[tuple[str, str]] = []
        """(role, text) of the conversation so far, given to the engine as context."""
        self._unsubscribe: Callable[[], None] | None = None
        self._ask_worker: Worker[None] | None = None
        self._teach_worker: Worker[None] | None = None
        self._teach_stopping = False
        self._ask_in_flight = False
        self._unshown: tuple[UserMessage, AnswerView, str | None] | None = None
        """A question being answered, not shown yet (see SHOW_PENDING_AFTER_S), and the prompt
        text to clear when it is."""
        self._stats_dirty = False
        self._stats_busy = False
        self._stats_at: float | None = None
        self._stats_failed = False
        self._orphan_flushes = 0
        self._matches: list[Widget] = []
        self._match = 0
        self._left_conversation: int | None = None
        self._mounted = False
        self._pending_attach: tuple[EngineLike, bool, Callable[[], object] | None] | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Set before the children mount, so the first layout needs no restyle of the whole tree.
        self.set_class(self.app.size.width < NARROW_WIDTH, "-narrow")
        yield HeaderBar(id="header")
        yield Tabs(Tab("Chat F2", id="tab-chat"), Tab("Tools F3", id="tab-tools"),
                   Tab("Metrics F4", id="tab-metrics"), id="pane-tabs")
        with Horizontal(id="panes", classes="-tab-chat"):
            yield Conversation(id="conversation")
            with Vertical(id="side"):
                yield MetricsPane(clock=self._clock, id="metrics")
                yield ToolLog(id="tool-log")
        search = SearchBar(id="search-bar")
        search.display = False
        yield search
        yield PromptInput(id="prompt")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for pane_id, title in PANE_TITLES.items():
            self.query_one(f"#{pane_id}").border_title = title
        self.set_interval(FLUSH_INTERVAL, self.flush, name="flush")
        self._mounted = True
        if self._pending_attach is not None:
            engine, loading, then = self._pending_attach
            self._pending_attach = None
            self.attach(engine, loading_models=loading, then=then)

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

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def metrics(self) -> MetricsPane:
        return self.query_one(MetricsPane)

    @property
    def tool_log(self) -> ToolLog:
        return self.query_one(ToolLog)

    @property
    def header(self) -> HeaderBar:
        return self.query_one(HeaderBar)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

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
    def attach(self, engine: EngineLike, *, loading_models: bool,
               then: Callable[[], object] | None = None) -> None:
        """Start showing `engine`: subscribe to its events and restore the last session.

        `then` runs once subscribed (the app starts loading the models there, so
        no ModelsLoaded event can come before the screen listens).
        """
        if not self._mounted:
            self._pending_attach = (engine, loading_models, then)
            return
        self.engine = engine
        if self.data_dir is None:
            self.data_dir = engine.data_dir
        self.header.teacher = engine.teacher.label
        self.header.teacher_kind = engine.teacher.kind
        self.header.models_state = "ready" if engine.models_ready else ("loading" if loading_models else "off")
        self.metrics.progress.batch_size = engine.settings.step_batch_size
        self.metrics.run_at = engine.settings.batch_size
        self._unsubscribe = engine.subscribe(self._on_engine_event)
        self.restore_session()
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

    @work(group="restore", exit_on_error=False)
    async def restore_session(self) -> None:
        """Read what the store remembers; posts SessionRestored."""
        assert self.engine is not None
        store = self.engine.store
        conversation_id = await store.latest_conversation()
        if conversation_id is None:
            conversation_id = await store.new_conversation()
        runs = await store.runs(limit=20)
        done = [r for r in runs if r.status == "done"]
        self.post_message(msg.SessionRestored(
            conversation_id=conversation_id,
            messages=await store.messages(conversation_id, limit=100),
            source_counts=await store.source_counts(),
            recent_sources=await store.recent_sources(60),
            losses={m: await store.loss_history(m, limit=3000) for m in MODELS},
            last_run=done[-1] if done else None,
            tool_calls=await store.tool_calls(limit=100),
            skills=await store.skill_history(limit=60),
        ))
        self._stats_dirty = True

    def on_session_restored(self, message: msg.SessionRestored) -> None:
        self.conversation_id = message.conversation_id
        self.history = [(m.role, m.text) for m in message.messages if m.role in ("user", "assistant")]
        self.conversation.restore(message.messages)
        self.metrics.restore(all_time=message.source_counts, recent=message.recent_sources,
                             losses=message.losses, last_run=message.last_run, skills=message.skills)
        self.tool_log.restore(message.tool_calls)
        self.metrics.redraw()

    # ------------------------------------------------------------ engine events
    def on_core_event(self, message: msg.CoreEvent) -> None:
        """Each core event, in order, to the handler for its kind."""
        steps = [e.step for e in message.events if isinstance(e, TrainingStep)]
        if steps:
            self.metrics.add_steps(steps)  # data only; drawn by the timers
        for event in message.events:
            match event:
                case ModelsLoaded():
                    self._models_loaded(event)
                case QueryAnswered():
                    self.metrics.record_answer(event.result.source)
                    self._stats_dirty = True
                case QueryVerified():
                    self._query_verified(event)
                case Notice():
                    self.conversation.add_notice(event.level, event.text)
                case TrainingStarted():
                    self._training_started(event)
                case TrainingFinished():
                    self._training_finished(event)
                case ToolCalled():
                    self.tool_log.push(event.event)
                    if event.event.status != "running":
                        self._stats_dirty = True

    def _models_loaded(self, event: ModelsLoaded) -> None:
        device, size = describe_models(event.info, self.engine.settings if self.engine else None)
        self.header.device = device
        self.header.model_size = size
        self.header.models_state = "ready"
        # Its warnings also come as Notice events.

    def on_models_failed(self, message: msg.ModelsFailed) -> None:
        self.header.models_state = "failed"
        self.conversation.add_notice("error", f"The local models could not be loaded: {message.reason}. "
                                              "Questions go to the teacher.")

    def _query_verified(self, event: QueryVerified) -> None:
        """A background spot check's verdict, shown on its answer. The engine starts the check
        only once the answer is returned, so the answer's view already knows its query id."""
        if event.query_id is None:
            return
        for view in self.conversation.query(AnswerView):
            if view.query_id == event.query_id:
                view.post_message(AnswerView.Verified(event.verified))
                return

    def _training_started(self, event: TrainingStarted) -> None:
        self._orphan_flushes = 0
        self.metrics.run_began(event.run_id, event.trigger, event.total_steps)
        self.header.activity = self._activity()
        note = TRIGGER_NOTES.get(event.trigger, f"started ({event.trigger})")
        self.conversation.add_notice("information", f"Training run #{event.run_id} {note}. Esc cancels it.")

    def _training_finished(self, event: TrainingFinished) -> None:
        progress = self.metrics.progress
        if progress.run_id not in (None, event.run_id):
            return  # an older run's late report: the one shown goes on
        trigger = progress.trigger
        if progress.running:
            self.metrics.run_ended(event.run_id, event.report)
        self.header.activity = self._activity()
        summary = summarize_report(event.run_id, event.report, lead="Run")
        level = "information" if event.report.status == "done" else "warning"
        self.conversation.add_notice(level, summary)
        self._toast(summary, title=f"Training run ({trigger or 'run'})",
                    severity="information" if level == "information" else "warning")
        self._stats_dirty = True
        self.metrics.redraw()

    def _activity(self) -> str:
        """What the header says runs now: the run's progress, and teaching."""
        parts = [self.metrics.progress.short_status()]
        if self._teaching:
            parts.append("teaching")
        return join_nonempty(parts)

    def _toast(self, text: str, *, title: str = "", severity: SeverityLevel = "information") -> None:
        self.app.notify(text, title=title, severity=severity, timeout=6)

    def on_stats_fetched(self, message: msg.StatsFetched) -> None:
        auto_train = self.engine.settings.auto_train if self.engine else None
        self.metrics.show_stats(message.stats, auto_train)

    def on_tool_log_selected(self, message: ToolLog.Selected) -> None:
        from shammah_tui.ui.screens.tool_detail import ToolDetailScreen

        self.app.push_screen(ToolDetailScreen(message.call))

    # ------------------------------------------------------------ periodic work
    def flush(self) -> None:
        """Apply buffered tool-log rows, draw the run's progress (bar and header, one figure),
        end a run the engine no longer has, and refresh the stats when something changed."""
        self.tool_log.flush()
        progress = self.metrics.progress
        if progress.running:
            progress.redraw()
            self._check_orphan_run()
        self.header.activity = self._activity()
        if self._stats_dirty and not self._stats_busy and self.engine is not None:
            now = self._clock()
            if self._stats_at is None or now - self._stats_at >= STATS_MIN_INTERVAL:
                self._stats_dirty = False
                self._stats_busy = True
                self._stats_at = now
                self.fetch_stats()

    def _check_orphan_run(self) -> None:
        """A run shown as running that the engine no longer runs, and whose report never came
        (its task was cancelled from outside), is ended here: the UI never stays stuck on it."""
        if self.engine is None or self.engine.training:
            self._orphan_flushes = 0
            return
        self._orphan_flushes += 1
        if self._orphan_flushes < ORPHAN_FLUSHES:
            return
        self._orphan_flushes = 0
        summary = self.metrics.progress.abandon()
        self.header.activity = self._activity()
        self.conversation.add_notice("warning", summary.replace("Last run", "Training run"))
        self._toast(summary.replace("Last run", "Training run"), title="Training", severity="warning")

    @work(group="stats", exit_on_error=False)
    async def fetch_stats(self) -> None:
        """`engine.stats()` off the handler path; posts StatsFetched (a failure is said once)."""
        try:
            if self.engine is not None:
                self.post_message(msg.StatsFetched(await self.engine.stats()))
        except Exception as exc:
            if not self._stats_failed:
                self._stats_failed = True
                self.post_message(msg.CoreEvent.of(Notice("warning", f"Stats unavailable: {error_line(exc)}")))
        finally:
            self._stats_busy = False

    # -------------------------------------------------------------- the input
    @on(PromptInput.Submitted, "#prompt")
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        event.stop()
        line = event.value
        prompt = self.prompt
        if not line.strip():
            prompt.value = ""
            return
        prompt.remember(line)
        try:
            command = parse_slash(line)
        except SlashError as exc:
            prompt.value = ""
            self.conversation.add_notice("warning", str(exc))
            return
        if command is None:
            self.ask(line, typed=True)  # the prompt clears when the question is shown
        else:
            prompt.value = ""
            await self.run_slash(command)

    async def run_slash(self, command: SlashCommand) -> None:
        """Run a parsed slash command: its row's action, with its argument."""
        row = SLASH_COMMANDS[command.name]
        await self.app.run_action(row.slash_action(command.arg), self.app if row.on_app else self)

    def action_analyze(self) -> None:
        """Evaluate the local models per category (the analyze_model tool)."""
        self._call_tool("analyze_model", {}, "/analyze")

    def action_compare(self, question: str) -> None:
        """The local answer next to the teacher's (the compare_responses tool)."""
        self._call_tool("compare_responses", {"query": question}, f"/compare {question}")

    def action_stats(self) -> None:
        """Rates, losses, queue and token counts, as an answer."""
        self._show_stats_answer()

    def action_copy(self, what: str = "") -> None:
        """Copy the last answer, or (`code`) the last code block."""
        self.copy_last(code=what == "code")

    def action_set(self, arg: str = "") -> None:
        """Show the editable settings, or change one (`key value`)."""
        self._set_command(arg)

    async def run_slash_line(self, line: str) -> None:
        """Run a `/command` line as if typed (the command palette uses this)."""
        try:
            command = parse_slash(line)
        except SlashError as exc:
            self.conversation.add_notice("warning", str(exc))
            return
        if command is not None:
            await self.run_slash(command)

    def _need_engine(self) -> bool:
        if self.engine is None:
            self.conversation.add_notice("warning", "Still opening the data directory; try again in a moment.")
            return False
        return True

    # ------------------------------------------------------------------- ask
    @property
    def _asking(self) -> bool:
        """From ask() until its AskFinished is handled."""
        return self._ask_in_flight

    @property
    def _teaching(self) -> bool:
        return self._teach_worker is not None and not self._teach_worker.is_finished

    def ask(self, text: str, *, typed: bool = False) -> None:
        """Show the question and answer it in a worker.

        A question `typed` in the prompt stays there until it is shown in the conversation (one
        frame for both), and stays for good when it cannot be asked now.
        """
        if not self._need_engine():
            return
        if self._asking:
            self.conversation.add_notice("warning", "Still answering the last question (Esc cancels it).")
            return
        shown = text if len(text) <= SHOWN_QUERY_CHARS else (
            text[:SHOWN_QUERY_CHARS] + f"… ({len(text):,} characters)")
        assert self.engine is not None
        meta = "thinking…" if self.engine.models_ready else "thinking… (waiting for the models to load)"
        question, view = UserMessage(shown), AnswerView(meta=meta)
        # The question and its answer are shown together when the answer comes within
        # SHOW_PENDING_AFTER_S (most local answers): one layout instead of two. Messages the worker
        # posts to the view meanwhile wait in its queue until it is mounted.
        self._unshown = (question, view, text if typed else None)
        self._ask_in_flight = True
        self._ask_worker = self.run_worker(self._ask(text, view), group="ask", exit_on_error=False)
        self.set_timer(SHOW_PENDING_AFTER_S, self._show_asked)

    def _show_asked(self) -> None:
        """Show the question being answered and its (pending or settled) answer, once."""
        if self._unshown is not None:
            question, view, typed = self._unshown
            self._unshown = None
            if typed is not None and self.prompt.value == typed:
                self.prompt.value = ""
            self.conversation.add_exchange(question, view)

    async def _ask(self, text: str, view: AnswerView) -> None:
        """The ask worker: streams fragments to `view`, then posts the outcome."""
        assert self.engine is not None

        def on_text(fragment: str) -> None:
            view.post_message(AnswerView.Fragment(fragment))

        try:
            # The local answer shows at once; a spot check's verdict follows as QueryVerified.
            result = await self.engine.ask(text, conversation_id=self.conversation_id,
                                           history=list(self.history), on_text=on_text,
                                           spot_check="background")
        except asyncio.CancelledError:
            view.post_message(AnswerView.Settled("cancelled", "cancelled", "cancelled"))
            self.post_message(msg.AskFinished(text, None, view))
            raise
        except Exception as exc:  # the engine should not raise; if it does, say so in one line
            result = AskResult(query=text, error=error_line(exc))
        view.post_message(AnswerView.Settled.from_result(result))
        self.post_message(msg.AskFinished(text, result, view))

    def on_ask_finished(self, message: msg.AskFinished) -> None:
        if self._unshown is not None and message.result is not None and isinstance(message.view, AnswerView):
            message.view.preset(AnswerView.Settled.from_result(message.result))  # drawn settled at once
        self._show_asked()
        self._ask_in_flight = False
        result = message.result
        if result is not None and result.query_id is not None and isinstance(message.view, AnswerView):
            message.view.query_id = result.query_id
        if result is not None and result.answer:
            self.history += [("user", result.query), ("assistant", result.answer)]

    # ---------------------------------------------------------------- teaching
    def start_teaching(self, topic: str | None = None) -> None:
        """Start an active-teaching session; its text streams into the conversation."""
        if not self._need_engine() or self._teaching:
            return
        title = f"teaching: {topic}" if topic else "teaching"
        view = self.conversation.add_answer(badge="teacher", state="teacher", meta=f"{title}…")
        self._teach_stopping = False
        self._teach_worker = self.run_worker(self._teach(topic, view), group="teach", exit_on_error=False)
        self.header.activity = self._activity()

    async def _teach(self, topic: str | None, view: AnswerView) -> None:
        assert self.engine is not None

        def on_text(fragment: str) -> None:
            view.post_message(AnswerView.Fragment(fragment))

        try:
            summary = await self.engine.teach(rounds=1, topic=topic, on_text=on_text)
        except asyncio.CancelledError:
            view.post_message(AnswerView.Settled("teacher", "cancelled", "teaching stopped"))
            self.post_message(msg.TeachFinished(stopped=True))
            raise
        except Exception as exc:
            view.post_message(AnswerView.Settled("teacher", "error", "teaching failed", error=error_line(exc)))
            self.post_message(msg.TeachFinished(error=error_line(exc)))
            return
        meta = join_nonempty([plural(summary.iterations, "turn"), plural(summary.tool_calls, "tool call"),
                              teach_outcome(summary.stopped_because)])
        view.post_message(AnswerView.Settled("teacher", "teacher", meta))
        self.post_message(msg.TeachFinished(summary=meta))

    def on_teach_finished(self, message: msg.TeachFinished) -> None:
        self._teach_stopping = False
        # Calls the session left running (their end never came) end here, unless a slash
        # command's tool call is still going.
        if not any(w.group == "tools" and not w.is_finished for w in self.workers):
            self.tool_log.settle_open("cancelled" if message.stopped else "ended without a result")
        self.header.activity = self._activity()
        run = self.metrics.progress.run_id
        if message.stopped:
            text = "Teaching stopped."
            if run is not None:
                text += f" Training run #{run} goes on; esc cancels it."
            self.conversation.add_notice("information", text)
            self._toast(text, title="Teaching")
        elif message.error:
            self._toast(f"Teaching failed: {message.error}", title="Teaching", severity="error")
        else:
            self._toast(f"Teaching round done: {message.summary}", title="Teaching")

    # ---------------------------------------------------------- tools, stats
    def _call_tool(self, name: str, tool_input: dict[str, Any], title: str) -> None:
        if not self._need_engine():
            return
        self.conversation.add_user(title)
        view = self.conversation.add_answer(badge="tool", state="pending", meta=f"{name}…")
        self.run_worker(self._tool(name, tool_input, view), group="tools", exit_on_error=False)

    async def _tool(self, name: str, tool_input: dict[str, Any], view: AnswerView) -> None:
        assert self.engine is not None
        try:
            registry = self.engine.tool_registry()
        except Exception as exc:
            view.post_message(AnswerView.Settled(
                "tool", "error", name, error=f"The teaching tools are not available yet ({error_line(exc)})."))
            return
        try:
            result = await registry.call(name, tool_input)
        except Exception as exc:
            view.post_message(AnswerView.Settled("tool", "error", name, error=error_line(exc)))
            return
        if result.is_error:
            view.post_message(AnswerView.Settled("tool", "error", name, error=result.text))
        else:
            view.post_message(AnswerView.Settled("tool", "tool", name, text=result.text, plain=True))

    def _show_stats_answer(self) -> None:
        if not self._need_engine():
            return
        self.conversation.add_user("/stats")
        view = self.conversation.add_answer(badge="stats", state="pending", meta="reading…")
        self.run_worker(self._stats_answer(view), group="tools", exit_on_error=False)

    async def _stats_answer(self, view: AnswerView) -> None:
        assert self.engine is not None
        try:
            stats = await self.engine.stats()
        except Exception as exc:
            view.post_message(AnswerView.Settled("stats", "error", "", error=error_line(exc)))
            return
        self.post_message(msg.StatsFetched(stats))
        view.post_message(AnswerView.Settled("stats", "tool", "rates, queue, runs", text=stats_text(stats),
                                             plain=True))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.conversation.add_notice("error", error_line(error) if error else "a background task failed")

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

    def copy_last(self, code: bool = False) -> None:
        """Copy the last answer, or (`code`) the last code block of the conversation."""
        answers = [v for v in self.conversation.query(AnswerView) if v.text.strip()]
        if code:
            blocks = [b for v in answers for b in code_blocks(v.text)]
            if not blocks:
                self._toast("No code block in this conversation yet.", title="Copy", severity="warning")
                return
            self.copy_text(blocks[-1], "code block")
        elif not answers:
            self._toast("No answer to copy yet.", title="Copy", severity="warning")
        else:
            self.copy_text(answers[-1].text, "answer")

    def action_search(self, text: str = "") -> None:
        """Open the search bar (with `text` to look for)."""
        bar = self.query_one(SearchBar)
        self.action_show_pane_only("chat")
        bar.open()
        if text:
            bar.query_one(Input).value = text

    def on_search_bar_changed(self, message: SearchBar.Changed) -> None:
        self._matches = self.conversation.find(message.query)
        self.conversation.show_matches(self._matches)
        self._match = len(self._matches) - 1
        self._show_match()

    def on_search_bar_step(self, message: SearchBar.Step) -> None:
        if self._matches:
            self._match = (self._match - message.delta) % len(self._matches)  # +1: older
        self._show_match()

    def _show_match(self) -> None:
        bar = self.query_one(SearchBar)
        if self._matches:
            self.conversation.select(self._matches[self._match])
            bar.show_count(self._match, len(self._matches))
        else:
            bar.show_count(None, 0)

    def on_search_bar_closed(self, message: SearchBar.Closed) -> None:
        self._matches = []
        self.conversation.show_matches([])
        self.conversation.select(None, scroll=False)
        self.prompt.focus()

    # ------------------------------------------------------ export, history
    @work(group="export", exit_on_error=False)
    async def export_conversation(self, fmt: str = "md", path: str | None = None) -> None:
        """Write the conversation as Markdown or JSON (to the data dir's exports/ by default)."""
        from shammah_tui.ui.export import conversation_json, conversation_markdown, export_path, write_export

        if not self._need_engine() or self.conversation_id is None:
            return
        assert self.engine is not None
        store, conversation_id = self.engine.store, self.conversation_id
        try:
            messages = await store.messages(conversation_id, limit=1_000_000)
            if not messages:
                self.post_message(msg.Exported(None, 0, "Nothing to export yet: this conversation is empty."))
                return
            summary = await store.conversation(conversation_id)
            title = summary.title if summary is not None else ""
            now = time.time()
            target = export_path(self.data_dir, conversation_id, fmt, path, now)
            build = conversation_json if fmt == "json" else conversation_markdown
            written = await asyncio.to_thread(write_export, target, build(conversation_id, title, messages, now))
        except Exception as exc:
            self.post_message(msg.Exported(None, 0, f"Export failed: {error_line(exc)}"))
            return
        self.post_message(msg.Exported(written, len(messages)))

    def on_exported(self, message: msg.Exported) -> None:
        if message.path is None:
            self.conversation.add_notice("warning", message.error or "Nothing exported.")
            return
        text = f"Exported {plural(message.count, 'message')} to {message.path}"
        self.conversation.add_notice("information", text)
        self._toast(text, title="Export")

    def action_export(self, arg: str = "md") -> None:
        """Export the conversation (`md` or `json`, then an optional path; else to the data dir's exports/)."""
        from shammah_tui.ui.export import parse_export_args

        try:
            fmt, path = parse_export_args(arg)
        except ValueError as exc:
            self.conversation.add_notice("warning", str(exc))
            return
        self.export_conversation(fmt, path)

    def action_open_conversations(self, number: str = "") -> None:
        """Reopen conversation `number`; without one, list past conversations to pick from."""
        if number:
            self.open_conversation(int(number.lstrip("#")))
        else:
            self.pick_conversation()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def pick_conversation(self) -> None:
        """List past conversations; picking one reopens it."""
        from shammah_tui.ui.screens.conversations import ConversationsScreen

        if not self._need_engine():
            return
        assert self.engine is not None
        rows = await self.engine.store.conversations(limit=200)
        chosen = await self.app.push_screen_wait(ConversationsScreen(rows, current=self.conversation_id))
        if chosen is not None:
            await self._load_conversation(chosen)

    @work(group="history", exclusive=True, exit_on_error=False)
    async def open_conversation(self, conversation_id: int) -> None:
        """Reopen a stored conversation: its messages, and its history as the engine's context."""
        if self._need_engine():
            await self._load_conversation(conversation_id)

    async def _load_conversation(self, conversation_id: int) -> None:
        """Read a conversation and post it to be shown (ConversationLoaded), or say it is not there."""
        assert self.engine is not None
        store = self.engine.store
        if await store.conversation(conversation_id) is None:
            self.post_message(msg.CoreEvent.of(Notice("warning", f"There is no conversation #{conversation_id}.")))
            return
        messages = await store.messages(conversation_id, limit=200)
        self.post_message(msg.ConversationLoaded(conversation_id, messages))

    async def on_conversation_loaded(self, message: msg.ConversationLoaded) -> None:
        if self._asking and self._ask_worker is not None:
            self._ask_worker.cancel()
        previous = self.conversation_id
        await self.conversation.clear()
        self.conversation_id = message.conversation_id
        self.history = [(m.role, m.text) for m in message.messages if m.role in ("user", "assistant")]
        self.conversation.restore(message.messages)
        if previous is not None and previous != message.conversation_id:
            self._left_conversation = previous
        self.conversation.add_notice("information", f"Conversation #{message.conversation_id} reopened "
                                                    f"({plural(len(message.messages), 'message')}).")

    # ------------------------------------------------------------ settings
    def _set_command(self, arg: str) -> None:
        if not arg:
            settings = self.engine.settings if self.engine is not None else None
            self.conversation.add_user("/set")
            view = self.conversation.add_answer(badge="settings", state="pending", meta="")
            view.post_message(AnswerView.Settled("settings", "tool", "/set KEY VALUE changes one",
                                                 text=settings_text(settings), plain=True))
            return
        key, _, value = arg.partition(" ")
        if key not in EDITABLE or not value.strip():
            known = ", ".join(EDITABLE)
            self.conversation.add_notice("warning", f"/set takes a setting and a value, e.g. /set spot_check_rate "
                                                    f"0.2. Settings: {known}.")
            return
        self.change_setting(key, value.strip())

    @work(group="settings", exit_on_error=False)
    async def change_setting(self, key: str, value: Any) -> None:
        """Save one setting to settings.toml (comments kept) and apply it to the engine if it can."""
        from shammah_tui.paths import SETTINGS_NAME
        from shammah_tui.settings import update_settings_file

        if self.data_dir is None:
            if key != "theme":  # a theme is shown at once; only where nothing can be saved is it not kept
                self.post_message(msg.SettingChanged(key, None, False, "no data directory to save settings in"))
            return
        try:
            saved = await asyncio.to_thread(update_settings_file, self.data_dir / SETTINGS_NAME, key, value)
            new_value = setting_value(saved, key)
            applied = key == "theme"  # the app shows it already
            if self.engine is not None:
                # Only the changed key: the rest may differ from the file (the command line's choices).
                self.engine.apply_settings(dataclasses.replace(self.engine.settings, **{key: new_value}))
                applied = True
        except Exception as exc:
            self.post_message(msg.SettingChanged(key, None, False, error_line(exc)))
            return
        self.post_message(msg.SettingChanged(key, new_value, applied))

    def on_setting_changed(self, message: msg.SettingChanged) -> None:
        from shammah_tui.ui.editable_settings import format_value

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
        self._stats_dirty = True

    # ----------------------------------------------------------------- actions
    # The footer's bindings are static on purpose: refreshing them rebuilds the footer (~20 ms).

    def action_train(self) -> None:
        """Start a training run on the queued examples."""
        if not self._need_engine():
            return
        assert self.engine is not None
        if self.engine.training:
            self.conversation.add_notice("information", "A training run is already going (Esc cancels it).")
            return
        task = self.engine.start_training("manual")
        if task is not None:
            task.add_done_callback(self._training_task_done)

    def _training_task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.post_message(msg.CoreEvent.of(Notice("error", f"Training failed: {error_line(exc)}")))

    def action_cancel_training(self) -> None:
        """Cancel the training run, if one is going."""
        if self.engine is not None and self.engine.cancel_training():
            self.conversation.add_notice("information", "Cancelling the training run…")

    def action_teach(self) -> None:
        """Start teaching (no topic)."""
        self.start_teaching(None)

    def action_toggle_teaching(self, topic: str = "") -> None:
        """Start teaching (on `topic`), or stop the session that runs."""
        if self._teaching and not self._teach_stopping:
            self.action_stop_teaching()
        elif not self._teaching:
            self.start_teaching(topic or None)

    def action_stop_teaching(self) -> None:
        """Stop the teaching session (a training run it started goes on; esc then cancels it)."""
        if self._teach_worker is not None and not self._teach_worker.is_finished:
            self._teach_stopping = True
            self._teach_worker.cancel()

    def action_cancel(self) -> None:
        """Cancel the answer in flight, else teaching, else the training run."""
        if self._asking and self._ask_worker is not None and not self._ask_worker.is_finished:
            self._ask_worker.cancel()
        elif self._teaching and not self._teach_stopping:
            self.action_stop_teaching()
        elif self.engine is not None and self.engine.training:
            self.action_cancel_training()
        elif self.query_one(SearchBar).display:
            self.query_one(SearchBar).action_close()

    async def action_clear(self) -> None:
        """Start a new conversation (the old one stays in the store: ctrl+o or /open brings it back)."""
        if self._asking and self._ask_worker is not None:
            self._ask_worker.cancel()
        if not self.history and not self.conversation.items:
            self.conversation.add_notice("information", "This conversation is already empty.")
            return
        previous = self.conversation_id
        await self.conversation.clear()
        self.history = []
        if self.engine is not None:
            self.conversation_id = await self.engine.store.new_conversation()
        if previous is not None:
            self._left_conversation = previous
            self._toast(f"New conversation. The last one (#{previous}) is kept: /open {previous}, ctrl+o, "
                        "or “Undo clear” in ctrl+p brings it back.", title="Cleared")

    def action_undo_clear(self) -> None:
        """Reopen the conversation left by the last clear (or reopen)."""
        if self._left_conversation is None:
            self._toast("No earlier conversation to go back to.", title="Undo", severity="warning")
            return
        self.open_conversation(self._left_conversation)

    def action_show_pane(self, pane: str) -> None:
        """Show (on narrow terminals) and focus a pane; f2 on the input goes to the messages."""
        if pane not in PANES:
            return
        if pane == "chat" and self.prompt.has_focus and self.pane == "chat":
            self.conversation.focus()
            return
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
