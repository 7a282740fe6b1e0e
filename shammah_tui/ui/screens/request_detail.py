"""A served request in full: every field its log row keeps, as the request and the response."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from shammah_tui.core.records import RequestLogRow
from shammah_tui.formatting import format_count, format_ms
from shammah_tui.ui.widgets.request_log import is_error, tokens_saved

FIELD_W = 16


def _count(n: int | None) -> str:
    return "—" if n is None else format_count(n)


def request_fields(row: RequestLogRow) -> list[tuple[str, str]]:
    """What the client sent, as (field, value)."""
    return [
        ("time", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.created_at))),
        ("client", row.token_name or "— (no token matched)"),
        ("method", row.method),
        ("path", row.path),
        ("route", row.route),
        ("model", row.model or "—"),
        ("request id", row.request_id),
        ("log id", "—" if row.id is None else str(row.id)),
    ]


def response_fields(row: RequestLogRow) -> list[tuple[str, str]]:
    """What it was answered, as (field, value)."""
    fields = [
        ("status", str(row.status)),
        ("source", row.source or "—"),
        ("latency", format_ms(row.latency_ms)),
        ("input tokens", _count(row.input_tokens)),
        ("output tokens", _count(row.output_tokens)),
        ("tokens saved", f"{format_count(tokens_saved(row))} ({format_count(row.saved_input_tokens)} in, "
                         f"{format_count(row.saved_output_tokens)} out)"),
        ("dollars saved", f"${row.saved_usd:.4f}"),
    ]
    if row.error:
        fields.append(("error", row.error))
    return fields


def _table(fields: list[tuple[str, str]]) -> str:
    return "\n".join(f"{name.ljust(FIELD_W)}{value}" for name, value in fields)


class RequestDetailScreen(ModalScreen[None]):
    """One served request: what was asked and what was answered; esc or q closes it."""

    CSS_PATH = "request_detail.tcss"
    BINDINGS = [Binding("escape,q", "dismiss", "Close", tooltip="Back to the log")]

    def __init__(self, request: RequestLogRow) -> None:
        super().__init__()
        self.request = request
        """The request shown."""

    def compose(self) -> ComposeResult:
        row = self.request
        with Vertical(id="request-dialog", classes="-error" if is_error(row) else ""):
            yield Label(f"{row.method} {row.path} · {row.status} · {format_ms(row.latency_ms)}",
                        id="request-title", markup=False)
            with VerticalScroll(id="request-body"):
                yield Label("Request", classes="section")
                yield Static(_table(request_fields(row)), id="request-fields", markup=False)
                yield Label("Response", classes="section")
                yield Static(_table(response_fields(row)), id="response-fields", markup=False)
            # The log keeps each request's fields, not the bodies it carried.
            yield Label("no bodies are kept · esc / q to close", id="request-hint")

    def on_mount(self) -> None:
        self.query_one("#request-body").focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
