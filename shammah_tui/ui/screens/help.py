"""The help screen: keys, slash commands, and what the sources mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from shammah_tui.ui.slash import SLASH_COMMANDS
from shammah_tui.ui.widgets.palette import SOURCE_RGB, hex_colour

#: (keys, what they do), in the order shown.
KEYS = [
    ("enter", "send the question (or run the /command)"),
    ("shift+enter / ctrl+j", "a new line (a pasted question keeps its lines)"),
    ("ctrl+t", "train now on the queued examples"),
    ("ctrl+g", "start / stop a teaching session"),
    ("esc", "cancel the answer, teaching, or training run"),
    ("ctrl+l", "new conversation (ctrl+o brings the last back)"),
    ("ctrl+o", "past conversations: pick one to reopen it"),
    ("ctrl+f", "find in the conversation (enter: next match)"),
    ("ctrl+s", "export as Markdown (/export json: as JSON)"),
    ("f1", "this help"),
    ("f2", "the input; again: the messages"),
    ("  ↑ ↓ / k j", "in the messages: move between them"),
    ("  c / y", "in the messages: copy it / its last code block"),
    ("  i / enter", "in the messages: back to the input"),
    ("f3 / f4", "tool calls / metrics (its border lights up)"),
    ("↑ / ↓ in the input", "earlier lines"),
    ("enter on a tool call", "its full input and result"),
    ("ctrl+p", "palette: every action, settings, theme"),
    ("ctrl+q", "quit (a running training run is cancelled)"),
]

#: (source, what it means), in the order shown.
SOURCES_HELP = [
    ("neural", "the local generator, accepted by the validator"),
    ("learned", "a stored teacher answer, same question and context"),
    ("template", "an exact rule: arithmetic, units, greetings …"),
    ("forward", "the teacher; its answers train the local models"),
    ("✓ / ✗", "spot check: the teacher agreed / disagreed"),
]

KEY_W = 24


def help_content() -> Content:
    """The help text: keys, slash commands, sources, as aligned columns."""
    lines: list[Content] = [Content.styled("Keys", "bold $text-accent")]
    lines += [_row(key, what) for key, what in KEYS]
    lines += [Content(""), Content.styled("Commands (type them in the input)", "bold $text-accent")]
    for name, (arg, what) in SLASH_COMMANDS.items():
        lines.append(_row(f"/{name} {arg}".strip(), what))
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
