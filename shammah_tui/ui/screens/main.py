"""The main screen: conversation, tool-call log and metrics, and the coordinator between them.

Engine events arrive as messages (see `ui.messages`); handlers here own all UI
state and pass data down to the widgets. Engine calls that take time run in
async workers on the UI loop (the engine pushes torch work to threads); those
workers only post messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs
from textual.worker import Worker, WorkerState

from shammah_tui.events import (
    AskResult, EngineEvent, ModelsLoaded, Notice, QueryAnswered, QueryVerified, ToolCalled, TrainingFinished,
    TrainingStarted, TrainingStep,
)
from shammah_tui.formatting import describe_models, error_line, stats_text
from shammah_tui.kinds import MODELS
from shammah_tui.ui import messages as msg
from shammah_tui.ui.slash import SlashCommand, SlashError, parse_slash
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.conversation import Conversation
from shammah_tui.ui.widgets.header_bar import HeaderBar
from shammah_tui.ui.widgets.metrics import MetricsPane
from shammah_tui.ui.widgets.prompt import PromptInput
from shammah_tui.ui.widgets.tool_log import ToolLog

if TYPE_CHECKING:
    from shammah_tui.ui.engine_api import EngineLike

#: Below this many columns the panes become tabs.
NARROW_WIDTH = 120
#: Seconds between flushes of the tool log and the run's progress in the header.
FLUSH_INTERVAL = 0.25
#: Least seconds (on the injected clock) between two engine.stats() reads: it scans the store.
STATS_MIN_INTERVAL = 2.0
#: Panes and the widget each one focuses.
PANES = {"chat": "#prompt", "tools": "#tool-table", "metrics": "#metrics"}
#: Longest question shown in full in the conversation (the engine judges the real limit).
SHOWN_QUERY_CHARS = 4000


class MainScreen(Screen[None]):
    """Conversation, tool calls and metrics; narrow terminals show one pane at a time."""

    # main.tcss is loaded by ShammahApp.CSS_PATH: Textual does not read CSS_PATH of the default screen.
    AUTO_FOCUS = "#prompt"

    BINDINGS = [
        Binding("ctrl+t", "train", "Train", tooltip="Train on the queued examples now"),
        Binding("ctrl+g", "toggle_teaching", "Teach/stop", tooltip="Start or stop a teaching session"),
        Binding("escape", "cancel", "Cancel", tooltip="Cancel the answer, teaching or training run"),
        Binding("ctrl+l", "clear", "Clear", tooltip="Start a new conversation"),
        Binding("f2", "show_pane('chat')", "Chat", show=False, tooltip="The conversation"),
        Binding("f3", "show_pane('tools')", "Tools", show=False, tooltip="The tool-call log"),
        Binding("f4", "show_pane('metrics')", "Metrics", show=False, tooltip="Rates, losses, training"),
    ]

    pane: reactive[str] = reactive("chat")
    """The pane shown on a narrow terminal (and focused by F2–F4)."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__(id="main")
        self._clock = clock
        self.engine: EngineLike | None = None
        """The engine, once open."""
        self.conversation_id: int | None = None
        """The conversation new messages are stored under."""
        self.history: list[tuple[str, str]] = []
        """(role, text) of the conversation so far, given to the engine as context."""
        self._unsubscribe: Callable[[], None] | None = None
        self._ask_worker: Worker[None] | None = None
        self._teach_worker: Worker[None] | None = None
        self._ask_in_flight = False
        self._stats_dirty = False
        self._stats_busy = False
        self._stats_at: float | None = None
        self._stats_failed = False
        self._run_triggers: dict[int, str] = {}
        self._mounted = False
        self._pending_attach: tuple[EngineLike, bool, Callable[[], None] | None] | None = None

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
        yield PromptInput(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
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

    # ------------------------------------------------------------ engine link
    def attach(self, engine: EngineLike, *, loading_models: bool,
               then: Callable[[], None] | None = None) -> None:
        """Start showing `engine`: subscribe to its events and restore the last session.

        `then` runs once subscribed (the app starts loading the models there, so
        no ModelsLoaded event can come before the screen listens).
        """
        if not self._mounted:
            self._pending_attach = (engine, loading_models, then)
            return
        self.engine = engine
        self.header.teacher = engine.teacher.label
        self.header.teacher_kind = getattr(engine.teacher, "kind", "")
        self.header.models_state = "ready" if engine.models_ready else ("loading" if loading_models else "off")
        self.metrics.progress.batch_size = int(getattr(engine.settings, "batch_size", 32) or 32)
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
        ))
        self._stats_dirty = True

    def on_session_restored(self, message: msg.SessionRestored) -> None:
        self.conversation_id = message.conversation_id
        self.history = [(m.role, m.text) for m in message.messages if m.role in ("user", "assistant")]
        self.conversation.restore(message.messages)
        self.metrics.restore(all_time=message.source_counts, recent=message.recent_sources,
                             losses=message.losses, last_run=message.last_run)
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
        self._run_triggers[event.run_id] = event.trigger
        self.metrics.run_began(event.run_id, event.trigger, event.total_steps)
        self.header.activity = self.metrics.progress.short_status()
        if event.trigger == "manual":
            self.conversation.add_notice("information", f"Training run #{event.run_id} started.")

    def _training_finished(self, event: TrainingFinished) -> None:
        summary = self.metrics.run_ended(event.run_id, event.report)
        self.header.activity = "teaching" if self._teaching else ""
        trigger = self._run_triggers.pop(event.run_id, "")
        if event.report.status != "done":
            self.conversation.add_notice("warning", summary)
        elif trigger == "manual":
            self.conversation.add_notice("information", summary)
        self._stats_dirty = True
        self.metrics.redraw()

    def on_stats_fetched(self, message: msg.StatsFetched) -> None:
        self.metrics.show_stats(message.stats)

    def on_tool_log_selected(self, message: ToolLog.Selected) -> None:
        from shammah_tui.ui.screens.tool_detail import ToolDetailScreen

        self.app.push_screen(ToolDetailScreen(message.call))

    # ------------------------------------------------------------ periodic work
    def flush(self) -> None:
        """Apply buffered tool-log rows and the run's progress; refresh the stats when something changed."""
        self.tool_log.flush()
        if self.metrics.progress.running:
            self.header.activity = self.metrics.progress.short_status()
        if self._stats_dirty and not self._stats_busy and self.engine is not None:
            now = self._clock()
            if self._stats_at is None or now - self._stats_at >= STATS_MIN_INTERVAL:
                self._stats_dirty = False
                self._stats_busy = True
                self._stats_at = now
                self.fetch_stats()

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
        prompt = self.query_one(PromptInput)
        prompt.value = ""
        if not line.strip():
            return
        prompt.remember(line)
        try:
            command = parse_slash(line)
        except SlashError as exc:
            self.conversation.add_notice("warning", str(exc))
            return
        if command is None:
            self.ask(line)
        else:
            await self.run_slash(command)

    async def run_slash(self, command: SlashCommand) -> None:
        """Run a parsed slash command."""
        if command.name == "help":
            await self.app.run_action("help")
        elif command.name == "clear":
            await self.action_clear()
        elif command.name == "train":
            self.action_train()
        elif command.name == "teach":
            if self._teaching:
                self.action_stop_teaching()
            else:
                self.start_teaching(command.arg or None)
        elif command.name == "stats":
            self._show_stats_answer()
        elif command.name == "analyze":
            self._call_tool("analyze_model", {}, "/analyze")
        elif command.name == "compare":
            self._call_tool("compare_responses", {"query": command.arg}, f"/compare {command.arg}")

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

    def ask(self, text: str) -> None:
        """Show the question and answer it in a worker."""
        if not self._need_engine():
            return
        if self._asking:
            self.conversation.add_notice("warning", "Still answering the last question (Esc cancels it).")
            return
        shown = text if len(text) <= SHOWN_QUERY_CHARS else (
            text[:SHOWN_QUERY_CHARS] + f"… ({len(text):,} characters)")
        self.conversation.add_user(shown)
        assert self.engine is not None
        meta = "thinking…" if self.engine.models_ready else "thinking… (waiting for the models to load)"
        view = self.conversation.add_answer(meta=meta)
        self._ask_in_flight = True
        self._ask_worker = self.run_worker(self._ask(text, view), group="ask", exit_on_error=False)

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
        self.header.activity = self.header.activity or "teaching"
        self._teach_worker = self.run_worker(self._teach(topic, view), group="teach", exit_on_error=False)

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
        else:
            meta = (f"{getattr(summary, 'iterations', 0)} turns · {getattr(summary, 'tool_calls', 0)} tool calls"
                    f" · {getattr(summary, 'stopped_because', 'done')}")
            view.post_message(AnswerView.Settled("teacher", "teacher", meta))
        self.post_message(msg.TeachFinished())

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
        if getattr(result, "is_error", False):
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
        view.post_message(AnswerView.Settled("stats", "tool", "engine.stats()", text=stats_text(stats), plain=True))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.conversation.add_notice("error", error_line(error) if error else "a background task failed")

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

    def cancel_training(self) -> None:
        """Cancel the training run, if one is going."""
        if self.engine is not None and self.engine.cancel_training():
            self.conversation.add_notice("information", "Cancelling the training run…")

    def action_teach(self) -> None:
        """Start teaching (no topic)."""
        self.start_teaching(None)

    def action_toggle_teaching(self) -> None:
        """Start teaching, or stop the session that runs."""
        if self._teaching:
            self.action_stop_teaching()
        else:
            self.start_teaching(None)

    def action_stop_teaching(self) -> None:
        """Stop the teaching session."""
        if self._teach_worker is not None:
            self._teach_worker.cancel()

    def action_cancel(self) -> None:
        """Cancel the answer in flight, else teaching, else the training run."""
        if self._asking and self._ask_worker is not None and not self._ask_worker.is_finished:
            self._ask_worker.cancel()
        elif self._teaching:
            self.action_stop_teaching()
        else:
            self.cancel_training()

    async def action_clear(self) -> None:
        """Start a new conversation (the old one stays in the store)."""
        if self._asking and self._ask_worker is not None:
            self._ask_worker.cancel()
        await self.conversation.clear()
        self.history = []
        if self.engine is not None:
            self.conversation_id = await self.engine.store.new_conversation()

    def action_show_pane(self, pane: str) -> None:
        """Show (on narrow terminals) and focus a pane."""
        if pane not in PANES:
            return
        self.pane = pane
        self.call_after_refresh(self._focus_pane, pane)

    def _focus_pane(self, pane: str) -> None:
        target = self.query(PANES[pane])
        if target:
            target.first().focus()

    def on_teach_finished(self, message: msg.TeachFinished) -> None:
        if self.header.activity == "teaching":
            self.header.activity = ""
        if message.stopped:
            self.conversation.add_notice("information", "Teaching stopped.")
