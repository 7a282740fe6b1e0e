"""Edit one setting: its meaning, its value in an input; enter saves, esc leaves it."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from shammah_tui.ui.editable_settings import EDITABLE


class SettingEditScreen(ModalScreen[str | None]):
    """Dismisses with the value typed (saved by the main screen), or None. A value `check` finds
    a problem with is not taken: the problem shows, and the dialog stays open to fix it."""

    CSS_PATH = "setting_edit.tcss"
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", tooltip="Leave the setting as it is")]

    def __init__(self, key: str, value: str, check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self._check = check
        self.key = key
        """The setting edited."""
        self.value = value
        """Its value now, as typed."""

    def compose(self) -> ComposeResult:
        with Vertical(id="setting-dialog"):
            yield Label(self.key, id="setting-title", markup=False)
            yield Label(EDITABLE.get(self.key, ""), id="setting-help", markup=False)
            yield Input(self.value, id="setting-input")
            yield Label("", id="setting-error", markup=False)
            yield Label("enter saves to settings.toml · esc cancels", id="setting-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        problem = self._check(value) if value and self._check is not None else None
        if problem:
            error = self.query_one("#setting-error", Label)
            error.update(f"Not saved: {problem}")
            error.display = True
            return
        self.dismiss(value or None)

    def action_dismiss_none(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
