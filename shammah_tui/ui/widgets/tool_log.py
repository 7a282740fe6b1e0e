"""The tool-call log: one row per call (status, name, input, duration, result).

Events are buffered and applied in a batch by `flush()`, which a timer calls a
few times a second; a call's row is updated in place when it ends. Selecting
a row posts `ToolLog.Selected` with the full call. Inputs and results are cut to
their column, with an ellipsis; the columns follow the pane's width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.widgets import DataTable, Label

from shammah_tui.formatting import compact_json, ellipsize, format_ms, tool_summary
from shammah_tui.core.records import ToolCallRow
from shammah_tui.core.tool_calls import ToolCallEvent

#: Rows kept; older ones are dropped.
MAX_ROWS = 500
#: Fixed column widths: status, tool name, time.
STATUS_W, NAME_W, TIME_W = 1, 22, 8
#: Least width of the input and result columns.
MIN_INPUT_W, MIN_RESULT_W = 8, 10
#: Status → (icon, theme colour).
STATUS_STYLE = {"running": ("◌", "bold yellow"), "ok": ("✓", "bold green"), "error": ("✗", "bold red")}


def event_from_row(row: ToolCallRow) -> ToolCallEvent:
    """A stored call as the log shows it."""
    # The store keeps the status as text; it only ever holds what a ToolCallEvent wrote.
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
        self._widths = (28, 40)  # input, result

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=False,
                                           show_cursor=True, id="tool-table")
        self._add_columns(table)
        yield table
        yield Label("No tool calls yet. /teach starts a teaching session; /analyze and /compare "
                    "call tools directly.", classes="empty-hint")

    @property
    def calls(self) -> list[ToolCallEvent]:
        """Every call shown, oldest first (the latest state of each)."""
        return [self._calls[key] for key in self._order]

    def _add_columns(self, table: DataTable[Text]) -> None:
        input_w, result_w = self._widths
        table.add_column("", key="status", width=STATUS_W)
        table.add_column("tool", key="name", width=NAME_W)
        table.add_column("input", key="input", width=input_w)
        table.add_column("time", key="time", width=TIME_W)
        table.add_column("result", key="result", width=result_w)

    def on_resize(self, event: Resize) -> None:
        """Fit the input and result columns to the width, so a long result ends in an ellipsis."""
        table = self.query_one(DataTable)
        widths = column_widths(event.size.width - self.styles.gutter.width, table.styles.scrollbar_size_vertical)
        if widths == self._widths:
            return
        self._widths = widths
        row = table.cursor_row
        table.clear(columns=True)
        self._add_columns(table)
        for key in self._order:
            table.add_row(*_cells(self._calls[key], widths), key=key)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)

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
                for column, value in zip(("status", "name", "input", "time", "result"),
                                         _cells(event, self._widths)):
                    table.update_cell(key, column, value)
                continue
            self._serial += 1
            key = f"call-row-{self._serial}"
            self._calls[key] = event
            self._order.append(key)
            if event.status == "running":
                self._open[event.call_id] = key
            table.add_row(*_cells(event, self._widths), key=key)
        while len(self._order) > MAX_ROWS:
            old = self._order.pop(0)
            self._calls.pop(old, None)
            table.remove_row(old)
        self.set_class(bool(self._order), "-has-calls")
        table.move_cursor(row=table.row_count - 1, animate=False)

    def settle_open(self, summary: str = "cancelled") -> int:
        """End every call still shown as running (its end never came): ✗ and `summary`.

        Returns how many rows were settled.
        """
        self.flush()
        if not self._open or not self.is_mounted:
            return 0
        table = self.query_one(DataTable)
        settled = 0
        for key in list(self._open.values()):
            call = self._calls.get(key)
            if call is None:
                continue
            self._calls[key] = ended = replace(call, status="error", summary=summary)
            for column, value in zip(("status", "result"), _cells(ended, self._widths)[::4]):
                table.update_cell(key, column, value)
            settled += 1
        self._open.clear()
        return settled

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


def column_widths(width: int, scrollbar: int = 2) -> tuple[int, int]:
    """(input, result) column widths for a log `width` cells wide (each column pads 1 a side), with
    room for a vertical `scrollbar` that wide: wider rows would bring a horizontal one too."""
    rest = width - (STATUS_W + NAME_W + TIME_W) - 5 * 2 - scrollbar
    input_w = max(MIN_INPUT_W, min(28, rest * 2 // 5))
    return input_w, max(MIN_RESULT_W, rest - input_w)


def _cells(event: ToolCallEvent, widths: tuple[int, int]) -> tuple[Text, Text, Text, Text, Text]:
    """The row for a call; plain `Text`, so nothing in a tool's input is read as markup."""
    input_w, result_w = widths
    icon, style = STATUS_STYLE.get(event.status, ("?", ""))
    summary = "running…" if event.status == "running" else ellipsize(tool_summary(event.summary), result_w)
    duration = "" if event.duration_ms is None else format_ms(event.duration_ms)
    return (Text(icon, style=style), Text(ellipsize(event.name, NAME_W), style="bold"),
            Text(compact_json(event.input, input_w), style="dim"), Text(duration, justify="right"),
            Text(summary, style="italic" if event.status == "running" else "", no_wrap=True, overflow="ellipsis"))
