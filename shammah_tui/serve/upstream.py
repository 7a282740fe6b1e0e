"""Passing a client's request on to Claude unchanged, and relaying the answer back as it arrives.

Only the server holds the real API key; the client's own credentials (the local token) are
never passed on. Every upstream fault reaches the client in the API's shape: an error status
before the answer started, an `event: error` once a stream is under way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from shammah_tui.serve.protocol import ApiError, error_body, sse_event
from shammah_tui.serve.sse import Tally, parse_event, split_events
from shammah_tui.teachers.anthropic_errors import api_error_type, error_kind
from shammah_tui.core.teaching import ErrorKind, TeacherError, TeacherReply

#: Sent on every upstream request; a request that carries it came back to us (a loop).
HOP_HEADER = "shammah-hop"
SOURCE_HEADER = "shammah-source"
REQUEST_ID_HEADER = "request-id"
#: Request headers never passed on: the client's credentials, and what only concerned the
#: connection to us (aiohttp sets its own).
_DROP_REQUEST = frozenset({
    "host", "content-length", "authorization", "x-api-key", "connection", "keep-alive",
    "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "expect", "accept-encoding", "cookie", HOP_HEADER,
})
_DROP_RESPONSE = frozenset({
    "content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
    "set-cookie", "server", "date",
})
#: An upstream event still unfinished at this size is relayed raw and no longer read.
_MAX_EVENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class UpstreamConfig:
    base_url: str
    api_key: str
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0
    """Longest wait for the next bytes of an answer (the SDK's own default)."""
    max_output_bytes: int = 64 * 1024 * 1024
    """Longest answer relayed; a longer one is cut with an error."""


class Upstream:
    """Claude, reached with the server's key; one connection pool, made on the serving loop."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout_s,
                                            sock_read=self.config.read_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256),
                                                  auto_decompress=True, trust_env=False)
        return self._session

    def headers_for(self, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = {k: v for k, v in client_headers.items() if k.lower() not in _DROP_REQUEST}
        headers["authorization"] = f"Bearer {self.config.api_key}"  # as the SDK itself sends the key
        headers["accept-encoding"] = "identity"  # the bytes relayed are the bytes received
        headers[HOP_HEADER] = "1"
        return headers

    def redact(self, text: str) -> str:
        return text.replace(self.config.api_key, "[redacted]") if self.config.api_key else text

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def api_error_response(err: ApiError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=err.headers)


class _ClientGone(Exception):
    """Writing to the client failed: it hung up."""


class Relay:
    """One request passed on to Claude, and what goes back to the client.

    A streamed answer goes out event by event as it arrives. With `hold_tail`, its last events
    (from message_stop on), or a whole non-streamed answer, wait for `finish()`: the engine
    stores the answer in between, so a client that saw a complete answer knows it was stored.
    """

    def __init__(self, upstream: Upstream, request: web.Request, method: str, path: str, body: bytes | None,
                 *, stream: bool, hold_tail: bool, request_id: str = "") -> None:
        self.upstream = upstream
        self.request = request
        self.method = method
        self.path = path
        self.body = body
        self.stream = stream
        self.hold_tail = hold_tail
        self.request_id = request_id
        """Ours, sent when Claude's answer carries none (a streamed response's headers go out first)."""
        self.tally = Tally()
        self.failure: TeacherError | None = None
        """Why the answer is not one to learn from (None: a finished answer came)."""
        self.started = False
        self._response: web.StreamResponse | None = None
        self._pending: web.StreamResponse | None = None
        self._tail: list[bytes] = []
        self._client_gone = False

    async def run(self) -> None:
        """Send the request and relay the answer; upstream faults become `failure`, never raise."""
        self.started = True
        config = self.upstream.config
        try:
            async with self.upstream.session().request(
                self.method, self.upstream.base_url + self.path, data=self.body,
                params=list(self.request.rel_url.query.items()),
                headers=self.upstream.headers_for(self.request.headers), allow_redirects=False,
            ) as resp:
                if self.stream and resp.status == 200 and resp.content_type == "text/event-stream":
                    await self._relay_stream(resp)
                else:
                    await self._relay_whole(resp)
        except _ClientGone:
            self._fail("stream_cut", "The client hung up mid-answer; the rest was not fetched.")
        except TimeoutError:
            self._fail("timeout", f"Claude sent nothing for {config.read_timeout_s:g} s.", status=504)
        except aiohttp.ClientConnectorError as exc:
            self._fail("connection", f"Could not reach Claude at {self.upstream.base_url}: "
                                     f"{exc.strerror or type(exc).__name__}.", status=502)
        except (aiohttp.ClientError, ValueError) as exc:  # a cut body, a bad chunk, an odd URL
            self._fail("stream_cut", f"The connection to Claude failed mid-answer ({type(exc).__name__}).",
                       status=502)
        if self._response is not None and self.failure is not None and not self._client_gone:
            await self._send_error_event()

    async def finish(self) -> web.StreamResponse:
        """Send what was held back; the response for the handler to return."""
        if self._response is not None:
            if not self._client_gone:
                try:
                    if self._tail:
                        await self._response.write(b"".join(self._tail))
                    await self._response.write_eof()
                except ConnectionError:
                    pass  # the client left after the answer was stored: nothing to undo
            return self._response
        if self._pending is not None:
            return self._pending
        return api_error_response(ApiError(500, "The request was never sent to Claude."))

    # --- relaying --------------------------------------------------------------------

    async def _relay_stream(self, resp: aiohttp.ClientResponse) -> None:
        self._response = web.StreamResponse(status=resp.status, headers=self._headers(resp))
        try:
            await self._response.prepare(self.request)
        except ConnectionError as exc:
            self._client_gone = True
            raise _ClientGone from exc
        limit = self.upstream.config.max_output_bytes
        received, buffer, reading = 0, b"", True
        async for chunk in resp.content.iter_any():
            received += len(chunk)
            if received > limit:
                self._fail("unknown", f"Claude's answer passed the server's limit of {limit:,} bytes; it was cut.")
                return
            if not reading:  # an event too large to read: relayed as it comes, never learned
                await self._write(chunk)
                continue
            events, buffer = split_events(buffer + chunk)
            out: list[bytes] = []
            for raw in events:
                name, data = parse_event(raw)
                self.tally.feed_event(name, data)
                held = self.hold_tail and (self._tail or name == "message_stop")
                (self._tail if held else out).append(raw)
            if len(buffer) > _MAX_EVENT_BYTES:
                reading, self.tally.unread = False, True
                out.append(buffer)
                buffer = b""
            if out:
                await self._write(b"".join(out))
        if buffer:
            await self._write(buffer)  # an unfinished last event, relayed as it came
        if self.tally.unread:
            return  # relayed as it came, whole or not; never learned
        if self.tally.error is not None:
            self._fail(error_kind(None, self.tally.error),
                       f"Claude's stream ended with an error ({self.tally.error}).")
        elif not self.tally.finished:
            self._fail("stream_cut", "Claude's stream ended before the answer was complete.")

    async def _relay_whole(self, resp: aiohttp.ClientResponse) -> None:
        limit = self.upstream.config.max_output_bytes
        chunks, size = [], 0
        async for chunk in resp.content.iter_any():  # a body cut short raises ClientPayloadError
            size += len(chunk)
            if size > limit:
                self._fail("unknown", f"Claude's answer passed the server's limit of {limit:,} bytes.", status=502)
                return
            chunks.append(chunk)
        body = b"".join(chunks)
        headers = self._headers(resp)
        if resp.status >= 400:
            key = self.upstream.config.api_key.encode()
            if key and key in body:  # an upstream that echoes the key must not hand it to a client
                body = body.replace(key, b"[redacted]")
            error_type, message = error_of(resp.status, body)
            if error_type is None:  # not the API's shape: wrapped so the client's SDK can read it
                error_type = ApiError(resp.status, "").error_type
                body = json.dumps(error_body(error_type, message)).encode()
                headers["content-type"] = "application/json"
            self._fail(error_kind(resp.status, error_type),
                       f"Claude returned {resp.status} ({error_type}): {self.upstream.redact(message)}")
        else:
            try:
                self.tally.feed_message(json.loads(body))
            except (ValueError, RecursionError):
                pass  # relayed as it came; not an answer to learn
        self._pending = web.Response(status=resp.status, body=body, headers=headers)

    def _headers(self, resp: aiohttp.ClientResponse) -> dict[str, str]:
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in _DROP_RESPONSE}
        headers[SOURCE_HEADER] = "forward"
        if self.request_id and REQUEST_ID_HEADER not in resp.headers:
            headers[REQUEST_ID_HEADER] = self.request_id
        return headers

    async def _write(self, data: bytes) -> None:
        assert self._response is not None
        try:
            await self._response.write(data)
        except ConnectionError as exc:  # aiohttp's ClientConnectionResetError is one
            self._client_gone = True
            raise _ClientGone from exc

    def _fail(self, kind: ErrorKind, message: str, status: int = 502) -> None:
        self.failure = TeacherError(kind, message)
        if self._response is None and self._pending is None:
            self._pending = api_error_response(ApiError(status, message, api_error_type(kind)))

    async def _send_error_event(self) -> None:
        assert self._response is not None and self.failure is not None
        error_type = api_error_type(self.failure.kind)
        if self.tally.error is not None:
            return  # Claude's own error event already went out
        self._tail.clear()  # a cut answer must not end in message_stop
        try:
            await self._response.write(sse_event("error", error_body(error_type, self.failure.message)))
        except ConnectionError:
            self._client_gone = True


def error_of(status: int, body: bytes) -> tuple[str | None, str]:
    """(the API error type, its message) of an error body; type None when it is not the API's shape."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        return error["type"], " ".join(str(error.get("message", "")).split())[:200]
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return None, text or f"HTTP {status}"


async def ask_again(upstream: Upstream, request: web.Request, body: dict[str, Any]) -> TeacherReply:
    """The client's own request sent to Claude once more, not relayed: a spot check of a local
    answer asks what the client asked (system prompt, model and all). Raises TeacherError."""
    again = json.dumps({**body, "stream": False}).encode()
    try:
        async with upstream.session().post(
            upstream.base_url + "/v1/messages", data=again,
            headers=upstream.headers_for(request.headers), allow_redirects=False,
        ) as resp:
            raw = await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise TeacherError("connection",
                           f"Claude could not be reached for a spot check ({type(exc).__name__}).") from None
    if resp.status != 200:
        error_type, message = error_of(resp.status, raw)
        raise TeacherError(error_kind(resp.status, error_type or "api_error"),
                           f"Claude returned {resp.status} to a spot check: {upstream.redact(message)}")
    tally = Tally()
    try:
        tally.feed_message(json.loads(raw))
    except (ValueError, RecursionError):
        raise TeacherError("unknown", "Claude's answer to a spot check was not JSON.") from None
    return TeacherReply(tally.learnable_text(), tally.input_tokens, tally.output_tokens)
