"""The session the main screen shows: its state, and the work it drives on the engine.

No widget here. Each piece of work is a coroutine the screen runs as a worker; it reports by
posting typed messages to the screen (`post`), and an answer being written by posting
`AnswerView.Fragment` / `AnswerView.Settled` to that answer's own `reply`. So the session runs
as well under a test with two lists as under the app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal, Protocol

from textual.message import Message

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.core.events import AskResult, Notice
from shammah_tui.formatting import error_line, join_nonempty, plural, stats_text, teach_outcome
from shammah_tui.core.kinds import MODELS
from shammah_tui.core.records import ConversationSummary
from shammah_tui.ui import messages as msg
from shammah_tui.ui.editable_settings import AT_NEXT_START, EDITABLE, plain_problem, setting_value
from shammah_tui.ui.engine_api import EngineLike
from shammah_tui.ui.widgets.answer import AnswerView

#: Where a message goes: the screen's (or an answer view's) `post_message`.
Post = Callable[[Message], object]


class Job(Protocol):
    """Work running in the background (under the app, a Textual worker)."""

    @property
    def is_finished(self) -> bool: ...
    def cancel(self) -> object: ...


#: Starts `work` in the background, in a named group: under the app, the screen's `run_worker`.
Runner = Callable[[Coroutine[Any, Any, None], str], Job]
#: What `Session.cancel` stopped: the answer, teaching, the training run; or that a run would not
#: stop (`busy`), or nothing was going ("").
Cancelled = Literal["answer", "teaching", "training", "busy", ""]

#: Least seconds (on the injected clock) between two engine.stats() reads: it scans the store.
STATS_MIN_INTERVAL = 2.0
#: Store values (`Store.get_value`) that carry the session over a restart: the conversation open
#: at quit (`--continue` reopens it), and the lines sent from the input (↑ recalls them).
OPEN_CONVERSATION_KEY = "ui.open_conversation"
INPUT_HISTORY_KEY = "ui.input_history"
#: Most input lines kept over a restart.
INPUT_HISTORY = 100
#: Flushes a run may go on showing after the engine says none is running, before the UI ends it
#: itself (its TrainingFinished may still be queued behind the flush that noticed).
ORPHAN_FLUSHES = 8


class Session:
    """One user's session on the engine: the conversation, its context, and what runs."""

    def __init__(self, *, clock: Callable[[], float], post: Post, run: Runner, data_dir: Path | None = None) -> None:
        self._clock = clock
        self._post = post
        self._run = run
        self.data_dir = data_dir
        """The data directory (exports and settings.toml go there), when known."""
        self.engine: EngineLike | None = None
        """The engine, once open."""
        self.conversation_id: int | None = None
        """The conversation new messages are stored under."""
        self.history: list[tuple[str, str]] = []
        """(role, text) of the conversation so far, given to the engine as context."""
        self.left_conversation: int | None = None
        """The conversation the last clear (or reopen) left, for undo."""
        self.inputs: list[str] = []
        """The lines sent from the input, oldest first (kept over a restart)."""
        self._auto_train_held = False
        """The user cancelled a run: questions start none by themselves for a while."""
        self._held_at: int | None = None
        """The queue's length when the hold began (read at the next question)."""
        self._restoring: asyncio.Event | None = None
        """Set once `restore` has chosen the conversation (a question waits for it)."""
        self.asking = False
        """From a question's start until its AskFinished is handled."""
        self.teach_stopping = False
        """Teaching was told to stop and has not finished yet."""
        self._ask_job: Job | None = None
        self._teach_job: Job | None = None
        self.stats_dirty = False
        """Something changed that the stats show."""
        self._stats_busy = False
        self._stats_at: float | None = None
        self._stats_failed = False
        self._orphan_flushes = 0

    def attach(self, engine: EngineLike) -> None:
        self.engine = engine
        if self.data_dir is None:
            self.data_dir = engine.data_dir

    def _engine(self) -> EngineLike:
        if self.engine is None:
            raise RuntimeError("the engine is not open yet")
        return self.engine

    # ------------------------------------------------------------------ restore
    async def restore(self, *, resume: bool = False) -> None:
        """Read what the store remembers; posts SessionRestored.

        A new conversation, unless `resume` (`--continue`): then the one open at the last quit
        (else the newest). The session shows it from here on, so a question asked before the
        rest is read is stored in it.
        """
        store = self._engine().store
        self._restoring = restoring = asyncio.Event()
        try:
            conversation_id = await self._opening_conversation(resume)
            messages = await store.messages(conversation_id, limit=100)
            if self.conversation_id is None:
                self.show_conversation(conversation_id, messages)
        finally:
            restoring.set()
        try:
            inputs = [str(line) for line in json.loads(await store.get_value(INPUT_HISTORY_KEY) or "[]")]
        except ValueError:
            inputs = []
        self.inputs = inputs[-INPUT_HISTORY:] + self.inputs
        runs = await store.runs(limit=20)
        done = [r for r in runs if r.status == "done"]
        self._post(msg.SessionRestored(
            conversation_id=conversation_id,
            messages=messages,
            source_counts=await store.source_counts(),
            recent_sources=await store.recent_sources(60),
            losses={m: await store.loss_history(m, limit=3000) for m in MODELS},
            last_run=done[-1] if done else None,
            tool_calls=await store.tool_calls(limit=100),
            skills=await store.skill_history(limit=60),
            requests=await store.requests(limit=200),
            inputs=inputs,
        ))
        self.stats_dirty = True

    async def _opening_conversation(self, resume: bool) -> int:
        store = self._engine().store
        latest = await store.latest_conversation()
        if resume:
            saved = await store.get_value(OPEN_CONVERSATION_KEY)
            if saved and saved.isdigit() and await store.conversation(int(saved)) is not None:
                return int(saved)
            if latest is not None:
                return latest
        elif latest is not None and not await store.messages(latest, limit=1):
            return latest  # the last start's conversation, still empty: no pile of empty ones
        return await store.new_conversation()

    async def save(self) -> None:
        """Store what a restart carries over: the open conversation and the input's lines."""
        store = self._engine().store
        if self.conversation_id is not None:
            await store.set_value(OPEN_CONVERSATION_KEY, str(self.conversation_id))
        await store.set_value(INPUT_HISTORY_KEY, json.dumps(self.inputs[-INPUT_HISTORY:]))

    def remember_input(self, line: str) -> None:
        """A line sent from the input."""
        if line and (not self.inputs or self.inputs[-1] != line):
            self.inputs.append(line)
            del self.inputs[:-INPUT_HISTORY]

    def show_conversation(self, conversation_id: int, messages: list[msg.StoredMessage]) -> None:
        """`conversation_id` is the one shown now, with its `messages` as the engine's context."""
        self.conversation_id = conversation_id
        self.history = [(m.role, m.text) for m in messages if m.role in ("user", "assistant")]

    # ---------------------------------------------------------------------- ask
    def start_ask(self, text: str, reply: Post) -> None:
        """Answer `text` in the background (one question at a time: see `asking`)."""
        self.asking = True
        self._ask_job = self._run(self.ask(text, reply), "ask")

    def cancel_ask(self) -> bool:
        """Cancel the answer in flight; False when none is."""
        if not self.asking or self._ask_job is None or self._ask_job.is_finished:
            return False
        self._ask_job.cancel()
        return True

    def cancel(self) -> Cancelled:
        """Cancel the answer in flight, else teaching, else the training run."""
        if self.cancel_ask():
            return "answer"
        if self.teaching and not self.teach_stopping:
            self.stop_teaching()
            return "teaching"
        if self.engine is not None and self.engine.training:
            return "training" if self.cancel_training() else "busy"
        return ""

    async def ask(self, text: str, reply: Post) -> None:
        """Answer `text`: streams fragments to `reply`, settles it, then posts AskFinished."""
        engine = self._engine()

        def on_text(fragment: str) -> None:
            reply(AnswerView.Fragment(fragment))

        try:
            if self.conversation_id is None:
                # Asked before the session knew its conversation (the store still being read while
                # the models load): wait for it, so that the question is stored in one.
                if self._restoring is not None:
                    await self._restoring.wait()
                if self.conversation_id is None:
                    self.conversation_id = await engine.store.new_conversation()
            # The local answer shows at once; a spot check's verdict follows as QueryVerified.
            question = Question(text, conversation_id=self.conversation_id, history=tuple(self.history))
            held = await self._auto_train_held_now()
            policy = AskPolicy(auto_train="off" if held else "background", spot_check="background")
            result = await engine.ask(question, policy, on_text=on_text)
        except asyncio.CancelledError:
            reply(AnswerView.Settled("cancelled", "cancelled", "cancelled"))
            self._post(msg.AskFinished(text, None))
            raise
        except Exception as exc:  # the engine should not raise; if it does, say so in one line
            result = AskResult(query=text, error=error_line(exc))
        reply(AnswerView.Settled.from_result(result))
        self._post(msg.AskFinished(text, result))

    def answered(self, result: AskResult | None) -> None:
        """A question is done; an answer joins the context."""
        self.asking = False
        if result is not None and result.answer:
            self.history += [("user", result.query), ("assistant", result.answer)]

    # ----------------------------------------------------------------- teaching
    @property
    def teaching(self) -> bool:
        return self._teach_job is not None and not self._teach_job.is_finished

    def start_teaching(self, topic: str | None, reply: Post) -> None:
        """Teach in the background; its text streams to `reply`."""
        self.teach_stopping = False
        self._teach_job = self._run(self.teach(topic, reply), "teach")

    def stop_teaching(self) -> None:
        """Stop teaching (a training run it started goes on)."""
        if self._teach_job is not None and not self._teach_job.is_finished:
            self.teach_stopping = True
            self._teach_job.cancel()

    async def teach(self, topic: str | None, reply: Post) -> None:
        """One teaching session; its text streams to `reply`. Posts TeachFinished."""
        engine = self._engine()

        def on_text(fragment: str) -> None:
            reply(AnswerView.Fragment(fragment))

        try:
            summary = await engine.teach(rounds=1, topic=topic, on_text=on_text)
        except asyncio.CancelledError:
            reply(AnswerView.Settled("teacher", "cancelled", "teaching stopped"))
            self._post(msg.TeachFinished(stopped=True))
            raise
        except Exception as exc:
            reply(AnswerView.Settled("teacher", "error", "teaching failed", error=error_line(exc)))
            self._post(msg.TeachFinished(error=error_line(exc)))
            return
        meta = join_nonempty([plural(summary.iterations, "turn"), plural(summary.tool_calls, "tool call"),
                              teach_outcome(summary.stopped_because)])
        reply(AnswerView.Settled("teacher", "teacher", meta))
        self._post(msg.TeachFinished(summary=meta))

    # ----------------------------------------------------------------- training
    def start_training(self) -> bool:
        """Start a run on the queued examples; False when one is already going."""
        engine = self._engine()
        if engine.training:
            return False
        self._auto_train_held = False
        task = engine.start_training("manual")
        if task is not None:
            task.add_done_callback(self._training_done)
        return True

    def _training_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._post(msg.CoreEvent.of(Notice("error", f"Training failed: {error_line(exc)}")))

    def cancel_training(self) -> bool:
        """Cancel the training run; False when none is going.

        The queue still holds the batch the run was for, so the next question would start it again
        at once: until another batch is queued (or the user trains), none starts by itself.
        """
        if self.engine is None or not self.engine.cancel_training():
            return False
        self._auto_train_held, self._held_at = True, None
        return True

    async def _auto_train_held_now(self) -> bool:
        """Whether a question may not start a run yet (see `cancel_training`)."""
        if not self._auto_train_held:
            return False
        engine = self._engine()
        queued = (await engine.queue_counts())["queued"]
        if self._held_at is None:
            self._held_at = queued
        if queued < self._held_at + engine.settings.batch_size:
            return True
        self._auto_train_held = False
        return False

    def run_orphaned(self, shown_running: bool) -> bool:
        """Called each flush: whether a run shown as running has been gone from the engine long
        enough (its task cancelled from outside, its report never coming) to end it here."""
        if not shown_running or self.engine is None or self.engine.training:
            self._orphan_flushes = 0
            return False
        self._orphan_flushes += 1
        if self._orphan_flushes < ORPHAN_FLUSHES:
            return False
        self._orphan_flushes = 0
        return True

    # ------------------------------------------------------------- tools, stats
    async def call_tool(self, name: str, tool_input: dict[str, Any], reply: Post) -> None:
        """Call one teaching tool; its result settles `reply`."""
        try:
            registry = self._engine().tool_registry()
        except Exception as exc:
            reply(AnswerView.Settled(
                "tool", "error", name, error=f"The teaching tools are not available yet ({error_line(exc)})."))
            return
        try:
            result = await registry.call(name, tool_input)
        except Exception as exc:
            reply(AnswerView.Settled("tool", "error", name, error=error_line(exc)))
            return
        if result.is_error:
            reply(AnswerView.Settled("tool", "error", name, error=result.text))
        else:
            reply(AnswerView.Settled("tool", "tool", name, text=result.text, plain=True))

    async def stats_answer(self, reply: Post) -> None:
        """The stats as an answer (`/stats`); the metrics get them too (StatsFetched)."""
        try:
            stats = await self._engine().stats()
        except Exception as exc:
            reply(AnswerView.Settled("stats", "error", "", error=error_line(exc)))
            return
        self._post(msg.StatsFetched(stats))
        reply(AnswerView.Settled("stats", "tool", "rates, queue, runs", text=stats_text(stats), plain=True))

    def stats_due(self) -> bool:
        """Whether to read the stats now: something changed, no read is going, and the last was
        long enough ago. True marks a read as started (fetch_stats ends it)."""
        if not self.stats_dirty or self._stats_busy or self.engine is None:
            return False
        now = self._clock()
        if self._stats_at is not None and now - self._stats_at < STATS_MIN_INTERVAL:
            return False
        self.stats_dirty = False
        self._stats_busy = True
        self._stats_at = now
        return True

    async def fetch_stats(self) -> None:
        """`engine.stats()`; posts StatsFetched (a failure is said once)."""
        try:
            if self.engine is not None:
                self._post(msg.StatsFetched(await self.engine.stats()))
        except Exception as exc:
            if not self._stats_failed:
                self._stats_failed = True
                self._post(msg.CoreEvent.of(Notice("warning", f"Stats unavailable: {error_line(exc)}")))
        finally:
            self._stats_busy = False

    # ---------------------------------------------------------- conversations
    async def export(self, fmt: str = "md", path: str | None = None) -> None:
        """Write the conversation as Markdown or JSON (to the data dir's exports/ by default)."""
        from shammah_tui.ui.export import conversation_json, conversation_markdown, export_path, write_export

        if self.conversation_id is None:
            return
        store, conversation_id = self._engine().store, self.conversation_id
        try:
            messages = await store.messages(conversation_id, limit=1_000_000)
            if not messages:
                self._post(msg.Exported(None, 0, "Nothing to export yet: this conversation is empty."))
                return
            summary = await store.conversation(conversation_id)
            title = summary.title if summary is not None else ""
            now = time.time()
            target = export_path(self.data_dir, conversation_id, fmt, path, now)
            build = conversation_json if fmt == "json" else conversation_markdown
            written = await asyncio.to_thread(write_export, target, build(conversation_id, title, messages, now))
        except Exception as exc:
            self._post(msg.Exported(None, 0, f"Export failed: {error_line(exc)}"))
            return
        self._post(msg.Exported(written, len(messages)))

    async def conversations(self) -> list[ConversationSummary]:
        """Past conversations, newest first."""
        return await self._engine().store.conversations(limit=200)

    async def load_conversation(self, conversation_id: int) -> None:
        """Read a conversation; posts ConversationLoaded, or a notice that it is not there."""
        store = self._engine().store
        if await store.conversation(conversation_id) is None:
            self._post(msg.CoreEvent.of(Notice("warning", f"There is no conversation #{conversation_id}.")))
            return
        messages = await store.messages(conversation_id, limit=200)
        self._post(msg.ConversationLoaded(conversation_id, messages))

    def reopened(self, conversation_id: int, messages: list[msg.StoredMessage]) -> None:
        """A loaded conversation is shown now; the one it replaces can be gone back to."""
        previous = self.conversation_id
        self.show_conversation(conversation_id, messages)
        if previous is not None and previous != conversation_id:
            self.left_conversation = previous

    async def new_conversation(self) -> int | None:
        """Start a new conversation (the old one stays in the store); returns the old one's id."""
        previous = self.conversation_id
        self.history = []
        if self.engine is not None:
            self.conversation_id = await self.engine.store.new_conversation()
        if previous is not None:
            self.left_conversation = previous
        return previous

    # ----------------------------------------------------------------- settings
    @staticmethod
    def parse_set(arg: str) -> tuple[str, str] | str:
        """(key, value) from `/set key value`, or why it cannot be set."""
        key, _, value = arg.strip().partition(" ")
        if key not in EDITABLE:
            return f"Unknown setting {key!r}. Settings: {', '.join(EDITABLE)}."
        if not value.strip():
            return f"/set {key} takes a value, e.g. /set spot_check_rate 0.2."
        return key, value.strip()

    async def change_setting(self, key: str, value: Any) -> None:
        """Save one setting to settings.toml (comments kept) and apply it to the engine; posts
        SettingChanged."""
        from shammah_tui.paths import SETTINGS_NAME
        from shammah_tui.settings import SettingsError, update_settings_file

        if self.data_dir is None:
            if key != "theme":  # a theme is shown at once; only where nothing can be saved is it not kept
                self._post(msg.SettingChanged(key, None, False, "no data directory to save settings in"))
            return
        try:
            saved = await asyncio.to_thread(update_settings_file, self.data_dir / SETTINGS_NAME, key, value)
            new_value = setting_value(saved, key)
            applied = key == "theme"  # the app shows it already
            if self.engine is not None:
                # Only the changed key: the rest may differ from the file (the command line's choices).
                self.engine.apply_settings(dataclasses.replace(self.engine.settings, **{key: new_value}))
                applied = key not in AT_NEXT_START
        except SettingsError as exc:
            self._post(msg.SettingChanged(key, None, False, plain_problem(str(exc), key, value)))
            return
        except Exception as exc:
            self._post(msg.SettingChanged(key, None, False, error_line(exc)))
            return
        self.stats_dirty = True
        self._post(msg.SettingChanged(key, new_value, applied))
