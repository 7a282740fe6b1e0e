"""A loopback Messages API server for tests: the real SDK talks to it over real sockets.

`FakeMessagesAPI` serves `POST /v1/messages` on 127.0.0.1 with an ephemeral port,
streaming (SSE, the full event order the SDK expects) and non-streaming (JSON).
Replies come from a script queue (`enqueue_*`), then from an optional `responder`,
then a default text. Every request is recorded in `.requests`. `POST /v1/messages/count_tokens`
and `GET /v1/models[/ID]` answer too (for pass-through tests).

    api = FakeMessagesAPI()
    base_url = await api.start()
    api.enqueue_text("4", stream_chunks=["", "4"])
    api.enqueue_error(429, "rate_limit_error", "slow down", {"retry-after-ms": "5"})
    ...
    await api.stop()

Or use the `fake_api` fixture below (a started server, stopped afterwards).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web

DEFAULT_TEXT = "This is the fake Messages API's default reply."
FAKE_MODEL = "claude-fake-1"


@dataclass
class RecordedRequest:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])


# --- script items: each describes one reply -------------------------------------------


@dataclass
class Text:
    """A text reply, streamed in `chunks`."""

    chunks: list[str]
    stop_reason: str = "end_turn"
    usage: tuple[int, int] | None = None
    chunk_delay_s: float = 0.0
    """Pause between streamed events (a slow answer, for clients that hang up mid-stream)."""


@dataclass
class ToolUse:
    """Optional text, then one tool_use block per call; stop_reason "tool_use"."""

    calls: list[tuple[str, str, Any]]  # (id, name, input)
    text_before: str = ""
    stop_reason: str = "tool_use"
    usage: tuple[int, int] | None = None


@dataclass
class MalformedToolUse:
    """A tool_use block whose input_json_delta does not parse as JSON."""

    call_id: str
    name: str
    partial_json: str
    usage: tuple[int, int] | None = None


@dataclass
class Error:
    """An HTTP error status with the API's error body."""

    status: int
    body_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamError:
    """A 200 SSE stream that starts, then sends `event: error` (e.g. overloaded_error)."""

    text_prefix: str
    body_type: str
    message: str


@dataclass
class CutStream:
    """Some SSE events, then the connection is dropped mid-body."""

    text_prefix: str


@dataclass
class Hang:
    """Wait `seconds` (or until the server stops) before replying with `then`."""

    seconds: float
    then: Any = None


Reply = Text | ToolUse | MalformedToolUse | Error | StreamError | CutStream | Hang
Responder = Callable[[dict[str, Any]], "str | Reply | None"]


def _split(text: str, chunks: int | Sequence[str] | None) -> list[str]:
    if chunks is None:
        # word-sized fragments, keeping the spaces, so the client sees several deltas
        parts = [w + " " for w in text.split(" ")]
        parts[-1] = parts[-1][:-1]
        return [p for p in parts if p] or [""]
    if isinstance(chunks, int):
        n = max(1, chunks)
        size = max(1, -(-len(text) // n))
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]
    parts = list(chunks)
    if "".join(parts) != text:
        raise ValueError("stream_chunks must join to text")
    return parts


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeMessagesAPI:
    """A scripted Messages API on 127.0.0.1 (see the module docstring)."""

    def __init__(self, responder: Responder | None = None, default_text: str = DEFAULT_TEXT) -> None:
        self.responder = responder
        self.default_text = default_text
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self._queue: deque[Reply] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        """Start serving; returns the base URL (http://127.0.0.1:PORT)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that hangs up (timeout tests) cancels its handler
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; pending hangs end at once."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- script ----------------------------------------------------------------------

    def new_id(self, prefix: str = "toolu") -> str:
        return f"{prefix}_fake{next(self._ids):04d}"

    def enqueue(self, reply: Reply) -> None:
        self._queue.append(reply)

    @property
    def pending(self) -> int:
        """Script items not yet served."""
        return len(self._queue)

    def enqueue_text(
        self,
        text: str,
        stream_chunks: int | Sequence[str] | None = None,
        *,
        stop_reason: str = "end_turn",
        usage: tuple[int, int] | None = None,
        chunk_delay_s: float = 0.0,
    ) -> None:
        """A text reply; `stream_chunks` is a count or the exact fragments (default: words)."""
        self.enqueue(Text(_split(text, stream_chunks), stop_reason, usage, chunk_delay_s))

    def enqueue_tool_use(
        self,
        tool_calls: Sequence[tuple[str, Any]],
        text_before: str = "",
        *,
        usage: tuple[int, int] | None = None,
    ) -> list[str]:
        """A turn that calls tools; returns the tool_use ids in order."""
        calls = [(self.new_id(), name, inp) for name, inp in tool_calls]
        self.enqueue(ToolUse(calls, text_before, usage=usage))
        return [c[0] for c in calls]

    def enqueue_error(
        self,
        status: int,
        body_type: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
    ) -> None:
        """An HTTP error reply, `times` times in a row (the SDK retries 429/5xx)."""
        for _ in range(times):
            self.enqueue(Error(status, body_type, message, dict(headers or {})))

    def enqueue_stream_error(self, body_type: str = "overloaded_error", message: str = "Overloaded",
                             text_prefix: str = "") -> None:
        """A stream that fails mid-way with `event: error` (status 200)."""
        self.enqueue(StreamError(text_prefix, body_type, message))

    def enqueue_cut_stream(self, text_prefix: str = "The answer is") -> None:
        """Send message_start and some text, then drop the connection."""
        self.enqueue(CutStream(text_prefix))

    def enqueue_malformed_tool_input(self, name: str = "query_local_model",
                                     partial_json: str = '{"query": oops not json') -> str:
        """A tool_use turn whose streamed input is not JSON; returns its tool_use id."""
        call_id = self.new_id()
        self.enqueue(MalformedToolUse(call_id, name, partial_json))
        return call_id

    def enqueue_hang(self, seconds: float, then: Reply | None = None) -> None:
        """Wait before replying (timeout tests); ends early when the server stops."""
        self.enqueue(Hang(seconds, then))

    # --- serving ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        self.requests.append(RecordedRequest(request.path, dict(request.headers), body))
        if request.path.endswith("/v1/messages/count_tokens"):
            return web.json_response({"input_tokens": max(1, len(json.dumps(body.get("messages", []))) // 4)})
        if request.path.endswith("/v1/models"):
            return web.json_response({"data": [_model_info(FAKE_MODEL)], "has_more": False,
                                      "first_id": FAKE_MODEL, "last_id": FAKE_MODEL})
        if "/v1/models/" in request.path:
            # the raw last segment: an id that arrived quoted says so in the reply
            return web.json_response(_model_info(request.raw_path.split("?")[0].rsplit("/", 1)[-1]))
        if not request.path.endswith("/v1/messages"):
            return _error_response(Error(404, "not_found_error", f"no route {request.path}"))
        reply = self._next_reply(body)
        return await self._serve(request, body, reply)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            made = self.responder(body)
            if isinstance(made, str):
                return Text(_split(made, None))
            if made is not None:
                return made
        return Text(_split(self.default_text, None))

    async def _serve(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        if isinstance(reply, Hang):
            try:
                await asyncio.wait_for(self._stopping.wait(), reply.seconds)
            except TimeoutError:
                pass
            return await self._serve(request, body, reply.then or Text(_split(self.default_text, None)))
        if isinstance(reply, Error):
            return _error_response(reply)
        events = self._events(body, reply)
        if body.get("stream"):
            return await self._serve_sse(request, events, reply)
        return await self._serve_json(request, events, reply)

    def _usage(self, body: dict[str, Any], reply: Reply, out_text: str) -> tuple[int, int]:
        given = getattr(reply, "usage", None)
        if given is not None:
            return given
        prompt = json.dumps(body.get("messages", [])) + json.dumps(body.get("system", ""))
        return max(1, len(prompt) // 4), max(1, len(out_text) // 4)

    def _events(self, body: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any]]]:
        """The SSE events of a reply, in wire order (errors and cuts are handled by the server)."""
        blocks: list[list[tuple[str, dict[str, Any]]]] = []  # per block: start, deltas…, stop
        out_text = ""
        stop_reason: str | None = "end_turn"

        def text_block(parts: list[str]) -> None:
            i = len(blocks)
            evs = [("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})]
            evs += [("content_block_delta", {"index": i, "delta": {"type": "text_delta", "text": p}})
                    for p in parts if p]
            evs.append(("content_block_stop", {"index": i}))
            blocks.append(evs)

        def tool_block(call_id: str, name: str, pieces: list[str]) -> None:
            i = len(blocks)
            evs = [("content_block_start", {"index": i, "content_block": {
                "type": "tool_use", "id": call_id, "name": name, "input": {}}})]
            evs += [("content_block_delta", {"index": i, "delta": {"type": "input_json_delta", "partial_json": p}})
                    for p in pieces]
            evs.append(("content_block_stop", {"index": i}))
            blocks.append(evs)

        if isinstance(reply, Text):
            text_block(reply.chunks)
            out_text = "".join(reply.chunks)
            stop_reason = reply.stop_reason
        elif isinstance(reply, ToolUse):
            if reply.text_before:
                text_block(_split(reply.text_before, None))
                out_text = reply.text_before
            for call_id, name, inp in reply.calls:
                raw = json.dumps(inp)
                half = len(raw) // 2  # two partial_json fragments, as the API splits them
                tool_block(call_id, name, [raw[:half], raw[half:]])
                out_text += raw
            stop_reason = reply.stop_reason
        elif isinstance(reply, MalformedToolUse):
            tool_block(reply.call_id, reply.name, [reply.partial_json])
            out_text = reply.partial_json
            stop_reason = "tool_use"
        elif isinstance(reply, (StreamError, CutStream)):
            text_block(_split(reply.text_prefix, None) if reply.text_prefix else [])
            out_text = reply.text_prefix
            stop_reason = None

        in_tok, out_tok = self._usage(body, reply, out_text)
        msg_id = self.new_id("msg")
        start = ("message_start", {"message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": body.get("model", "fake"),
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": in_tok, "output_tokens": 1},
        }})
        events = [start, ("ping", {})]
        for evs in blocks:
            events += evs
        if isinstance(reply, (StreamError, CutStream)):
            # drop the last content_block_stop: the failure comes mid-block
            return events[:-1] if blocks else events
        events.append(("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                         "usage": {"output_tokens": out_tok}}))
        events.append(("message_stop", {}))
        return events

    async def _serve_sse(self, request: web.Request, events: list[tuple[str, dict[str, Any]]],
                         reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={
            "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": self.new_id("req"),
        })
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        delay = reply.chunk_delay_s if isinstance(reply, Text) else 0.0
        for name, data in events:
            await resp.write(_sse(name, {"type": name, **data}))
            if delay:
                await asyncio.sleep(delay)
        if isinstance(reply, StreamError):
            await resp.write(_sse("error", {"type": "error", "error": {
                "type": reply.body_type, "message": reply.message}}))
        elif isinstance(reply, CutStream):
            await asyncio.sleep(0.05)  # let the client read the prefix first
            # Close the socket without the final chunk: the client sees an incomplete body.
            _drop(request)
            return resp  # aiohttp notices the closed socket and ends the handler quietly
        await resp.write_eof()
        return resp

    async def _serve_json(self, request: web.Request, events: list[tuple[str, dict[str, Any]]],
                          reply: Reply) -> web.StreamResponse:
        if isinstance(reply, StreamError):
            return _error_response(Error(529 if reply.body_type == "overloaded_error" else 500,
                                         reply.body_type, reply.message))
        message: dict[str, Any] = {}
        content: list[dict[str, Any]] = []
        raw_inputs: dict[int, str] = {}
        for name, data in events:
            if name == "message_start":
                message = dict(data["message"])
            elif name == "content_block_start":
                content.append(dict(data["content_block"]))
            elif name == "content_block_delta":
                delta = data["delta"]
                if delta["type"] == "text_delta":
                    content[data["index"]]["text"] += delta["text"]
                else:
                    raw_inputs[data["index"]] = raw_inputs.get(data["index"], "") + delta["partial_json"]
            elif name == "message_delta":
                message["stop_reason"] = data["delta"]["stop_reason"]
                message["usage"]["output_tokens"] = data["usage"]["output_tokens"]
        for i, raw in raw_inputs.items():
            try:
                content[i]["input"] = json.loads(raw)
            except json.JSONDecodeError:
                content[i]["input"] = raw  # what a malformed input looks like without streaming
        message["content"] = content
        if isinstance(reply, CutStream):
            # declare the whole body, send half of it, then drop the connection
            data = json.dumps(message).encode()
            resp = web.StreamResponse(status=200, headers={"content-type": "application/json"})
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            await asyncio.sleep(0.05)
            _drop(request)
            return resp
        return web.json_response(message, headers={"request-id": self.new_id("req")})


def _model_info(model_id: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": "2026-01-01T00:00:00Z"}


def _drop(request: web.Request) -> None:
    """Close the client's socket at once, mid-body."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def _error_response(err: Error) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": err.body_type, "message": err.message}},
        status=err.status, headers=err.headers,
    )


@pytest_asyncio.fixture
async def fake_api() -> AsyncIterator[FakeMessagesAPI]:
    """A started FakeMessagesAPI, stopped after the test."""
    api = FakeMessagesAPI()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()
