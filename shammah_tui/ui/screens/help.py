"""The help screen: keys, slash commands, and what the sources mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from shammah_tui.core.kinds import SOURCE_INFO
from shammah_tui.ui.command_table import help_keys
from shammah_tui.ui.slash import SLASH_COMMANDS
from shammah_tui.ui.widgets.palette import SOURCE_RGB, hex_colour

#: (source, what it means), in the order shown: the source registry's rows, then the verdicts.
SOURCES_HELP = [(name, info.meaning) for name, info in SOURCE_INFO.items()] + [
    ("✓ / ✗", "spot check: the teacher agreed / disagreed"),
]

KEY_W = 24


def help_content() -> Content:
    """The help text: keys, slash commands, sources, as aligned columns."""
    lines: list[Content] = [Content.styled("Keys", "bold $text-accent")]
    lines += [_row(key, what) for key, what in help_keys()]
    lines += [Content(""), Content.styled("Commands (type them in the input)", "bold $text-accent")]
    for name, command in SLASH_COMMANDS.items():
        lines.append(_row(f"/{name} {command.args}".strip(), command.slash_help))
    lines += [Content(""), Content.styled("Answer sources", "bold $text-accent")]
    for name, what in SOURCES_HELP:
        colour = hex_colour(SOURCE_RGB[name]) if name in SOURCE_RGB else ""
        lines.append(_row(name, what, f"bold {colour}".strip()))
    return Content("\n").join(lines)


def _row(key: str, what: str, key_style: str = "bold") -> Content:
    return Content.assemble((f"  {key}".ljust(KEY_W), key_style), what)


class HelpScreen(ModalScreen[None]):
    """Keys and commands; any of esc, f1 or q closes it."""

    CSS_PATH = "help.tcss"
    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Close", tooltip="Close the help"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label("Shammah — help", id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static(help_content(), id="help-text")
            yield Label("esc / f1 / q to close", id="help-hint")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
