"""The Messages API as Shammah serves it: request checks, which requests the local side may
answer, and the exact shapes of messages, SSE events and errors that the official SDKs parse.

Only what the local pipeline can answer faithfully is answered locally: a plain text turn with
a text system prompt and no parameter that would change the answer. Anything else goes to
Claude unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shammah_tui.core.sanitize import QueryRejected, clean_query, strip_controls

#: Largest request body, in bytes: the API's own limit for /v1/messages.
MAX_BODY_BYTES = 32 * 1024 * 1024

#: The error `type` the API uses for each status.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "api_error",
    504: "timeout_error", 508: "api_error", 529: "overloaded_error",
}

#: Top-level fields a locally answerable request may carry: none of them changes what the
#: answer would be (temperature only changes how an answer is sampled).
LOCAL_FIELDS = frozenset({"model", "max_tokens", "messages", "system", "stream", "metadata", "temperature"})
#: Keys a text block may carry and still be plain text (citations, for one, are not).
_TEXT_BLOCK_KEYS = frozenset({"type", "text", "cache_control"})


class ApiError(Exception):
    """An error the client gets in the API's shape: `{"type": "error", "error": {type, message}}`."""

    def __init__(self, status: int, message: str, error_type: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error" if status >= 500 else
                                                        "invalid_request_error")
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.error_type, self.message)


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def invalid(message: str) -> ApiError:
    return ApiError(400, message)


# --- requests --------------------------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; raises ApiError(400) for anything else."""
    if not raw.strip():
        raise invalid("The request body is empty; send a JSON object.")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON or UTF-8, a 5000-digit number, deep nesting
        raise invalid("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise invalid(f"The request body must be a JSON object, not {_json_type(value)}.")
    return value


def check_messages(body: dict[str, Any], *, need_max_tokens: bool = True) -> None:
    """The structure every Messages request must have; ApiError(400) naming the first problem.

    Only what the API itself requires is checked, so nothing valid is refused here; the rest
    (unknown fields, new block types) is Claude's to judge.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("model: a non-empty string is required.")
    if need_max_tokens:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise invalid("max_tokens: a positive integer is required.")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("stream: must be true or false.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: a non-empty list is required.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages.{i}: must be an object.")
        if message.get("role") not in ("user", "assistant"):
            raise invalid(f"messages.{i}.role: must be 'user' or 'assistant'.")
        _check_content(message.get("content"), f"messages.{i}.content")
        # As the API: only a final assistant turn (a prefill) may be empty.
        if _is_empty(message["content"]) and not (i == len(messages) - 1 and message["role"] == "assistant"):
            raise invalid(f"messages.{i}.content: must not be empty (only a final assistant message may be).")
    if messages[0]["role"] != "user":
        raise invalid("messages.0.role: the first message must be the user's.")
    if "system" in body and not isinstance(body["system"], str):
        _check_content(body["system"], "system")


def _is_empty(content: Any) -> bool:
    """No content at all: an empty or blank string, an empty list, or only blank text blocks."""
    if isinstance(content, str):
        return not content.strip()
    return all(block.get("type") == "text" and isinstance(block.get("text"), str) and not block["text"].strip()
               for block in content)


def _check_content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"{where}: must be a string or a list of content blocks.")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{where}.{j}: a content block must be an object with a string 'type'.")


@dataclass(frozen=True)
class LocalTurn:
    """A request the local pipeline may answer: one question in its conversation."""

    question: str
    history: tuple[tuple[str, str], ...]
    """Earlier (role, text) turns, oldest first."""
    scope: str
    """Keeps answers apart that must never be shared: another model, system prompt or conversation."""
    system: str
    model: str
    max_tokens: int
    stream: bool


def local_turn(body: dict[str, Any]) -> LocalTurn | None:
    """The question, if the request may be answered locally (a checked body); else None.

    Refused: any field outside LOCAL_FIELDS (tools, tool_choice, thinking, stop_sequences,
    top_p …), a non-text block anywhere, a conversation that does not start with the user or
    does not end on a user question, a question the pipeline would refuse (empty, oversized).
    """
    if not set(body) <= LOCAL_FIELDS:
        return None
    temperature = body.get("temperature")
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 1):
        return None
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        return None
    system = _plain_text(body.get("system", ""))
    found = [_plain_text(m["content"]) for m in body["messages"]]
    texts = [t for t in found if t is not None]
    if system is None or len(texts) != len(found):
        return None
    roles = [m["role"] for m in body["messages"]]
    if roles[0] != "user" or roles[-1] != "user":
        return None
    try:
        question = clean_query(texts[-1])
    except QueryRejected:
        return None
    # Cleaned like the question: the engine keys and stores these turns, and a lone surrogate
    # or an escape sequence in them must not reach its hashing, the database or a terminal.
    history = tuple((role, strip_controls(text)) for role, text in zip(roles[:-1], texts[:-1]))
    return LocalTurn(question=question, history=history, scope=scope_of(body["model"], system, history),
                     system=system, model=body["model"], max_tokens=body["max_tokens"],
                     stream=body.get("stream") is True)


def _plain_text(content: Any) -> str | None:
    """The text of a string or a list of plain text blocks; None when anything else is in it."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if block.get("type") != "text" or not set(block) <= _TEXT_BLOCK_KEYS or not isinstance(block.get("text"), str):
            return None
        parts.append(block["text"])
    return "\n".join(parts)


def scope_of(model: str, system: str, history: tuple[tuple[str, str], ...] = ()) -> str:
    """A stable key for (model, system prompt, earlier turns): the engine never shares answers
    across scopes. The turns are in it whole, not only for what the engine calls a follow-up:
    an API client's question may lean on its conversation in ways no rule can see ("the
    language" after a talk about Rust)."""
    digest = hashlib.sha256(json.dumps(["serve/1", model, system, history]).encode()).hexdigest()
    return f"serve:{digest[:32]}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# --- responses -------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_shm{secrets.token_hex(12)}"


def estimate_tokens(text: str) -> int:
    """About four bytes a token: no tokenizer of Claude's runs here, and the usage fields must be
    plausible for clients that budget with them."""
    return max(1, (len(text.encode("utf-8", "replace")) + 3) // 4)


def fit_to_max_tokens(text: str, max_tokens: int) -> tuple[str, str]:
    """(text, stop_reason): a stored answer longer than the client allows is cut, as the API
    would cut it, and says so with stop_reason "max_tokens"."""
    if estimate_tokens(text) <= max_tokens:
        return text, "end_turn"
    cut = text.encode("utf-8", "replace")[: max_tokens * 4].decode("utf-8", "ignore")
    return cut, "max_tokens"


@dataclass(frozen=True)
class LocalMessage:
    """A finished text answer in the API's terms."""

    model: str
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [{"type": "text", "text": self.text}],
            "stop_reason": self.stop_reason, "stop_sequence": None,
            "usage": self._usage(self.input_tokens, self.output_tokens),
        }

    def sse(self, chunk_chars: int = 256) -> bytes:
        """The whole answer as the API streams it, in the API's event order."""
        start = self.to_json() | {"content": [], "stop_reason": None,
                                  "usage": self._usage(self.input_tokens, 1)}
        events = [sse_event("message_start", {"type": "message_start", "message": start}),
                  sse_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                    "content_block": {"type": "text", "text": ""}})]
        for i in range(0, len(self.text), chunk_chars):
            events.append(sse_event("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": self.text[i:i + chunk_chars]}}))
        events += [
            sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse_event("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                                        "usage": {"output_tokens": self.output_tokens}}),
            sse_event("message_stop", {"type": "message_stop"}),
        ]
        return b"".join(events)

    def with_usage(self, input_tokens: int, output_tokens: int) -> LocalMessage:
        return dataclasses.replace(self, input_tokens=input_tokens, output_tokens=output_tokens)

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
        return {"input_tokens": input_tokens, "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def local_message(turn: LocalTurn, body: dict[str, Any], answer: str) -> LocalMessage:
    text, stop_reason = fit_to_max_tokens(answer, turn.max_tokens)
    prompt = json.dumps([body.get("system", ""), body["messages"]], ensure_ascii=False)
    return LocalMessage(model=turn.model, text=text, stop_reason=stop_reason,
                        input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(text),
                        id=new_id("msg"))


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    # ensure_ascii: text with lone surrogates still encodes; the SDK decodes the escapes.
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
