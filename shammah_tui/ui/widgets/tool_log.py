"""The tool-call log: one row per call (status, name, input, duration, result).

Events are buffered and applied in a batch by `flush()`, which a timer calls a
few times a second; a call's row is updated in place when it ends. Selecting
a row posts `ToolLog.Selected` with the full call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label

from shammah_tui.formatting import compact_json, ellipsize, format_ms, one_line
from shammah_tui.store.rows import ToolCallRow
from shammah_tui.tools.base import ToolCallEvent

#: Rows kept; older ones are dropped.
MAX_ROWS = 500
#: Status → (icon, theme colour).
STATUS_STYLE = {"running": ("◌", "bold yellow"), "ok": ("✓", "bold green"), "error": ("✗", "bold red")}


def event_from_row(row: ToolCallRow) -> ToolCallEvent:
    """A stored call as the log shows it."""
    return ToolCallEvent(row.call_id, row.name, row.input, row.status,  # type: ignore[arg-type]
                         row.created_at, row.duration_ms, row.summary, row.result_text)


class ToolLog(Vertical):
    """Tool calls the teacher (or a slash command) made."""

    @dataclass
    class Selected(Message):
        """A call was picked in the log: show its details."""

        call: ToolCallEvent
        """The call, with its full input and result."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._pending: list[ToolCallEvent] = []
        self._calls: dict[str, ToolCallEvent] = {}
        self._open: dict[str, str] = {}
        self._order: list[str] = []
        self._serial = 0

    def compose(self) -> ComposeResult:
        yield Label("Tool calls", classes="pane-title")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=False,
                                                    show_cursor=True, id="tool-table")
        table.add_column("", key="status", width=1)
        table.add_column("tool", key="name", width=22)
        table.add_column("input", key="input", width=28)
        table.add_column("time", key="time", width=8)
        table.add_column("result", key="result")
        yield table
        yield Label("No tool calls yet. /teach starts a teaching session; /analyze and /compare "
                    "call tools directly.", classes="empty-hint")

    @property
    def calls(self) -> list[ToolCallEvent]:
        """Every call shown, oldest first (the latest state of each)."""
        return [self._calls[key] for key in self._order]

    def push(self, event: ToolCallEvent) -> None:
        """Queue an event for the next flush."""
        self._pending.append(event)

    def restore(self, rows: Sequence[ToolCallRow]) -> None:
        """Show stored calls from earlier sessions."""
        for row in rows:
            self.push(event_from_row(row))
        self.flush()

    def flush(self) -> None:
        """Apply the queued events to the table in one batch."""
        if not self._pending or not self.is_mounted:
            return
        table = self.query_one(DataTable)
        events, self._pending = self._pending, []
        for event in events:
            key = self._open.pop(event.call_id, None) if event.status != "running" else None
            if key is not None and key in self._calls:
                self._calls[key] = event
                for column, value in zip(("status", "name", "input", "time", "result"), _cells(event)):
                    table.update_cell(key, column, value)
                continue
            self._serial += 1
            key = f"call-row-{self._serial}"
            self._calls[key] = event
            self._order.append(key)
            if event.status == "running":
                self._open[event.call_id] = key
            table.add_row(*_cells(event), key=key)
        while len(self._order) > MAX_ROWS:
            old = self._order.pop(0)
            self._calls.pop(old, None)
            table.remove_row(old)
        self.set_class(bool(self._order), "-has-calls")
        table.move_cursor(row=table.row_count - 1, animate=False)

    def clear(self) -> None:
        """Forget every call."""
        self._pending.clear()
        self._calls.clear()
        self._open.clear()
        self._order.clear()
        self.query_one(DataTable).clear()
        self.remove_class("-has-calls")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        call = self._calls.get(str(event.row_key.value))
        if call is not None:
            self.post_message(self.Selected(call))


def _cells(event: ToolCallEvent) -> tuple[Text, Text, Text, Text, Text]:
    """The row for a call; plain `Text`, so nothing in a tool's input is read as markup."""
    icon, style = STATUS_STYLE.get(event.status, ("?", ""))
    summary = "running…" if event.status == "running" else ellipsize(one_line(event.summary), 120)
    duration = "" if event.duration_ms is None else format_ms(event.duration_ms)
    return (Text(icon, style=style), Text(ellipsize(event.name, 22), style="bold"),
            Text(compact_json(event.input, 28), style="dim"), Text(duration, justify="right"),
            Text(summary, style="italic" if event.status == "running" else ""))
