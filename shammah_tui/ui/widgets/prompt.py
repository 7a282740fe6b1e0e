"""The input line: questions and slash commands, with completion and history."""

from __future__ import annotations

from textual.binding import Binding
from textual.suggester import SuggestFromList
from textual.widgets import Input

from shammah_tui.ui.slash import SLASH_COMMANDS

#: Most lines the history keeps.
HISTORY = 100


class PromptInput(Input):
    """An `Input` that completes `/commands` and recalls earlier lines with ↑/↓."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous line", show=False),
        Binding("down", "history(1)", "Next line", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="Ask a question, or type /help",
            suggester=SuggestFromList([f"/{name}" for name in SLASH_COMMANDS], case_sensitive=False),
            id=id,
        )
        self._history: list[str] = []
        self._cursor = 0

    def remember(self, line: str) -> None:
        """Add a submitted line to the history."""
        if line and (not self._history or self._history[-1] != line):
            self._history.append(line)
            del self._history[:-HISTORY]
        self._cursor = len(self._history)

    def action_history(self, delta: int) -> None:
        """Step through earlier lines (past the newest one, the line is empty)."""
        if not self._history:
            return
        self._cursor = max(0, min(len(self._history), self._cursor + delta))
        self.value = self._history[self._cursor] if self._cursor < len(self._history) else ""
        self.cursor_position = len(self.value)
