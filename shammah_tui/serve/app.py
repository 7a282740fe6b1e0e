"""The routes: `POST /v1/messages` through the engine or straight to Claude, the OpenAI-shaped
`POST /v1/chat/completions` (`serve.chat`) over the same engine, the endpoints that only pass
through (`/v1/messages/count_tokens`, `/v1/models`, answered locally without an upstream), and
`GET /health` (no token).

Every response is the API's: a message, an SSE stream in the API's event order, or an error
`{"type": "error", "error": {...}}` with the API's status (OpenAI's error shape on its route),
whatever the client sent. Each carries a `request-id`, and each is logged once in the store's
request log, with the client token's name, what it cost upstream and what a local answer saved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui import __version__
from shammah_tui.core.events import RequestServed
from shammah_tui.core.sanitize import strip_controls
from shammah_tui.serve.auth import presented_token, token_digest, token_matches
from shammah_tui.serve.protocol import (
    ApiError,
    LocalTurn,
    check_messages,
    estimate_tokens,
    local_message,
    local_turn,
    new_id,
    parse_body,
)
from shammah_tui.serve.upstream import (
    HOP_HEADER,
    REQUEST_ID_HEADER,
    SOURCE_HEADER,
    Relay,
    Upstream,
    api_error_response,
    ask_again,
)
from shammah_tui.store import RequestLogRow
from shammah_tui.core.teaching import TeacherError, TeacherReply

if TYPE_CHECKING:
    from shammah_tui.engine import Engine, Query
    from shammah_tui.engine.query_flow import Forwarder
    from shammah_tui.core.events import AskResult
    from shammah_tui.core.teaching import TextCallback

log = logging.getLogger(__name__)

#: The source a client sees when the offline curriculum answered: nothing reached Claude.
OFFLINE_SOURCE = "teacher-offline"
#: The name requests with the token in serve.token are logged under.
DEFAULT_TOKEN_NAME = "default"
#: Routes answered without a token: they say only that the server is up and what it serves.
OPEN_ROUTES = frozenset({("GET", "/"), ("GET", "/health")})


@dataclass(frozen=True)
class ServedRequest:
    """One request the server answered, for whoever watches the traffic (the TUI, the CLI)."""

    method: str
    path: str
    status: int
    source: str | None
    """`neural|learned|template|forward|teacher-offline`, or None for a refused request."""
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


@dataclass
class RequestInfo:
    """What a handler learned about its request, for the request log."""

    request_id: str
    route: str
    token_name: str | None = None
    model: str | None = None
    source: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_usd: float = 0.0
    error: str | None = None


STATE = web.AppKey("serve_state", ServeState)
INFO = web.RequestKey("shammah_request_info", RequestInfo)


def build_app(state: ServeState) -> web.Application:
    from shammah_tui.serve.chat import chat_completions

    app = web.Application(client_max_size=state.max_body_bytes, middlewares=[_guard])
    app[STATE] = state
    app.router.add_get("/", health)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id}", models)
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(path: str) -> str:
    return {"/": "health", "/health": "health", "/v1/messages": "messages", "/v1/chat/completions": "chat",
            "/v1/messages/count_tokens": "count_tokens", "/v1/models": "models"}.get(
        path, "models" if path.startswith("/v1/models/") else "other")


def info_of(request: web.Request) -> RequestInfo:
    return request[INFO]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The token first; every failure in the route's error shape; a request-id on every
    response; each request logged and reported once."""
    state = request.app[STATE]
    t0 = time.perf_counter()
    info = RequestInfo(new_id("req"), route_of(request.path))
    request[INFO] = info
    try:
        if HOP_HEADER in request.headers:
            raise ApiError(508, "This request came back to the Shammah server that sent it: the server's "
                                "ANTHROPIC_BASE_URL points at the server itself.", headers={"x-should-retry": "false"})
        if (request.method, request.path) not in OPEN_ROUTES:
            info.token_name = await _token_name(state, presented_token(request.headers))
            if info.token_name is None:
                raise ApiError(401, "Invalid API key: use the token in this Shammah server's serve.token file "
                                    "(or one made with `shammah-tui serve token add NAME`).")
        response = await handler(request)
    except ApiError as err:
        response = _error_response(info, err)
    except web.HTTPException as exc:  # no such route, wrong method
        message = "No such endpoint." if exc.status == 404 else exc.reason
        response = _error_response(info, ApiError(exc.status, message))
    except Exception:
        log.exception("serve: %s %s failed", request.method, request.path)
        response = _error_response(info, ApiError(500, "The Shammah server failed on this request; see its log."))
    if not response.prepared and REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = info.request_id
    request_id = response.headers.get(REQUEST_ID_HEADER, info.request_id)
    latency_ms = (time.perf_counter() - t0) * 1000
    source = info.source if info.source is not None else response.headers.get(SOURCE_HEADER)
    # the path is the client's: no escape sequence of it may reach a terminal
    path = strip_controls(request.path)[:200]
    row = RequestLogRow(request_id=request_id, method=request.method, path=path, route=info.route,
                        status=response.status, source=source if response.status < 400 else None,
                        model=None if info.model is None else strip_controls(info.model)[:200],
                        token_name=info.token_name, latency_ms=latency_ms, input_tokens=info.input_tokens,
                        output_tokens=info.output_tokens, saved_input_tokens=info.saved_input_tokens,
                        saved_output_tokens=info.saved_output_tokens, saved_usd=info.saved_usd,
                        error=info.error)
    try:
        row.id = await state.engine.store.log_request(row)
    except Exception:  # a full disk must not turn an answered request into a failed one
        log.exception("serve: the request log could not be written")
    _report(state, row)
    return response


def _report(state: ServeState, row: RequestLogRow) -> None:
    try:
        state.engine.emit(RequestServed(row))
        if state.on_request is not None:
            state.on_request(ServedRequest(row.method, row.path, row.status, row.source, row.latency_ms))
    except Exception:  # a watcher's fault must not fail the request it watches
        log.exception("serve: a request listener failed")


def _error_response(info: RequestInfo, err: ApiError) -> web.StreamResponse:
    info.error = err.message[:500]
    if info.route == "chat":
        from shammah_tui.serve.chat import openai_error_response

        return openai_error_response(err)
    return api_error_response(err)


async def _token_name(state: ServeState, presented: str | None) -> str | None:
    """The name of the client token presented: `default` for serve.token's, a named one's name."""
    if presented is None:
        return None
    if token_matches(presented, state.token):
        return DEFAULT_TOKEN_NAME
    # Looked up by hash: only hashes are stored, and a revoked token stops working at once.
    return await state.engine.store.client_token_name(token_digest(presented))


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


async def health(request: web.Request) -> web.StreamResponse:
    """Whether the server is up and what it serves; no token, nothing about the data."""
    state = request.app[STATE]
    engine = state.engine
    return web.json_response({
        "status": "ok", "name": "shammah-tui", "version": __version__,
        "teacher": "claude" if state.upstream is not None else "offline",
        "upstream": state.upstream is not None, "model": engine.settings.claude_model,
        "models_loaded": engine.models_ready,
        "routes": ["/v1/messages", "/v1/chat/completions", "/v1/messages/count_tokens", "/v1/models"],
    })


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await read_body(request, state.max_body_bytes)
    body = parse_body(raw)
    info_of(request).model = body.get("model") if isinstance(body.get("model"), str) else None
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
    if state.upstream is None:  # clients that list models at start still start
        return _local_models(state, model_id)
    # quoted whole: an id is one path segment upstream, whatever it holds
    path = "/v1/models" if model_id is None else "/v1/models/" + quote(model_id, safe="")
    return await _pass_through(request, state, "GET", path, None, stream=False)


def _local_models(state: ServeState, model_id: str | None) -> web.Response:
    """The model this server answers for, in a shape both SDKs read (Anthropic's fields and
    OpenAI's side by side)."""
    name = state.engine.settings.claude_model
    entry = {"type": "model", "id": name, "display_name": f"{name} (Shammah, local answers only)",
             "created_at": "1970-01-01T00:00:00Z", "object": "model", "created": 0, "owned_by": "shammah"}
    if model_id is None:
        return web.json_response({"object": "list", "data": [entry], "has_more": False,
                                  "first_id": name, "last_id": name})
    if model_id != name:
        raise ApiError(404, f"model: {strip_controls(model_id)[:100]!r} is not served here without a Claude "
                            f"upstream; {name!r} is.")
    return web.json_response(entry)


async def _pass_through(request: web.Request, state: ServeState, method: str, path: str, body: bytes | None,
                        *, stream: bool) -> web.StreamResponse:
    if state.upstream is None:
        raise no_upstream("This request needs Claude")
    relay = Relay(state.upstream, request, method, path, body, stream=stream, hold_tail=False,
                  request_id=info_of(request).request_id)
    await relay.run()
    _note_upstream_usage(request, relay.tally.input_tokens, relay.tally.output_tokens, relay.failure is None)
    return await relay.finish()


def _note_upstream_usage(request: web.Request, input_tokens: int, output_tokens: int, ok: bool) -> None:
    info = info_of(request)
    info.source = "forward"
    if ok and (input_tokens or output_tokens):
        info.input_tokens, info.output_tokens = input_tokens, output_tokens


@dataclass(frozen=True)
class LocalAnswer:
    """A text turn the engine answered, with the usage it reports and what it saved."""

    text: str
    source: str
    usage: tuple[int, int] | None
    """The upstream's measured (input, output) tokens of the stored answer it reused, if any."""


async def answer_turn(request: web.Request, state: ServeState, turn: LocalTurn,
                      forward: Forwarder | None, check: Forwarder | None) -> tuple[AskResult, LocalAnswer | None]:
    """A text turn through the engine. Without an upstream, the offline curriculum answers only a
    question standing alone with no system prompt: it would ignore either, and its answer would be
    stored under a scope it never read."""
    if state.upstream is None and (turn.system or turn.history):
        forward = _refuse_offline
    result = await state.engine.ask(Question(turn.question, history=turn.history, scope=turn.scope),
                                    AskPolicy(auto_train="background", spot_check="background"),
                                    forward=forward, check=check)
    if not result.answer or result.source is None:
        return result, None
    source: str = result.source
    if source == "forward" and state.upstream is None:
        source = OFFLINE_SOURCE
    usage = None
    if source != "forward" and result.learned_id is not None:
        usage = await state.engine.store.learned_usage(result.learned_id)
    return result, LocalAnswer(result.answer, source, usage)


async def _refuse_offline(query: Query, on_text: TextCallback | None) -> TeacherReply:
    raise TeacherError("auth", "a question with a system prompt or earlier turns needs Claude")


def record_local(request: web.Request, state: ServeState, model: str, answer: LocalAnswer,
                 input_tokens: int, output_tokens: int, cut: bool) -> None:
    """The request log's view of a local answer: what the client was told, and what reusing a
    measured answer saved (its whole upstream usage; an answer cut at max_tokens saves what was sent)."""
    info = info_of(request)
    info.source, info.input_tokens, info.output_tokens = answer.source, input_tokens, output_tokens
    if answer.usage is None:
        return
    saved_in, saved_out = answer.usage
    if cut:
        saved_out = min(saved_out, output_tokens)
    info.saved_input_tokens, info.saved_output_tokens = saved_in, saved_out
    price = state.engine.settings.price_per_mtok(model)
    if price is not None:
        info.saved_usd = (saved_in * price[0] + saved_out * price[1]) / 1_000_000


def local_headers(request: web.Request, answer: LocalAnswer) -> dict[str, str]:
    info = info_of(request)
    headers = {SOURCE_HEADER: answer.source, REQUEST_ID_HEADER: info.request_id}
    if answer.usage is not None:
        headers["shammah-saved-input-tokens"] = str(info.saved_input_tokens)
        headers["shammah-saved-output-tokens"] = str(info.saved_output_tokens)
        headers["shammah-saved-usd"] = f"{info.saved_usd:.6f}"
    return headers


async def _answer(request: web.Request, state: ServeState, body: dict[str, Any], raw: bytes,
                  turn: LocalTurn) -> web.StreamResponse:
    """A text turn through the engine: a local answer, or Claude's (relayed, then learned)."""
    relay = None
    if state.upstream is not None:
        relay = Relay(state.upstream, request, "POST", "/v1/messages", raw, stream=turn.stream, hold_tail=True,
                      request_id=info_of(request).request_id)
    result, answer = await answer_turn(request, state, turn,
                                       forward=None if relay is None else _forwarder(relay),
                                       check=None if state.upstream is None else _checker(state.upstream, request,
                                                                                          body))
    if relay is not None and relay.started:
        _note_upstream_usage(request, relay.tally.input_tokens, relay.tally.output_tokens, relay.failure is None)
        return await relay.finish()  # the answer is stored (or refused) by now
    if answer is None:
        if state.upstream is not None:  # the engine refused it before forwarding
            raise ApiError(500, f"Shammah could not answer: {result.error or 'no answer'}")
        raise no_upstream(f"The local side cannot answer this ({result.error or 'no answer'})")
    usage = answer.usage
    message = local_message(turn, body, answer.text)
    if usage is not None:
        # The measured count of the request whose answer this is; the output's only when whole.
        message = message.with_usage(usage[0], usage[1] if message.stop_reason == "end_turn"
                                     else estimate_tokens(message.text))
    record_local(request, state, turn.model, answer, message.input_tokens, message.output_tokens,
                 cut=message.stop_reason != "end_turn")
    headers = local_headers(request, answer)
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


def _checker(upstream: Upstream, request: web.Request, body: dict[str, Any]) -> Forwarder:
    """The engine's spot check: the client's own request asked again, so the teacher's answer is
    the one this client would get (its system prompt and model), never another scope's."""

    async def check(query: Query, on_text: TextCallback | None) -> TeacherReply:
        return await ask_again(upstream, request, body)

    return check


def no_upstream(what: str) -> ApiError:
    return ApiError(503, f"{what}, and this Shammah server has no Claude upstream: set ANTHROPIC_API_KEY "
                         "where the server runs (not in the client) and restart it.",
                    headers={"x-should-retry": "false"})
