"""Past conversations: pick one to reopen it (enter), esc to go back."""

from __future__ import annotations

import time
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from shammah_tui.formatting import ellipsize, plural
from shammah_tui.core.records import ConversationSummary


def conversation_label(row: ConversationSummary, current: int | None) -> Content:
    """`#12  2026-05-01 14:03  8 messages  what is 2 + 2?` (the current one marked)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.last_at))
    marker = "● " if row.id == current else "  "
    return Content.assemble((f"{marker}#{row.id:<5}", "bold"), (f"{when}  ", "$text-muted"),
                            (f"{plural(row.messages, 'message'):>13}  ", "$text-muted"),
                            ellipsize(row.title or "(no question)", 60))


class ConversationsScreen(ModalScreen[int | None]):
    """The stored conversations, most recent first; dismisses with the id picked (None: none)."""

    CSS_PATH = "conversations.tcss"
    BINDINGS = [Binding("escape,q", "dismiss_none", "Close", tooltip="Back to the conversation")]

    def __init__(self, rows: Sequence[ConversationSummary], current: int | None = None) -> None:
        super().__init__()
        self.rows = list(rows)
        """The conversations listed."""
        self.current = current
        """The conversation shown now (marked ●)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="conversations-dialog"):
            yield Label(f"Past conversations ({len(self.rows)})", id="conversations-title")
            options = [Option(conversation_label(r, self.current), id=str(r.id)) for r in self.rows]
            yield OptionList(*options, id="conversations-list")
            if not self.rows:
                yield Label("No conversation has messages yet.", id="conversations-empty")
            yield Label("enter reopens · esc closes", id="conversations-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.rows:
            options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_dismiss_none(self) -> None:
        """Close without reopening anything."""
        self.dismiss(None)
