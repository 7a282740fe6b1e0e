"""The conversation pane: questions, streamed answers and notices, pinned to the bottom.

With the focus, ↑/↓ (or k/j) move a highlight from message to message; `c` copies the
highlighted message and `y` its last code block (posted up as `CopyRequested`: the screen
owns the clipboard). The screen's search marks matches through `show_matches`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import Focus, Resize
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from shammah_tui.formatting import code_blocks
from shammah_tui.core.kinds import SOURCES
from shammah_tui.core.records import Message as StoredMessage
from shammah_tui.ui.widgets.answer import AnswerView
from shammah_tui.ui.widgets.notice_line import NoticeLine
from shammah_tui.ui.widgets.user_message import UserMessage

#: Most messages kept on screen (about 50 exchanges); older ones are removed from the screen (the
#: store keeps them, and export writes them). Every new answer lays the whole conversation out
#: again, so this bounds the time from enter to the answer drawn.
MAX_ITEMS = 100

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

    BINDINGS = [
        Binding("up,k", "select(-1)", "Previous message", show=False),
        Binding("down,j", "select(1)", "Next message", show=False),
        Binding("home,g", "select_edge(0)", "First message", show=False),
        Binding("end,G", "select_edge(-1)", "Last message", show=False),
        Binding("c", "copy", "Copy message", tooltip="Copy the highlighted message"),
        Binding("y", "copy_code", "Copy code", tooltip="Copy the last code block of the highlighted message"),
        Binding("enter,i", "app.focus('prompt')", "Back to the input", show=False),
    ]

    @dataclass
    class CopyRequested(Message):
        """Copy a message (or its code) to the clipboard."""

        text: str
        """What to copy."""
        what: str
        """What it is, for the confirmation (`answer`, `question`, `code block` …)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected: Widget | None = None
        """The highlighted message, when one is."""
        self._welcome: Static | None = None
        self._earlier: Static | None = None
        self.hidden_count = 0
        """Messages of this conversation removed from the screen to keep it at MAX_ITEMS."""
        self._matches: list[Widget] = []
        self._match = 0

    def on_mount(self) -> None:
        self.show_welcome()

    # ------------------------------------------------------------ navigation
    @property
    def items(self) -> list[Widget]:
        """The messages shown (questions, answers, notices), oldest first."""
        return [w for w in self.children if isinstance(w, (UserMessage, AnswerView, NoticeLine))]

    def on_focus(self, event: Focus) -> None:
        if self.selected is None or self.selected not in self.children:
            answers = [w for w in self.items if isinstance(w, AnswerView)]
            self.select(answers[-1] if answers else (self.items[-1] if self.items else None))

    def select(self, item: Widget | None, *, scroll: bool = True) -> None:
        """Highlight `item` (None: nothing) and bring it into view."""
        if self.selected is not None:
            self.selected.remove_class("-selected")
        self.selected = item
        if item is None:
            return
        item.add_class("-selected")
        if scroll:
            self.release_anchor()
            self.scroll_to_widget(item, animate=False, top=item.outer_size.height > self.size.height)

    def action_select(self, delta: int) -> None:
        """Highlight the message `delta` places away from the highlighted one."""
        items = self.items
        if not items:
            return
        if self.selected in items:
            index = max(0, min(len(items) - 1, items.index(self.selected) + delta))
        else:
            index = len(items) - 1
        self.select(items[index])

    def action_select_edge(self, index: int) -> None:
        """Highlight the first (0) or last (-1) message."""
        items = self.items
        if items:
            self.select(items[index])
            if index == -1 and self.is_anchored:
                self.anchor()

    def action_copy(self) -> None:
        """Copy the highlighted message."""
        item = self.selected if self.selected in self.children else None
        if item is not None:
            self.post_message(self.CopyRequested(message_text(item), message_kind(item)))

    def action_copy_code(self) -> None:
        """Copy the last code block of the highlighted message (the whole message when it has none)."""
        item = self.selected if self.selected in self.children else None
        if item is None:
            return
        blocks = code_blocks(message_text(item))
        if blocks:
            self.post_message(self.CopyRequested(blocks[-1], "code block"))
        else:
            what = f"whole {message_kind(item)}: it has no code block"
            self.post_message(self.CopyRequested(message_text(item), what))

    # ---------------------------------------------------------------- search
    def find(self, text: str) -> list[Widget]:
        """The messages whose text holds `text` (any case), oldest first."""
        needle = text.casefold().strip()
        if not needle:
            return []
        return [item for item in self.items if needle in message_text(item).casefold()]

    def show_matches(self, matches: Sequence[Widget]) -> None:
        """Mark the messages that match the search (none: clear the marks)."""
        chosen = set(map(id, matches))
        for item in self.items:
            item.set_class(id(item) in chosen, "-match")

    def search(self, text: str) -> tuple[int | None, int]:
        """Mark the messages holding `text` and highlight the newest: (its place, how many)."""
        self._matches = self.find(text)
        self.show_matches(self._matches)
        self._match = len(self._matches) - 1
        return self._select_match()

    def step_match(self, delta: int) -> tuple[int | None, int]:
        """Highlight the match `delta` places older (+1) or newer (-1): (its place, how many)."""
        if self._matches:
            self._match = (self._match - delta) % len(self._matches)
        return self._select_match()

    def _select_match(self) -> tuple[int | None, int]:
        if not self._matches:
            return None, 0
        self.select(self._matches[self._match])
        return self._match, len(self._matches)

    def end_search(self) -> None:
        """Clear the marks and the highlight."""
        self._matches = []
        self.show_matches([])
        self.select(None, scroll=False)

    def last_answer_text(self, *, code: bool = False) -> str:
        """The last answer's text, or (`code`) the conversation's last code block ("" if none)."""
        answers = [v.text for v in self.query(AnswerView) if v.text.strip()]
        if code:
            blocks = [b for text in answers for b in code_blocks(text)]
            return blocks[-1] if blocks else ""
        return answers[-1] if answers else ""

    def show_verdict(self, query_id: int, verified: bool) -> None:
        """A spot check's verdict, on the answer to query `query_id`."""
        for view in self.query(AnswerView):
            if view.query_id == query_id:
                view.post_message(AnswerView.Verified(verified))
                return

    def on_resize(self, event: Resize) -> None:
        self._anchor_on_overflow()

    def watch_virtual_size(self) -> None:
        self._anchor_on_overflow()

    def _anchor_on_overflow(self) -> None:
        if not self.is_anchored and self.virtual_size.height > self.scrollable_content_region.height > 0:
            self.anchor()

    def show_welcome(self) -> None:
        """The hint shown while the conversation is empty."""
        self._welcome = Static(WELCOME, id="welcome", classes="welcome")
        self.mount(self._welcome)

    def _drop_welcome(self) -> None:
        # A reference, not a DOM query: every question passes here, and a query walks the whole
        # conversation.
        if self._welcome is not None:
            self._welcome.remove()
            self._welcome = None

    def _add(self, *widgets: Widget) -> None:
        # Notices (a model or server message at start) go below the welcome; a message ends it.
        if not all(isinstance(w, NoticeLine) for w in widgets):
            self._drop_welcome()
        shown = self.items
        excess = len(shown) + len(widgets) - MAX_ITEMS
        if excess > 0:
            skipped = max(0, excess - len(shown))  # a restore longer than MAX_ITEMS starts later
            widgets = widgets[skipped:]
            old = shown[:excess - skipped]
            if self.selected in old:
                self.selected = None
            self.remove_children(old)
            self._note_hidden(excess)
        self.mount(*widgets)
        if self.is_anchored and not self.has_focus:
            self.anchor()  # back to following the bottom, even if the user had scrolled up

    def _note_hidden(self, count: int) -> None:
        """Say at the top how many earlier messages left the screen, and where they are."""
        self.hidden_count += count
        text = (f"⋯ {self.hidden_count:,} earlier message{'s' if self.hidden_count != 1 else ''} not shown "
                "(search and copy reach the ones below; /export writes the whole conversation)")
        if self._earlier is None:
            self._earlier = Static(text, classes="earlier", markup=False)
            self.mount(self._earlier, before=0)
        else:
            self._earlier.update(text)

    def add_user(self, text: str) -> UserMessage:
        """Show a question."""
        message = UserMessage(text)
        self._add(message)
        return message

    def add_exchange(self, question: UserMessage, answer: AnswerView) -> None:
        """Show a question and its answer block in one mount (one layout for both)."""
        self._add(question, answer)

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
        if not widgets:
            return
        asked = self.items
        if asked:  # questions asked while the store was read come after the conversation's past
            self._drop_welcome()
            self.mount(*widgets, before=asked[0])
        else:
            self._add(*widgets)
        # Its end, as a reopened conversation is read on from there; also after the history list
        # closes, which otherwise leaves the view at the top.
        self.call_after_refresh(self._show_end)

    def _show_end(self) -> None:
        if self.virtual_size.height > self.scrollable_content_region.height > 0:
            self.anchor()
            self.scroll_end(animate=False, immediate=True)

    async def clear(self) -> None:
        """Remove everything and show the welcome hint again."""
        self.selected = None
        self._earlier, self.hidden_count = None, 0
        self.anchor(False)
        await self.remove_children()
        self.scroll_home(animate=False)
        self.show_welcome()


def message_text(item: Widget) -> str:
    """The text of a message as it would be copied: the question, the answer, the notice."""
    if isinstance(item, AnswerView):
        return item.text
    if isinstance(item, (UserMessage, NoticeLine)):
        return item.text
    return ""


def message_kind(item: Widget) -> str:
    """What a message is, in a word."""
    if isinstance(item, UserMessage):
        return "question"
    if isinstance(item, NoticeLine):
        return "notice"
    return "answer"
