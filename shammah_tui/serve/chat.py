"""`POST /v1/chat/completions`: the OpenAI Chat Completions shape over the same engine and upstream.

A chat request is read as the Messages request it means (system and developer messages become
the system prompt; max_tokens defaults as the API lets it), so it is keyed, answered locally and
learned exactly as that Messages request would be: a question asked on either route is answered
from what the other learned. Claude is asked with the Messages API, whole, and its answer is
sent back in OpenAI's shape (a `chat.completion`, or `chat.completion.chunk` events then
`data: [DONE]`). Errors come in OpenAI's shape, `{"error": {message, type, param, code}}`.

Only text conversations are served here; tools, images, n > 1, logprobs and the other fields
that have no faithful Messages equivalent are refused with 400, naming the field.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from shammah_tui.serve.app import (
    STATE,
    LocalAnswer,
    ServeState,
    answer_turn,
    info_of,
    local_headers,
    no_upstream,
    read_body,
    record_local,
)
from shammah_tui.serve.protocol import (
    ApiError,
    check_messages,
    estimate_tokens,
    fit_to_max_tokens,
    invalid,
    local_turn,
    new_id,
    parse_body,
)
from shammah_tui.serve.sse import Tally
from shammah_tui.serve.upstream import REQUEST_ID_HEADER, SOURCE_HEADER, Upstream, error_of
from shammah_tui.teachers.anthropic_errors import error_kind
from shammah_tui.core.teaching import TeacherError, TeacherReply

if TYPE_CHECKING:
    from shammah_tui.engine import Query
    from shammah_tui.engine.query_flow import Forwarder
    from shammah_tui.core.teaching import TextCallback

#: What a request may carry. `user`, `metadata` and `store` change nothing about the answer.
CHAT_FIELDS = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options",
                         "temperature", "n", "user", "metadata", "store"})
#: max_tokens when the client sets none (OpenAI's is optional, Anthropic's is not).
DEFAULT_MAX_TOKENS = 4096
ANTHROPIC_VERSION = "2023-06-01"
#: OpenAI's error `type` for each status.
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                      404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                      429: "rate_limit_exceeded"}
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}


def openai_error_response(err: ApiError) -> web.Response:
    error_type = OPENAI_ERROR_TYPES.get(err.status, "server_error" if err.status >= 500 else "invalid_request_error")
    code = "invalid_api_key" if err.status == 401 else err.error_type
    return web.json_response({"error": {"message": err.message, "type": error_type, "param": None, "code": code}},
                             status=err.status, headers=err.headers)


@dataclass(frozen=True)
class Completion:
    """One finished answer, however it came: text, stop reason, usage the client is told."""

    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    chat = parse_body(await read_body(request, state.max_body_bytes))
    info_of(request).model = chat.get("model") if isinstance(chat.get("model"), str) else None
    body, include_usage = messages_body(chat)
    check_messages(body)
    turn = local_turn(body)
    fetch = None if state.upstream is None else _Fetch(state.upstream, body)
    if turn is None:  # an oversized question, odd text: Claude's, never learned
        if fetch is None:
            raise no_upstream("This request needs Claude")
        try:
            completion = await fetch.completion()
        except TeacherError:
            assert fetch.failure is not None
            raise fetch.failure from None
        return await _respond(request, body, completion, _forwarded(request, completion), include_usage)
    forward = None if fetch is None else fetch.forwarder()
    # A spot check runs after the answer went out: its own fetch, so it cannot touch this reply.
    check = None if state.upstream is None else _Fetch(state.upstream, body).forwarder()
    result, answer = await answer_turn(request, state, turn, forward=forward, check=check)
    if fetch is not None and fetch.failure is not None:
        raise fetch.failure
    if fetch is not None and fetch.reply is not None and (answer is None or answer.source == "forward"):
        completion = fetch.reply  # Claude's, learned when it was a finished text answer
        return await _respond(request, body, completion, _forwarded(request, completion), include_usage)
    if answer is None:
        if state.upstream is not None:
            raise ApiError(500, f"Shammah could not answer: {result.error or 'no answer'}")
        raise no_upstream(f"The local side cannot answer this ({result.error or 'no answer'})")
    completion = _local_completion(request, state, turn.model, turn.max_tokens, answer, body)
    return await _respond(request, body, completion, local_headers(request, answer), include_usage)


def _forwarded(request: web.Request, completion: Completion) -> dict[str, str]:
    info = info_of(request)
    info.source, info.input_tokens, info.output_tokens = "forward", completion.input_tokens, completion.output_tokens
    return {SOURCE_HEADER: "forward", REQUEST_ID_HEADER: info.request_id}


def _local_completion(request: web.Request, state: ServeState, model: str, max_tokens: int,
                      answer: LocalAnswer, body: dict[str, Any]) -> Completion:
    text, stop_reason = fit_to_max_tokens(answer.text, max_tokens)
    if answer.usage is not None:  # measured upstream for the request whose answer this is
        input_tokens = answer.usage[0]
        output_tokens = answer.usage[1] if stop_reason == "end_turn" else estimate_tokens(text)
    else:
        input_tokens = estimate_tokens(json.dumps([body.get("system", ""), body["messages"]], ensure_ascii=False))
        output_tokens = estimate_tokens(text)
    record_local(request, state, model, answer, input_tokens, output_tokens, cut=stop_reason != "end_turn")
    return Completion(text, stop_reason, input_tokens, output_tokens)


def messages_body(chat: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The Messages request a chat request means, and whether a stream ends with a usage chunk.
    Raises ApiError(400) naming the first field that cannot be served faithfully."""
    # null is how a client leaves a field out: it means the default, as it does to OpenAI
    chat = {key: value for key, value in chat.items() if value is not None}
    extra = sorted(set(chat) - CHAT_FIELDS)
    if extra:
        raise invalid(f"{extra[0]}: not supported by this server's chat completions route (text conversations "
                      "only; use /v1/messages for tools and the rest).")
    model = chat.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("model: a non-empty string is required.")
    if chat.get("n", 1) != 1:
        raise invalid("n: only 1 is supported.")
    max_tokens = chat.get("max_completion_tokens", chat.get("max_tokens", DEFAULT_MAX_TOKENS))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid("max_tokens: a positive integer is required.")
    stream = chat.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream: must be true or false.")
    options = chat.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid("stream_options: must be an object.")
    include_usage = bool(options and options.get("include_usage") is True)
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: a non-empty list is required.")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages[{i}]: must be an object.")
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            raise invalid(f"messages[{i}].role: must be system, developer, user or assistant "
                       "(tool messages are not supported here).")
        extra_keys = set(message) - {"role", "content", "name"}
        if extra_keys:
            raise invalid(f"messages[{i}].{sorted(extra_keys)[0]}: not supported here.")
        text = _text_of(message.get("content"), i)
        if role in ("system", "developer"):
            if turns:
                raise invalid(f"messages[{i}]: a system message must come before the conversation.")
            system.append(text)
        else:
            turns.append({"role": role, "content": text})
    if not turns:
        raise invalid("messages: at least one user message is required.")
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if system:
        body["system"] = "\n\n".join(system)
    temperature = chat.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 1:
            raise invalid("temperature: Claude takes values from 0 to 1.")
        body["temperature"] = temperature
    if stream:
        body["stream"] = True
    return body, include_usage


def _text_of(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise invalid(f"messages[{i}].content: only text parts are supported here.")
            parts.append(part["text"])
        return "\n".join(parts)
    raise invalid(f"messages[{i}].content: a string or a list of text parts is required.")


class _Fetch:
    """Claude asked once with the Messages request, whole; its answer kept for the client."""

    def __init__(self, upstream: Upstream, body: dict[str, Any]) -> None:
        self.upstream = upstream
        self.body = body
        self.reply: Completion | None = None
        self.learnable = ""
        """The answer's text if it is one to learn (plain text, finished), else ""."""
        self.failure: ApiError | None = None

    def forwarder(self) -> Forwarder:
        async def forward(query: Query, on_text: TextCallback | None) -> TeacherReply:
            completion = await self.completion()
            return TeacherReply(self.learnable, completion.input_tokens, completion.output_tokens)

        return forward

    async def completion(self) -> Completion:
        """Raises TeacherError for the engine (nothing learned) and keeps the client's error."""
        upstream = self.upstream
        data = json.dumps({**self.body, "stream": False}).encode()
        headers = upstream.headers_for({"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION})
        try:
            async with upstream.session().post(upstream.base_url + "/v1/messages", data=data, headers=headers,
                                               allow_redirects=False) as resp:
                status, chunks, size = resp.status, [], 0
                async for chunk in resp.content.iter_any():
                    size += len(chunk)
                    if size > upstream.config.max_output_bytes:
                        break
                    chunks.append(chunk)
                raw = b"".join(chunks)
        except TimeoutError:
            message = f"Claude sent nothing for {upstream.config.read_timeout_s:g} s."
            raise self._failed(504, "timeout", message) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise self._failed(502, "connection", f"Could not reach Claude at {upstream.base_url} "
                                                  f"({type(exc).__name__}).") from None
        if size > upstream.config.max_output_bytes:
            raise self._failed(502, "unknown", "Claude's answer passed the server's output limit.")
        if status != 200:
            error_type, message = error_of(status, raw)
            raise self._failed(status, error_kind(status, error_type or "api_error"),
                               f"Claude returned {status} ({error_type or 'error'}): {upstream.redact(message)}")
        tally = Tally()
        try:
            tally.feed_message(json.loads(raw))
        except (ValueError, RecursionError):
            raise self._failed(502, "unknown", "Claude's answer was not JSON.") from None
        self.learnable = tally.learnable_text()
        self.reply = Completion(tally.text, tally.stop_reason or "end_turn", tally.input_tokens, tally.output_tokens)
        return self.reply

    def _failed(self, status: int, kind: Any, message: str) -> TeacherError:
        self.failure = ApiError(status, message)
        return TeacherError(kind, message)


async def _respond(request: web.Request, body: dict[str, Any], completion: Completion, headers: dict[str, str],
                   include_usage: bool) -> web.StreamResponse:
    completion_id = new_id("chatcmpl")
    created = int(time.time())
    model = body["model"]
    usage = {"prompt_tokens": completion.input_tokens, "completion_tokens": completion.output_tokens,
             "total_tokens": completion.input_tokens + completion.output_tokens}
    finish = _FINISH.get(completion.stop_reason, "stop")
    headers = headers | {"x-request-id": headers.get(REQUEST_ID_HEADER, "")}
    if not body.get("stream"):
        return web.json_response({
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }, headers=headers)

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": completion.text[i:i + 256]}, None) for i in range(0, len(completion.text), 256)]
    events.append(chunk({}, finish))
    if include_usage:
        events.append(b"data: " + json.dumps({"id": completion_id, "object": "chat.completion.chunk",
                                              "created": created, "model": model, "choices": [],
                                              "usage": usage}).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    response = web.StreamResponse(headers=headers | {"content-type": "text/event-stream",
                                                     "cache-control": "no-cache"})
    try:
        await response.prepare(request)
        await response.write(b"".join(events))
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; the answer was logged
    return response
