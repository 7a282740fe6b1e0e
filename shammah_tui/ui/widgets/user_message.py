"""A question the user asked, as shown in the conversation."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from shammah_tui.core.sanitize import strip_controls


class UserMessage(Static):
    """One user message: plain text (never markup), escape sequences and control characters removed."""

    def __init__(self, text: str) -> None:
        super().__init__(Content.assemble(("› ", "bold"), strip_controls(text)), markup=False)
        self.text = text
        """The message as typed."""
