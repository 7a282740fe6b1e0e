"""The conversation pane: questions, streamed answers and notices, pinned to the bottom."""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Static

from shammah_tui.kinds import SOURCES
from shammah_tui.store.rows import Message as StoredMessage
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.notice_line import NoticeLine
from shammah_tui.ui.widgets.user_message import UserMessage

#: Most conversation items kept on screen; older ones are removed.
MAX_ITEMS = 400

WELCOME = (
    "Ask a question below. Each answer is labelled with its source: "
    "[b #c678dd]neural[/] (the local model), [b #61afef]learned[/] (an answer the teacher gave before), "
    "[b #e5c07b]template[/] (an exact rule) or [b #e06c75]forward[/] (the teacher, whose answers "
    "teach the local models). Type [b]/help[/] or press [b]F1[/] for keys and commands."
)


class Conversation(VerticalScroll, can_focus=True):
    """The chat history of the current conversation.

    It anchors to the bottom (following streamed answers) only once the content
    overflows: an anchored scroll view bottom-aligns short content, which would
    leave an empty band above the first messages.
    """

    def on_mount(self) -> None:
        self.show_welcome()

    def on_resize(self, event: Resize) -> None:
        self._anchor_on_overflow()

    def watch_virtual_size(self) -> None:
        self._anchor_on_overflow()

    def _anchor_on_overflow(self) -> None:
        if not self.is_anchored and self.virtual_size.height > self.scrollable_content_region.height > 0:
            self.anchor()

    def show_welcome(self) -> None:
        """The hint shown while the conversation is empty."""
        self.mount(Static(WELCOME, id="welcome", classes="welcome"))

    def _drop_welcome(self) -> None:
        for welcome in self.query("#welcome"):
            welcome.remove()

    def _add(self, *widgets: Widget) -> None:
        self._drop_welcome()
        self.mount(*widgets)
        excess = len(self.children) - MAX_ITEMS
        if excess > 0:
            for old in list(self.children)[:excess]:
                old.remove()
        if self.is_anchored:
            self.anchor()  # back to following the bottom, even if the user had scrolled up

    def add_user(self, text: str) -> UserMessage:
        """Show a question."""
        message = UserMessage(text)
        self._add(message)
        return message

    def add_answer(self, *, badge: str = "…", state: str = "pending", meta: str = "thinking…",
                   text: str = "") -> AnswerView:
        """Add an answer block (pending by default) and return it for streaming."""
        view = AnswerView(badge=badge, state=state, meta=meta, text=text)
        self._add(view)
        return view

    def add_notice(self, level: str, text: str) -> NoticeLine:
        """Show an error, warning or information line."""
        line = NoticeLine(level, text)
        self._add(line)
        return line

    def restore(self, messages: Sequence[StoredMessage]) -> None:
        """Show the stored messages of the conversation being continued."""
        widgets: list[Widget] = []
        for m in messages:
            if m.role == "user":
                widgets.append(UserMessage(m.text))
            elif m.role == "assistant":
                source = m.source if m.source in SOURCES else "forward"
                widgets.append(AnswerView(badge=source, state=source, meta="", text=m.text))
            else:
                widgets.append(NoticeLine("error", m.text))
        if widgets:
            self._add(*widgets)

    async def clear(self) -> None:
        """Remove everything and show the welcome hint again."""
        self.anchor(False)
        await self.remove_children()
        self.scroll_home(animate=False)
        self.show_welcome()
