"""One answer in the conversation: a source badge, latency, verification, and the answer's text.

A plain answer (most local answers) is one widget that draws its badge line, text and error
itself, with nothing to compose: mounted with its question, it is laid out and drawn in the same
frame. An answer that needs Markdown, or streams, holds children instead: its badge line
(`AnswerText`), a `Markdown` body and, under a partial body, the error.

The body streams: `Fragment` messages are appended through a `MarkdownStream`
(which merges fragments that come faster than it can render). `Settled` gives
the final state. Both messages are posted to the view by the worker that asks
the engine, so the worker never touches a widget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from shammah_tui.core.events import AskResult
from shammah_tui.formatting import format_ms, join_nonempty
from shammah_tui.core.kinds import SOURCES
from shammah_tui.ui.widgets.answer_text import ANSWER_COMPONENTS, AnswerText, answer_content

#: Text that needs the Markdown renderer: emphasis, code, headings, lists, links, tables, rules.
_MARKDOWN = re.compile(r"[*_`#\[\]|<>~]|^\s*(?:[-+]|\d+[.)])\s|^\s*(?:-{3,}|={3,})\s*$", re.M)

def needs_markdown(text: str) -> bool:
    """Whether `text` has Markdown to render (else it is drawn as it is, by the view itself)."""
    return bool(_MARKDOWN.search(text))


#: Every state class an answer can carry; exactly one is set at a time.
STATE_CLASSES = tuple(f"-{s}" for s in (*SOURCES, "pending", "teacher", "tool", "error", "cancelled"))


class AnswerView(Widget):
    """A streamed, settled or restored answer with its badge line."""

    COMPONENT_CLASSES = ANSWER_COMPONENTS

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
            verified = {True: "✓ verified", False: "✗ teacher disagreed", None: ""}[result.verified]
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
        self._badge, self._meta, self._error = badge, meta, ""
        # Plain prose is drawn by the view itself; Markdown needs children (composed on mount).
        self._plain: str | None = text if text and not needs_markdown(text) else None
        self._initial = text if self._plain is None else ""
        self._head: AnswerText | None = AnswerText(badge, meta) if self._initial else None
        self._stream: MarkdownStream | None = None
        self._streamed: list[str] = []
        self._error_below = ""
        self._settled = False
        self._preset = False
        self.query_id: int | None = None
        """The query log id of the answer, once known (spot-check verdicts are matched on it)."""
        self.state = state
        """The current state (a source, `pending`, `error` …)."""

    def compose(self) -> ComposeResult:
        if self._head is not None:
            yield self._head
            yield Markdown(self._initial, classes="answer-body")

    def render(self) -> Content:
        if self._head is not None:
            return Content("")  # the children draw it
        return answer_content(self, self._badge, self._meta, self._plain or "", self._error)

    def _show(self, *, badge: str | None = None, meta: str | None = None, error: str | None = None) -> None:
        """Change the badge line or the error, wherever it is drawn."""
        self._badge = self._badge if badge is None else badge
        self._meta = self._meta if meta is None else meta
        self._error = self._error if error is None else error
        if self._head is not None:
            self._head.badge, self._head.meta, self._head.error = self._badge, self._meta, self._error
        else:
            self.refresh(layout=True)

    @property
    def badge(self) -> str:
        """The badge text shown."""
        return self._badge

    @property
    def meta(self) -> str:
        """What follows the badge: latency, verification, progress."""
        return self._meta

    @property
    def error(self) -> str:
        """The error shown with the answer ("" when none)."""
        return self._error or self._error_below

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
        """The Markdown body, mounted on first use under a badge line of its own."""
        body = self._body()
        if body is None:
            self._plain = None
            self._head = AnswerText(self._badge, self._meta, self._error)
            body = Markdown("", classes="answer-body")
            await self.mount(self._head, body)
        return body

    async def on_answer_view_fragment(self, message: Fragment) -> None:
        message.stop()
        if not message.text or self._settled:
            return  # nothing to add, or a late fragment after the answer settled
        if self._stream is None:
            self._stream = Markdown.get_stream(await self._ensure_body())
            if self.state == "pending":
                self._show(meta="streaming…")
        self._streamed.append(message.text)
        await self._stream.write(message.text)

    async def on_unmount(self) -> None:
        if self._stream is not None:  # removed mid-stream (cleared): end the stream's task
            stream, self._stream = self._stream, None
            await stream.stop()

    async def on_answer_view_settled(self, message: Settled) -> None:
        message.stop()
        if not self._preset:
            await self.settle(message)

    def preset(self, final: Settled) -> None:
        """Take the final state of a plain answer before being mounted, so that it is drawn
        settled in its first frame; the `Settled` message that follows is then ignored. Does
        nothing once mounted, or for an answer that needs Markdown (it settles as it streams)."""
        if self.is_mounted or final.text is None or (needs_markdown(final.text) and not final.plain):
            return
        self._preset = self._settled = True
        self._plain = final.text
        self._error = final.error or ""
        self.set_state(final.state, final.badge, final.meta)

    async def settle(self, final: Settled) -> None:
        """Stop streaming and show the final badge, meta, text and error."""
        self._settled = True
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        body = self._body()
        prose = (not final.plain and final.text is not None and not self._streamed
                 and not needs_markdown(final.text))
        if (final.plain or prose) and final.text is not None:
            # Plain text needs no Markdown parse: the view draws it itself, with no children.
            self._plain = final.text
            if body is not None:
                self._head = None
                await self.remove_children()
                body = None
        elif final.text is not None and final.text != "".join(self._streamed):
            body = await self._ensure_body()
            await body.update(final.text)
        self.set_state(final.state, final.badge, final.meta)
        shown_body = body is not None and bool(body.source.strip())
        if body is not None:
            body.display = shown_body or not final.error
        if final.error and shown_body:  # under the partial text
            self._error_below = final.error
            await self.mount(Static(f"✗ {final.error}", classes="answer-error", markup=False))
        else:
            self._show(error=final.error or "")

    def on_answer_view_verified(self, message: Verified) -> None:
        message.stop()
        verdict = "✓ verified" if message.verified else "✗ teacher disagreed"
        self._show(meta=join_nonempty([self._meta.replace("✓ verified", "").replace("✗ teacher disagreed", "")
                                       .strip(" ·"), verdict]))

    def set_state(self, state: str, badge: str, meta: str) -> None:
        """Switch the state class and the badge line."""
        self.remove_class(*STATE_CLASSES)
        self.add_class(f"-{state}")
        self.state = state
        self._show(badge=badge, meta=meta)
