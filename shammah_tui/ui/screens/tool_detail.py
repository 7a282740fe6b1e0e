"""A tool call in full: name, status, duration, the whole input and result."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from shammah_tui.formatting import format_ms, pretty_json
from shammah_tui.core.tool_calls import ToolCallEvent


class ToolDetailScreen(ModalScreen[None]):
    """The full input and result of one tool call; esc or q closes it."""

    CSS_PATH = "tool_detail.tcss"
    BINDINGS = [Binding("escape,q", "dismiss", "Close", tooltip="Back to the log")]

    def __init__(self, call: ToolCallEvent) -> None:
        super().__init__()
        self.call = call
        """The call shown."""

    def compose(self) -> ComposeResult:
        call = self.call
        duration = "" if call.duration_ms is None else f" · {format_ms(call.duration_ms)}"
        with Vertical(id="tool-dialog", classes=f"-{call.status}"):
            yield Label(f"{call.name} · {shown_status(call)}{duration}", id="tool-title", markup=False)
            with VerticalScroll(id="tool-body"):
                yield Label("Input", classes="section")
                yield Static(pretty_json(call.input), id="tool-input", markup=False)
                yield Label("Result", classes="section")
                result = call.result_text or call.summary or ("running…" if call.status == "running" else "")
                yield Static(result, id="tool-result", markup=False)
            yield Label("esc / q to close · ↑ ↓ to scroll", id="tool-hint")

    def on_mount(self) -> None:
        self.query_one("#tool-body").focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


def shown_status(call: ToolCallEvent) -> str:
    """`ok`, `running`, `error`, or `cancelled`: the core ends a cancelled call as an error whose
    summary says so."""
    return "cancelled" if call.status == "error" and call.summary == "cancelled" else call.status
