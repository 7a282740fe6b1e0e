"""The input: questions and slash commands, several lines when pasted, with completion and history."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from shammah_tui.ui.slash import SLASH_COMMANDS

#: Most lines the history keeps.
HISTORY = 100
#: Keys that start a new line instead of sending (shift+enter where the terminal tells it apart).
NEWLINE_KEYS = ("shift+enter", "ctrl+j", "alt+enter")


class PromptInput(TextArea):
    """A text area that sends on enter and takes a new line on shift+enter (or ctrl+j).

    A pasted question keeps all its lines. `/commands` complete as you type (→ accepts), and
    ↑ on the first line / ↓ on the last recall earlier lines.
    """

    @dataclass
    class Submitted(Message):
        """Enter was pressed: send the text."""

        prompt: PromptInput
        """The input that sent it."""
        value: str
        """The text, all its lines."""

        @property
        def control(self) -> PromptInput:
            return self.prompt

    BINDINGS = [
        Binding("ctrl+j", "newline", "New line", show=False, tooltip="shift+enter or ctrl+j: a new line"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, tab_behavior="focus", compact=False, show_line_numbers=False,
                         placeholder="Ask a question, or type /help  (shift+enter or ctrl+j: new line)",
                         highlight_cursor_line=False)
        self._history: list[str] = []
        self._cursor = 0

    @property
    def value(self) -> str:
        """The text in the input."""
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def remember(self, line: str) -> None:
        """Add a submitted line to the history."""
        if line and (not self._history or self._history[-1] != line):
            self._history.append(line)
            del self._history[:-HISTORY]
        self._cursor = len(self._history)

    def load_history(self, lines: list[str]) -> None:
        """Put the lines sent before the last quit ahead of this session's."""
        self._history = (lines + self._history)[-HISTORY:]
        self._cursor = len(self._history)

    async def _on_key(self, event: events.Key) -> None:
        if event.character == "?" and not self.text:
            # The help key (a question is never just "?"). Textual leaves a printable key to the
            # focused text field, so the app's binding for it is not reached from here.
            event.stop()
            event.prevent_default()
            await self.run_action("app.help")
            return
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        await super()._on_key(event)

    def action_newline(self) -> None:
        """Start a new line."""
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self.selection.is_empty:
            self.action_history(-1)
        else:
            super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == self.document.line_count - 1 and self.selection.is_empty:
            self.action_history(1)
        else:
            super().action_cursor_down(select)

    def action_history(self, delta: int) -> None:
        """Step through earlier lines (past the newest one, the input is empty)."""
        if not self._history:
            return
        self._cursor = max(0, min(len(self._history), self._cursor + delta))
        self.value = self._history[self._cursor] if self._cursor < len(self._history) else ""

    def update_suggestion(self) -> None:
        """Complete a `/command` being typed (→ accepts it)."""
        text = self.text
        if not text.startswith("/") or "\n" in text or " " in text or len(text) < 2:
            self.suggestion = ""
            return
        typed = text[1:].lower()
        match = next((name for name in SLASH_COMMANDS if name.startswith(typed) and name != typed), None)
        at_end = self.cursor_location == self.document.end
        self.suggestion = match[len(typed):] if match and at_end else ""
