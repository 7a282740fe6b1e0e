"""Search in the conversation: a one-line input and a match count; the screen does the finding."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label


class SearchBar(Horizontal):
    """`Find:` input with `n of m`; enter or up goes to the next (older) match, shift+enter or down
    back to the newer one, esc closes."""

    BINDINGS = [
        Binding("escape", "close", "Close search", tooltip="Close the search"),
        # Matches are found from the newest, as the conversation is read: up is older, as above.
        Binding("up", "step(1)", "Older match", show=False),
        Binding("shift+enter,down", "step(-1)", "Newer match", show=False),
    ]

    @dataclass
    class Changed(Message):
        """The search text changed (find again from the newest message)."""

        query: str
        """What to look for."""

    @dataclass
    class Step(Message):
        """Go to another match."""

        delta: int
        """+1 for the next (older) match, -1 for the previous (newer) one."""

    class Closed(Message):
        """The search was closed."""

    def compose(self) -> ComposeResult:
        yield Label("Find", id="search-label")
        yield Input(placeholder="text in the conversation · enter: next · esc: close", id="search-input")
        yield Label("", id="search-count")

    @property
    def query_text(self) -> str:
        """The search text."""
        return self.query_one(Input).value

    def open(self) -> None:
        """Show the bar and focus its input (the text is kept, all selected)."""
        self.display = True
        field = self.query_one(Input)
        field.focus()
        field.select_all()

    def show_count(self, current: int | None, total: int) -> None:
        """`2 of 5`, or `no match`."""
        text = "" if not self.query_text else ("no match" if not total else f"{(current or 0) + 1} of {total}")
        label = self.query_one("#search-count", Label)
        label.update(text)
        label.set_class(bool(self.query_text) and not total, "-none")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Step(1))

    def action_step(self, delta: int) -> None:
        """Go to the next or previous match."""
        self.post_message(self.Step(delta))

    def action_close(self) -> None:
        """Hide the bar."""
        self.display = False
        self.post_message(self.Closed())
