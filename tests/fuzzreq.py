"""Generated Messages-API and chat completions requests for the serve fuzz test and bench, and
the check that every answer is a well-formed response or error of its route's API.

Requests range from valid text turns with odd text (escape sequences, lone surrogates, huge or
empty) through wrong types and unknown fields to bytes that are not JSON at all.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

MODEL = "claude-test-model"

ODD_TEXTS = ["", " ", "\n\t", "what is 2+3", "Who wrote Hamlet?", "and in French?", "\x1b[31mred\x1b[0m",
             "\x1b]0;title\x07", "\x00\x07\x08", "\u202egnirts\u200b", "\ud800 lone", "😀" * 20, "ﷺ" * 50,
             "a\r\nb\rc", "\\u0000 \\n", "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd",
             "Ｗｈｏ ｗｒｏｔｅ Ｈａｍｌｅｔ？", "e\u0301" * 30]
#: Sizes around the query limit (8,000 characters) and the test server's body limit (256 KiB).
BIG_SIZES = [7_999, 8_001, 40_000, 300_000]

texts = st.one_of(st.text(max_size=40), st.sampled_from(ODD_TEXTS),
                  st.sampled_from(BIG_SIZES).map(lambda n: "x" * n))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=8)
text_blocks = st.fixed_dictionaries(
    {"type": st.just("text"), "text": texts},
    optional={"cache_control": st.just({"type": "ephemeral"}), "citations": json_values})
blocks = st.one_of(text_blocks,
                   st.fixed_dictionaries({"type": st.sampled_from(["image", "document", "tool_result", "tool_use",
                                                                   "thinking", "unknown_block"])},
                                         optional={"source": json_values, "id": texts, "content": json_values}),
                   st.dictionaries(st.text(max_size=6), json_values, max_size=3))
contents = st.one_of(texts, st.lists(blocks, max_size=3), json_values)
messages = st.one_of(
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": contents}),
             min_size=1, max_size=4),
    st.lists(st.fixed_dictionaries({"role": json_values, "content": contents}), max_size=3),
    json_values,
)
bodies = st.fixed_dictionaries(
    {"model": st.one_of(st.just(MODEL), st.just(MODEL), texts, json_values),
     "max_tokens": st.one_of(st.integers(1, 4096), st.integers(-5, 2**40), json_values),
     "messages": messages},
    optional={"stream": st.one_of(st.booleans(), json_values), "system": st.one_of(texts, st.lists(blocks, max_size=2)),
              "temperature": st.one_of(st.floats(), json_values), "tools": json_values, "tool_choice": json_values,
              "metadata": json_values, "stop_sequences": json_values, "thinking": json_values,
              "x_unknown_field": json_values},
)

plain_contents = st.one_of(texts, st.text(min_size=3, max_size=80), st.text(min_size=3, max_size=80),
                           st.lists(text_blocks, min_size=1, max_size=3))


def _conversation(contents: list[Any]) -> list[dict[str, Any]]:
    """Alternating turns that start and end with the user (an odd count)."""
    turns = contents[: len(contents) - (1 - len(contents) % 2)]
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(turns)]


#: Requests the API would accept, with odd text: the ones that reach the engine or Claude.
valid_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from([MODEL, "claude-other-model"]), "max_tokens": st.integers(1, 4096),
     "messages": st.lists(plain_contents, min_size=1, max_size=5).map(_conversation)},
    optional={"stream": st.booleans(), "system": st.one_of(texts, st.lists(text_blocks, max_size=2)),
              "temperature": st.floats(0, 1), "metadata": st.just({"user_id": "fuzz"})},
)
passed_bodies = valid_bodies.flatmap(lambda body: st.fixed_dictionaries(
    {}, optional={"tools": st.just([{"name": "t", "input_schema": {"type": "object"}}]), "top_k": st.integers(1, 5),
                  "x_unknown_field": json_values}).map(lambda extra: body | extra))


chat_parts = st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
                      st.fixed_dictionaries({"type": st.sampled_from(["image_url", "input_audio", "file"])},
                                            optional={"image_url": json_values}))
chat_messages = st.lists(st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["system", "developer", "user", "user", "assistant", "tool"]), json_values),
     "content": st.one_of(texts, st.text(min_size=3, max_size=80), st.lists(chat_parts, max_size=3), json_values)},
    optional={"name": texts, "tool_call_id": texts}), max_size=5)
#: Chat completions requests, from plausible to wrong in every field.
chat_bodies = st.fixed_dictionaries(
    {"model": st.one_of(st.just(MODEL), st.just(MODEL), texts, json_values), "messages": chat_messages},
    optional={"stream": st.one_of(st.booleans(), json_values),
              "stream_options": st.one_of(st.just({"include_usage": True}), json_values),
              "max_tokens": st.one_of(st.integers(1, 4096), json_values),
              "max_completion_tokens": st.one_of(st.integers(-3, 4096), json_values),
              "temperature": st.one_of(st.floats(), json_values), "n": st.one_of(st.integers(0, 3), json_values),
              "tools": json_values, "response_format": json_values, "user": texts, "x_unknown_field": json_values},
)


def _dump(value: Any) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes that are not valid UTF-8, which a client may send too
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


payloads = st.one_of(
    valid_bodies.map(_dump), valid_bodies.map(lambda body: json.dumps(body).encode()), passed_bodies.map(_dump),
    bodies.map(_dump), bodies.map(lambda body: json.dumps(body).encode()),
    chat_bodies.map(_dump), chat_bodies.map(lambda body: json.dumps(body).encode()),
    json_values.map(_dump),
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"[" * 50_000, b'{"model": "m", "max_tokens": 1e999}', b"\xef\xbb\xbf{}",
                     b'{"a": 1, "a": 2}', b"NaN", b'{"messages": [' + b"{}," * 10_000 + b"{}]}"]),
)
paths = st.sampled_from(["/v1/messages"] * 6 + ["/v1/messages/count_tokens"] + ["/v1/chat/completions"] * 4)
CHAT_PATH = "/v1/chat/completions"


def check_response(path: str, status: int, content_type: str, body: bytes) -> str | None:
    """None if `body` is a well-formed API response or API error; else what is wrong."""
    if path == CHAT_PATH:
        return check_chat_response(status, content_type, body)
    try:
        if status >= 400:
            data = json.loads(body)
            error = data.get("error")
            ok = (data.get("type") == "error" and isinstance(error, dict) and isinstance(error.get("type"), str)
                  and isinstance(error.get("message"), str) and content_type == "application/json")
            if not ok:
                return f"{status}: not the API error shape: {body[:200]!r}"
            if status == 500 and "Shammah server failed" in error["message"]:
                return f"an unhandled exception in the server: {body[:200]!r}"
            return None
        if status != 200:
            return f"unexpected status {status}"
        if content_type == "text/event-stream":
            return _check_sse(body)
        data = json.loads(body)
        if path.endswith("/count_tokens"):
            return None if isinstance(data.get("input_tokens"), int) else f"bad count_tokens reply {data!r}"[:200]
        return _check_message(data)
    except (ValueError, AttributeError) as exc:
        return f"{status}: unreadable body ({type(exc).__name__}): {body[:200]!r}"


def _check_message(data: Any) -> str | None:
    keys = ("id", "type", "role", "content", "model", "stop_reason", "usage")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        return f"message lacks {keys}: {str(data)[:200]}"
    usage = data["usage"]
    if data["type"] != "message" or data["role"] != "assistant" or not isinstance(data["content"], list):
        return "bad message fields"
    if not (isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int)
            and isinstance(usage.get("output_tokens"), int)):
        return "bad usage"
    return None


def _check_sse(body: bytes) -> str | None:
    names: list[str] = []
    for raw in body.decode("utf-8").split("\n\n"):
        if not raw.strip():
            continue
        lines = raw.split("\n")
        if not lines[0].startswith("event: ") or not lines[1].startswith("data: "):
            return f"event without an event: line: {raw[:100]!r}"
        name, data = lines[0][7:], json.loads(lines[1][6:])
        if data.get("type") != name:
            return f"event {name} carries type {data.get('type')}"
        if name != "ping":
            names.append(name)
    if not names or names[0] not in ("message_start", "error"):
        return f"stream starts with {names[:1]}"
    if names[-1] not in ("message_stop", "error"):
        return f"stream ends with {names[-1]}"
    if names[0] == "message_start" and names[-1] == "message_stop":
        middle = names[1:-1]
        if not middle or middle[-1] != "message_delta" or "content_block_start" not in middle:
            return f"bad event order {names}"
    return None


def check_chat_response(status: int, content_type: str, body: bytes) -> str | None:
    """None if `body` is a well-formed chat completion, chunk stream or OpenAI error."""
    try:
        data: Any
        if status >= 400:
            data = json.loads(body)
            error = data.get("error")
            ok = (isinstance(error, dict) and isinstance(error.get("message"), str)
                  and isinstance(error.get("type"), str) and "param" in error and "code" in error
                  and content_type == "application/json")
            if not ok:
                return f"{status}: not OpenAI's error shape: {body[:200]!r}"
            if status == 500 and "Shammah server failed" in error["message"]:
                return f"an unhandled exception in the server: {body[:200]!r}"
            return None
        if status != 200:
            return f"unexpected status {status}"
        if content_type == "text/event-stream":
            events = [e for e in body.decode("utf-8").split("\n\n") if e.strip()]
            if not events or events[-1] != "data: [DONE]":
                return "a chunk stream that does not end with data: [DONE]"
            for raw in events[:-1]:
                chunk = json.loads(raw.removeprefix("data: "))
                if chunk.get("object") != "chat.completion.chunk" or not isinstance(chunk.get("choices"), list):
                    return f"not a chunk: {raw[:100]!r}"
            return None
        data = json.loads(body)
        choice = data["choices"][0]
        usage = data["usage"]
        if (data.get("object") != "chat.completion" or choice["message"]["role"] != "assistant"
                or not isinstance(choice["message"]["content"], str)
                or usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]):
            return f"bad completion {str(data)[:200]}"
        return None
    except (ValueError, AttributeError, KeyError, IndexError, TypeError) as exc:
        return f"{status}: unreadable body ({type(exc).__name__}): {body[:200]!r}"
