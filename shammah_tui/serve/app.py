"""The routes: `POST /v1/messages` through the engine or straight to Claude, and the endpoints
that only pass through (`/v1/messages/count_tokens`, `/v1/models`).

Every response is the API's: a message, an SSE stream in the API's event order, or an error
`{"type": "error", "error": {...}}` with the API's status, whatever the client sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.core.sanitize import strip_controls
from shammah_tui.serve.auth import presented_token, token_matches
from shammah_tui.serve.protocol import (
    ApiError,
    LocalTurn,
    check_messages,
    local_message,
    local_turn,
    new_id,
    parse_body,
)
from shammah_tui.serve.upstream import HOP_HEADER, SOURCE_HEADER, Relay, Upstream, api_error_response, ask_again
from shammah_tui.core.teaching import TeacherReply

if TYPE_CHECKING:
    from shammah_tui.engine import Engine, Query
    from shammah_tui.engine.query_flow import Forwarder
    from shammah_tui.core.teaching import TextCallback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedRequest:
    """One request the server answered, for whoever watches the traffic (the TUI, the CLI)."""

    method: str
    path: str
    status: int
    source: str | None
    """`neural|learned|template|forward`, or None for a refused request."""
    latency_ms: float

    def line(self) -> str:
        return f"{self.method} {self.path} {self.status} {self.source or '-'} {self.latency_ms:.0f} ms"


@dataclass
class ServeState:
    engine: Engine
    token: str
    upstream: Upstream | None
    """Claude, or None: then only what the engine answers is answered."""
    max_body_bytes: int
    on_request: Callable[[ServedRequest], None] | None = None


STATE = web.AppKey("serve_state", ServeState)


def build_app(state: ServeState) -> web.Application:
    app = web.Application(client_max_size=state.max_body_bytes, middlewares=[_guard])
    app[STATE] = state
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id}", models)
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The token first; every failure in the API's error shape; each request reported once."""
    state = request.app[STATE]
    t0 = time.perf_counter()
    try:
        if HOP_HEADER in request.headers:
            raise ApiError(508, "This request came back to the Shammah server that sent it: the server's "
                                "ANTHROPIC_BASE_URL points at the server itself.", headers={"x-should-retry": "false"})
        if not token_matches(presented_token(request.headers), state.token):
            raise ApiError(401, "Invalid API key: use the token in this Shammah server's serve.token file.")
        response = await handler(request)
    except ApiError as err:
        response = api_error_response(err)
    except web.HTTPException as exc:  # no such route, wrong method
        message = "No such endpoint." if exc.status == 404 else exc.reason
        response = api_error_response(ApiError(exc.status, message))
    except Exception:
        log.exception("serve: %s %s failed", request.method, request.path)
        response = api_error_response(ApiError(500, "The Shammah server failed on this request; see its log."))
    if state.on_request is not None:
        source = response.headers.get(SOURCE_HEADER)
        try:
            # the path is the client's: no escape sequence of it may reach a terminal
            state.on_request(ServedRequest(request.method, strip_controls(request.path)[:200], response.status,
                                           source, (time.perf_counter() - t0) * 1000))
        except Exception:  # a watcher's fault must not fail the request it watches
            log.exception("serve: on_request listener failed")
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (before reading it, when declared)."""
    too_large = ApiError(413, f"The request body is larger than this server's limit of {limit:,} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


# --- routes ----------------------------------------------------------------------------


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await read_body(request, state.max_body_bytes)
    body = parse_body(raw)
    check_messages(body)
    turn = local_turn(body)
    if turn is None:  # tools, images, odd parameters …: Claude's, unchanged and never learned
        return await _pass_through(request, state, "POST", "/v1/messages", raw, stream=body.get("stream") is True)
    return await _answer(request, state, body, raw, turn)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await read_body(request, state.max_body_bytes)
    check_messages(parse_body(raw), need_max_tokens=False)
    return await _pass_through(request, state, "POST", "/v1/messages/count_tokens", raw, stream=False)


async def models(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    model_id = request.match_info.get("model_id")
    # quoted whole: an id is one path segment upstream, whatever it holds
    path = "/v1/models" if model_id is None else "/v1/models/" + quote(model_id, safe="")
    return await _pass_through(request, state, "GET", path, None, stream=False)


async def _pass_through(request: web.Request, state: ServeState, method: str, path: str, body: bytes | None,
                        *, stream: bool) -> web.StreamResponse:
    if state.upstream is None:
        raise _no_upstream("This request needs Claude")
    relay = Relay(state.upstream, request, method, path, body, stream=stream, hold_tail=False)
    await relay.run()
    return await relay.finish()


async def _answer(request: web.Request, state: ServeState, body: dict, raw: bytes,
                  turn: LocalTurn) -> web.StreamResponse:
    """A text turn through the engine: a local answer, or Claude's (relayed, then learned)."""
    relay = None
    if state.upstream is not None:
        relay = Relay(state.upstream, request, "POST", "/v1/messages", raw, stream=turn.stream, hold_tail=True)
    result = await state.engine.ask(Question(turn.question, history=turn.history, scope=turn.scope),
                                    AskPolicy(auto_train="background", spot_check="background"),
                                    forward=None if relay is None else _forwarder(relay),
                                    check=None if state.upstream is None else _checker(state.upstream, request, body))
    if relay is not None and relay.started:
        return await relay.finish()  # the answer is stored (or refused) by now
    answer, source = result.answer, result.source
    if not answer or source is None:
        if state.upstream is not None:  # the engine refused it before forwarding
            raise ApiError(500, f"Shammah could not answer: {result.error or 'no answer'}")
        raise _no_upstream(f"The local side cannot answer this ({result.error or 'no answer'})")
    message = local_message(turn, body, answer)
    headers = {SOURCE_HEADER: source, "request-id": new_id("req")}
    if not turn.stream:
        return web.json_response(message.to_json(), headers=headers)
    response = web.StreamResponse(headers=headers | {"content-type": "text/event-stream",
                                                     "cache-control": "no-cache"})
    try:
        await response.prepare(request)
        await response.write(message.sse())
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; the answer was logged, as any answered query is
    return response


def _forwarder(relay: Relay) -> Forwarder:
    """The engine's forward step: the client's own request to Claude, relayed as it streams."""

    async def forward(query: Query, on_text: TextCallback | None) -> TeacherReply:
        await relay.run()
        if relay.failure is not None:
            raise relay.failure  # logged as an error, nothing learned
        tally = relay.tally
        return TeacherReply(tally.learnable_text(), tally.input_tokens, tally.output_tokens)

    return forward


def _checker(upstream: Upstream, request: web.Request, body: dict) -> Forwarder:
    """The engine's spot check: the client's own request asked again, so the teacher's answer is
    the one this client would get (its system prompt and model), never another scope's."""

    async def check(query: Query, on_text: TextCallback | None) -> TeacherReply:
        return await ask_again(upstream, request, body)

    return check


def _no_upstream(what: str) -> ApiError:
    return ApiError(503, f"{what}, and this Shammah server has no Claude upstream: set ANTHROPIC_API_KEY "
                         "where the server runs (not in the client) and restart it.",
                    headers={"x-should-retry": "false"})
