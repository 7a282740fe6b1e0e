"""The request log: one row per request the Messages-API server answered or refused.

Rows (time, client, route, status, source, latency, tokens saved) are buffered and applied in a
batch by `flush()`, which the main screen's timer calls a few times a second; the newest is at the
bottom and only the last `MAX_ROWS` are kept. An error status (4xx, 5xx) draws its row in the
`request-log--error` style from the stylesheet. Selecting a row posts `RequestLog.Selected` with it.

The pane stays hidden until it is needed: once it holds a row, or once `reveal()` is called
(serving started, or its key was pressed), so a UI that never serves keeps its layout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label

from shammah_tui.core.records import RequestLogRow
from shammah_tui.formatting import ellipsize, format_count, format_ms

#: Rows kept; older ones are dropped.
MAX_ROWS = 200
#: (key, heading, width) of each column: 72 cells with their padding, so all of them fit at 80 columns.
COLUMNS = (("time", "time", 8), ("client", "client", 8), ("route", "route", 12), ("status", "status", 6),
           ("source", "source", 10), ("latency", "latency", 7), ("saved", "saved", 7))


def is_error(row: RequestLogRow) -> bool:
    """A status the client saw as a failure (4xx or 5xx)."""
    return row.status >= 400


def tokens_saved(row: RequestLogRow) -> int:
    """Input and output tokens the local answer kept from going upstream."""
    return row.saved_input_tokens + row.saved_output_tokens


def clock_time(ts: float) -> str:
    """`created_at` as the local time of day."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


class RequestLog(Vertical):
    """Requests served through `serve` (or `--serve`), newest at the bottom."""

    COMPONENT_CLASSES = {"request-log--error"}

    @dataclass
    class Selected(Message):
        """A request was picked in the log: show it in full."""

        request: RequestLogRow
        """The request's row, every field the log keeps."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._pending: list[RequestLogRow] = []
        self._rows: dict[str, RequestLogRow] = {}
        self._order: list[str] = []
        self._serial = 0

    def compose(self) -> ComposeResult:
        # The row's own colour wins over the cursor's, so an error stays red where the cursor rests.
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=False, show_cursor=True,
                                           cursor_foreground_priority="renderable", id="request-table")
        for key, heading, width in COLUMNS:
            table.add_column(heading, key=key, width=width)
        yield table
        yield Label("No requests served yet. ctrl+p → “Serve the Messages API” (or shammah-tui --serve PORT) "
                    "lets Claude clients through; each request shows here.", classes="empty-hint")

    @property
    def requests(self) -> list[RequestLogRow]:
        """Every request shown, oldest first."""
        return [self._rows[key] for key in self._order]

    @property
    def revealed(self) -> bool:
        """Whether the pane is shown (it has held a row, or was asked for)."""
        return self.has_class("-revealed")

    def reveal(self) -> None:
        """Show the pane, even while it is empty."""
        self.add_class("-revealed")

    def push(self, row: RequestLogRow) -> None:
        """Queue a served request for the next flush."""
        self._pending.append(row)

    def restore(self, rows: Sequence[RequestLogRow]) -> None:
        """Show requests stored by earlier sessions, oldest first."""
        self._pending.extend(rows)
        self.flush()

    def flush(self) -> None:
        """Apply the queued requests to the table in one batch."""
        if not self._pending or not self.is_mounted:
            return
        table = self.query_one(DataTable)
        rows, self._pending = self._pending[-MAX_ROWS:], []
        error_style = self.get_component_rich_style("request-log--error", partial=True)
        for row in rows:
            self._serial += 1
            key = f"request-row-{self._serial}"
            self._rows[key] = row
            self._order.append(key)
            table.add_row(*_cells(row, error_style if is_error(row) else None), key=key)
        while len(self._order) > MAX_ROWS:
            old = self._order.pop(0)
            self._rows.pop(old, None)
            table.remove_row(old)
        self.add_class("-has-requests", "-revealed")
        table.move_cursor(row=table.row_count - 1, animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._rows.get(str(event.row_key.value))
        if row is not None:
            self.post_message(self.Selected(row))


def _cells(row: RequestLogRow, error_style: Style | None) -> list[Text]:
    """A request's cells; plain `Text`, so nothing a client sent is read as markup."""
    values = (clock_time(row.created_at), row.token_name or "—", row.route, str(row.status), row.source or "—",
              format_ms(row.latency_ms), format_count(tokens_saved(row)))
    right = {"status", "latency", "saved"}
    return [Text(ellipsize(value, width), style=error_style or "", justify="right" if key in right else "left",
                 no_wrap=True)
            for (key, _, width), value in zip(COLUMNS, values)]
