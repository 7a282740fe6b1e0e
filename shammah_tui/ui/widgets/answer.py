"""One answer in the conversation: a source badge, latency, verification, Markdown body.

The body streams: `Fragment` messages are appended through a `MarkdownStream`
(which merges fragments that come faster than it can render). `Settled` gives
the final state. Both messages are posted to the view by the worker that asks
the engine, so the worker never touches a widget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from shammah_tui.events import AskResult
from shammah_tui.formatting import format_ms, join_nonempty
from shammah_tui.kinds import SOURCES

#: Text that needs the Markdown renderer: emphasis, code, headings, lists, links, tables, rules.
_MARKDOWN = re.compile(r"[*_`#\[\]|<>~]|^\s*(?:[-+]|\d+[.)])\s|^\s*(?:-{3,}|={3,})\s*$", re.M)

#: Every state class an answer can carry; exactly one is set at a time.
STATE_CLASSES = tuple(f"-{s}" for s in (*SOURCES, "pending", "teacher", "tool", "error", "cancelled"))


class AnswerView(Vertical):
    """A streamed or restored answer with its badge line."""

    @dataclass
    class Fragment(Message, bubble=False):
        """More answer text, as it streams in."""

        text: str
        """A Markdown fragment to append."""

    @dataclass
    class Settled(Message, bubble=False):
        """The answer is complete (or failed, or was cancelled)."""

        badge: str
        """Badge text: the source (`neural` …), `teacher`, `tool`, `error` …"""
        state: str
        """State class without the dash: a source, `teacher`, `tool`, `error`, `cancelled`."""
        meta: str = ""
        """Latency, verification and such, shown after the badge."""
        text: str | None = None
        """The full answer; replaces the streamed text when it differs."""
        error: str | None = None
        """What went wrong, shown as a notice line under any partial text."""
        plain: bool = False
        """Show `text` as plain text, line breaks kept (tool results are not Markdown)."""

        @classmethod
        def from_result(cls, result: AskResult) -> AnswerView.Settled:
            """The final state for an `engine.ask` result."""
            if result.error:
                return cls("error", "error", format_ms(result.latency_ms) if result.latency_ms else "",
                           None, result.error)
            source = result.source if result.source in SOURCES else "forward"
            verified = {True: "✓ verified", False: "✗ teacher disagreed"}.get(result.verified, "")
            meta = join_nonempty([format_ms(result.latency_ms), verified])
            return cls(source, source, meta, result.answer or "")

    @dataclass
    class Verified(Message, bubble=False):
        """A spot check finished after the answer was shown."""

        verified: bool
        """True when the teacher agreed."""

    def __init__(self, *, badge: str = "…", state: str = "pending", meta: str = "thinking…",
                 text: str = "", id: str | None = None) -> None:
        super().__init__(id=id, classes=f"-{state}")
        self._badge = badge
        self._meta = meta
        self._initial = text
        self._stream: MarkdownStream | None = None
        self._streamed: list[str] = []
        self._plain: str | None = None
        self._settled = False
        self.query_id: int | None = None
        """The query log id of the answer, once known (spot-check verdicts are matched on it)."""
        self.state = state
        """The current state (a source, `pending`, `error` …)."""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="answer-head"):
            yield Label(self._badge, classes="badge", markup=False)
            yield Label(self._meta, classes="meta", markup=False)
        if self._initial:
            yield Markdown(self._initial, classes="answer-body")
        yield Static("", classes="answer-plain", markup=False)
        yield Static("", classes="answer-error", markup=False)

    @property
    def text(self) -> str:
        """The text shown so far (Markdown, or the plain text of a tool result)."""
        if self._plain is not None:
            return self._plain
        body = self._body()
        return body.source if body is not None else ""

    def _body(self) -> Markdown | None:
        """The Markdown body, when this answer has one."""
        found = self.query_children(Markdown)
        return found.first() if found else None

    async def _ensure_body(self) -> Markdown:
        """The Markdown body, mounted on first use: a plain answer (most local answers) never
        builds one, which keeps a long conversation's layout cheap."""
        body = self._body()
        if body is None:
            body = Markdown("", classes="answer-body")
            await self.mount(body, before=self.query_one(".answer-plain"))
        return body

    async def on_answer_view_fragment(self, message: Fragment) -> None:
        message.stop()
        if not message.text or self._settled:
            return  # nothing to add, or a late fragment after the answer settled
        if self._stream is None:
            self._stream = Markdown.get_stream(await self._ensure_body())
            if self.state == "pending":
                self.query_one(".meta", Label).update("streaming…")
        self._streamed.append(message.text)
        await self._stream.write(message.text)

    async def on_unmount(self) -> None:
        if self._stream is not None:  # removed mid-stream (cleared): end the stream's task
            stream, self._stream = self._stream, None
            await stream.stop()

    async def on_answer_view_settled(self, message: Settled) -> None:
        message.stop()
        await self.settle(message)

    async def settle(self, final: Settled) -> None:
        """Stop streaming and show the final badge, meta, text and error."""
        self._settled = True
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        body = self._body()
        prose = (not final.plain and final.text is not None and not self._streamed
                 and not _MARKDOWN.search(final.text))
        if prose:  # plain prose needs no Markdown parse (most local answers): drawn as one paragraph
            final = replace(final, plain=True)
        if final.plain and final.text is not None:
            self._plain = final.text
            plain = self.query_one(".answer-plain", Static)
            plain.set_class(prose, "-prose")
            plain.update(final.text)
            plain.display = True
            if body is not None:
                body.display = False
        elif final.text is not None and final.text != "".join(self._streamed):
            body = await self._ensure_body()
            await body.update(final.text)
        self.set_state(final.state, final.badge, final.meta)
        error = self.query_one(".answer-error", Static)
        if final.error:
            error.update(f"✗ {final.error}")
        error.display = bool(final.error)
        if self._plain is None and body is not None:
            body.display = bool(body.source.strip()) or not final.error

    def on_answer_view_verified(self, message: Verified) -> None:
        message.stop()
        verdict = "✓ verified" if message.verified else "✗ teacher disagreed"
        self._meta = join_nonempty([self._meta.replace("✓ verified", "").replace("✗ teacher disagreed", "")
                                    .strip(" ·"), verdict])
        self.query_one(".meta", Label).update(self._meta)

    def set_state(self, state: str, badge: str, meta: str) -> None:
        """Switch the state class and the badge line."""
        self.remove_class(*STATE_CLASSES)
        self.add_class(f"-{state}")
        self.state = state
        self._meta = meta
        self.query_one(".badge", Label).update(badge)
        self.query_one(".meta", Label).update(meta)
