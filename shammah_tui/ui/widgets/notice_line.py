"""A one-line notice in the conversation: an error, a warning or information."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

#: Icon per notice level.
ICONS = {"error": "✗", "warning": "⚠", "information": "ℹ"}


class NoticeLine(Static):
    """An error, warning or information line; its level is a TCSS class (`-error` …)."""

    def __init__(self, level: str, text: str) -> None:
        level = level if level in ICONS else "information"
        super().__init__(Content(f"{ICONS[level]} {text}"), markup=False, classes=f"-{level}")
        self.level = level
        """`error`, `warning` or `information`."""
        self.text = text
        """The notice text."""
