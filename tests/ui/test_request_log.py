"""The request log pane: served requests from engine events and the store, errors marked, enter
opens one in full."""

from __future__ import annotations

from textual.widgets import DataTable, Static, Tabs

from shammah_tui.core.events import RequestServed
from shammah_tui.core.records import RequestLogRow
from shammah_tui.ui.screens.request_detail import RequestDetailScreen
from shammah_tui.ui.widgets.request_log import MAX_ROWS, RequestLog
from tests.ui.fakes import FakeEngine, FakeStore
from tests.ui.helpers import emit, make_app, settle

T0 = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC


def served_rows() -> list[RequestLogRow]:
    """A local answer, a forwarded one, a refused client and an upstream failure."""
    return [
        RequestLogRow("req_1", "POST", "/v1/messages", "messages", 200, "template", "claude-sonnet-4-5",
                      "default", 0.8, 12, 9, saved_input_tokens=12, saved_output_tokens=9, saved_usd=0.000171,
                      created_at=T0, id=1),
        RequestLogRow("req_2", "POST", "/v1/chat/completions", "chat_completions", 200, "forward", "gpt-4o",
                      "laptop", 912.0, 340, 120, created_at=T0 + 5, id=2),
        RequestLogRow("req_3", "POST", "/v1/messages", "messages", 401, None, None, None, 0.3,
                      error="no such client token", created_at=T0 + 9, id=3),
        RequestLogRow("req_4", "POST", "/v1/messages", "messages", 503, None, "claude-sonnet-4-5", "ci-bot",
                      30012.0, error="upstream unavailable: connection refused", created_at=T0 + 12, id=4),
    ]


def cell_texts(table: DataTable, row: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(row)]


async def test_served_requests_appear_as_rows(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        log = app.main.request_log
        assert not log.revealed and log.region.area == 0, "a UI that never served shows no request pane"
        await emit(pilot, engine, *[RequestServed(row) for row in served_rows()])
        await settle(pilot)
        table = log.query_one(DataTable)
        assert log.requests == served_rows()
        assert table.row_count == 4
        assert log.revealed and log.region.area > 0
        assert table.cursor_row == 3, "the newest request is at the bottom, under the cursor"
        first = cell_texts(table, 0)
        assert first[1:] == ["default", "messages", "200", "template", "0.8 ms", "21"]
        assert cell_texts(table, 1)[1:5] == ["laptop", "chat_comple…", "200", "forward"]
        assert cell_texts(table, 3)[1:] == ["ci-bot", "messages", "503", "—", "30 s", "0"]


async def test_rows_wait_for_the_flush(engine, clock):
    """Events are buffered: the table changes on the timer's flush, not per event."""
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.main.flush_timer is not None
        app.main.flush_timer.pause()  # on a loaded machine the timer could flush between the lines below
        await emit(pilot, engine, RequestServed(served_rows()[0]))
        table = app.main.request_log.query_one(DataTable)
        assert table.row_count == 0
        app.main.flush()
        assert table.row_count == 1


async def test_error_statuses_stand_out(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await emit(pilot, engine, *[RequestServed(row) for row in served_rows()])
        await settle(pilot)
        log = app.main.request_log
        table = log.query_one(DataTable)
        error_style = log.get_component_rich_style("request-log--error", partial=True)
        assert error_style.color is not None and error_style.bold
        for index, row in enumerate(served_rows()):
            styles = {cell.style for cell in table.get_row_at(index)}
            if row.status >= 400:
                assert styles == {error_style}, f"{row.status}: every cell in the error style"
            else:
                assert error_style not in styles, f"{row.status} is not an error"


async def test_enter_opens_the_request_and_response(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await emit(pilot, engine, *[RequestServed(row) for row in served_rows()])
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        table = app.main.request_log.query_one(DataTable)
        assert table.has_focus
        table.move_cursor(row=3)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RequestDetailScreen)
        assert screen.request == served_rows()[3]
        assert screen.query_one("#request-dialog").has_class("-error")
        request = str(screen.query_one("#request-fields", Static).render())
        response = str(screen.query_one("#response-fields", Static).render())
        for text in ("POST", "/v1/messages", "ci-bot", "claude-sonnet-4-5", "req_4"):
            assert text in request
        for text in ("503", "30 s", "upstream unavailable: connection refused"):
            assert text in response
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main


async def test_restored_from_the_store_at_start(clock):
    store = FakeStore(stored_requests=served_rows())
    engine = FakeEngine(store=store)
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        log = app.main.request_log
        assert log.requests == served_rows()
        assert log.revealed


async def test_only_the_last_rows_are_kept(engine, clock):
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        base = served_rows()[0]
        rows = [RequestLogRow(f"req_{i}", base.method, base.path, base.route, base.status, base.source,
                              base.model, base.token_name, base.latency_ms, created_at=T0 + i)
                for i in range(MAX_ROWS + 30)]
        await emit(pilot, engine, *[RequestServed(row) for row in rows[:100]])
        await settle(pilot)
        await emit(pilot, engine, *[RequestServed(row) for row in rows[100:]])
        await settle(pilot)
        log = app.main.request_log
        assert log.requests == rows[-MAX_ROWS:]
        assert log.query_one(DataTable).row_count == MAX_ROWS


async def test_f5_shows_the_pane_before_any_request(engine, clock):
    """The key (and serving) reveal the empty pane with its hint; on a narrow terminal, as a tab."""
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tabs = app.main.query_one("#pane-tabs", Tabs)
        assert tabs.query_one("#tab-requests").has_class("-hidden")
        await pilot.press("f5")
        await settle(pilot)
        log = app.main.request_log
        assert log.revealed and log.region.area > 0
        assert app.main.pane == "requests" and tabs.active == "tab-requests"
        assert not tabs.query_one("#tab-requests").has_class("-hidden")
        assert app.main.conversation.region.area == 0
        assert isinstance(log, RequestLog)


async def test_serving_shows_the_empty_pane(engine, clock, monkeypatch, tmp_path):
    """Once the app serves, the pane is there to watch, before the first request comes."""
    import shammah_tui.serve.run as serve_run

    class StubServer:
        url = "http://127.0.0.1:8765"
        upstream_url = None
        token_path = tmp_path / "serve.token"

        async def stop(self) -> None:
            pass

    async def start_server(*args, **kwargs):
        return StubServer()

    monkeypatch.setattr(serve_run, "start_server", start_server)
    engine.data_dir = tmp_path
    app = make_app(engine, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert not app.main.request_log.revealed
        app.action_start_serving(8765)
        await settle(pilot)
        log = app.main.request_log
        assert log.revealed and log.region.area > 0
        assert log.query_one(".empty-hint").region.area > 0
