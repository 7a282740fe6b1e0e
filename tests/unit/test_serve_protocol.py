"""The serve protocol without a server: which requests may be answered locally, the scope that
keeps answers apart, response shapes, and reading an upstream event stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shammah_tui.serve.protocol import (
    ApiError,
    LocalMessage,
    check_messages,
    fit_to_max_tokens,
    local_turn,
    parse_body,
    scope_of,
)
from shammah_tui.serve.sse import Tally, parse_event, split_events

USER = {"role": "user", "content": "Who wrote Hamlet?"}


def request(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64, "messages": [USER]} | extra


@pytest.mark.parametrize("extra", [
    {}, {"system": "Answer in French."}, {"system": [{"type": "text", "text": "Be brief."}]},
    {"stream": True}, {"temperature": 0.2}, {"metadata": {"user_id": "u1"}},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Who wrote",
                                                 "cache_control": {"type": "ephemeral"}},
                                                {"type": "text", "text": "Hamlet?"}]}]},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}, USER]},
], ids=["plain", "system", "system-blocks", "stream", "temperature", "metadata", "text-blocks", "conversation"])
def test_plain_text_turns_may_be_answered_locally(extra: dict[str, Any]) -> None:
    body = request(**extra)
    check_messages(body)
    assert local_turn(body) is not None


@pytest.mark.parametrize("extra", [
    {"tools": [{"name": "t", "input_schema": {"type": "object"}}]}, {"tool_choice": {"type": "auto"}},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"stop_sequences": ["\n"]}, {"top_p": 0.5},
    {"temperature": 1.5}, {"service_tier": "auto"}, {"system": [{"type": "image", "source": {}}]},
    {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "citations": []}]}]},
    {"messages": [USER, {"role": "assistant", "content": "The answer is"}]},
    {"messages": [{"role": "user", "content": "x" * 9000}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}]},
], ids=["tools", "tool-choice", "thinking", "stop-sequences", "top-p", "hot", "service-tier", "system-image",
        "image", "citations", "prefill", "oversized", "tool-result"])
def test_anything_else_goes_to_claude_unchanged(extra: dict[str, Any]) -> None:
    body = request(**extra)
    check_messages(body)
    assert local_turn(body) is None


def test_the_scope_separates_models_system_prompts_and_conversations_and_nothing_else() -> None:
    scopes = {scope_of("m", ""), scope_of("m", "Answer in French."), scope_of("m2", "")}
    assert len(scopes) == 3
    plain, streamed = local_turn(request()), local_turn(request(stream=True, temperature=0.0))
    assert plain is not None and streamed is not None and plain.scope == streamed.scope == scope_of("m", "")
    blocks = local_turn(request(system=[{"type": "text", "text": "Answer in French."}]))
    assert blocks is not None and blocks.scope == scope_of("m", "Answer in French.")
    after = [local_turn(request(messages=[{"role": "user", "content": f"Let's talk about {topic}."},
                                          {"role": "assistant", "content": "Sure."}, USER]))
             for topic in ("Rust", "Python")]
    assert after[0] is not None and after[1] is not None and len({after[0].scope, after[1].scope, plain.scope}) == 3


@pytest.mark.parametrize("raw, problem", [
    (b"", "empty"), (b"{", "not valid JSON"), (b"[]", "JSON object"), (b"\xff", "not valid JSON"),
    (b"[" * 10_000, "not valid JSON"),
])
def test_bodies_that_are_not_a_json_object_are_400(raw: bytes, problem: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_body(raw)
    assert info.value.status == 400 and problem in info.value.message
    assert info.value.body()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", [
    {"max_tokens": 5, "messages": [USER]}, {"model": "", "max_tokens": 5, "messages": [USER]},
    {"model": "m", "max_tokens": True, "messages": [USER]}, {"model": "m", "max_tokens": 0, "messages": [USER]},
    {"model": "m", "max_tokens": "5", "messages": [USER]}, {"model": "m", "max_tokens": 5, "messages": []},
    {"model": "m", "max_tokens": 5, "messages": [USER], "stream": "yes"},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
    {"model": "m", "max_tokens": 5, "messages": [USER], "system": 3},
    # What the API itself refuses, so no client waits on Claude to hear it.
    {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "Hi"}, USER]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "   "}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": []}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": " "}]}]},
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"},
                                                 USER]},
])
def test_malformed_requests_are_400_naming_the_field(body: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as info:
        check_messages(body)
    assert info.value.status == 400 and ":" in info.value.message


def test_a_local_answer_longer_than_max_tokens_is_cut_and_says_so() -> None:
    assert fit_to_max_tokens("short", 10) == ("short", "end_turn")
    cut, reason = fit_to_max_tokens("é" * 100, 5)
    assert reason == "max_tokens" and cut == "é" * 10  # 20 bytes: 5 tokens of 4 bytes, never half a character


def test_a_local_message_streams_in_the_api_event_order() -> None:
    message = LocalMessage(model="m", text="x" * 600, stop_reason="end_turn", input_tokens=3, output_tokens=150,
                           id="msg_1")
    events, rest = split_events(message.sse())
    assert rest == b""
    names = [parse_event(raw)[0] for raw in events]
    assert names == ["message_start", "content_block_start"] + ["content_block_delta"] * 3 + [
        "content_block_stop", "message_delta", "message_stop"]
    tally = Tally()
    for raw in events:
        tally.feed_event(*parse_event(raw))
    assert tally.learnable_text() == "x" * 600 and (tally.input_tokens, tally.output_tokens) == (3, 150)
    assert json.loads(json.dumps(message.to_json()))["content"] == [{"type": "text", "text": "x" * 600}]


def test_events_split_on_any_line_ending_and_wait_for_their_end() -> None:
    events, rest = split_events(b"event: ping\r\ndata: {}\r\n\r\nevent: a\ndata: {\"x\": 1}\n\nevent: b\ndat")
    assert [parse_event(e) for e in events] == [("ping", {}), ("a", {"x": 1})] and rest == b"event: b\ndat"


@pytest.mark.parametrize("events, learnable", [
    ([("content_block_start", {"content_block": {"type": "text"}}),
      ("content_block_delta", {"delta": {"type": "text_delta", "text": "hi"}}),
      ("message_delta", {"delta": {"stop_reason": "end_turn"}}), ("message_stop", {})], "hi"),
    ([("content_block_start", {"content_block": {"type": "text"}}),
      ("content_block_delta", {"delta": {"type": "text_delta", "text": "hi"}}),
      ("message_delta", {"delta": {"stop_reason": "max_tokens"}}), ("message_stop", {})], ""),
    ([("content_block_start", {"content_block": {"type": "text"}}),
      ("content_block_delta", {"delta": {"type": "text_delta", "text": "hi"}})], ""),
    ([("content_block_start", {"content_block": {"type": "thinking"}}),
      ("content_block_start", {"content_block": {"type": "text"}}),
      ("message_delta", {"delta": {"stop_reason": "end_turn"}}), ("message_stop", {})], ""),
    ([("content_block_start", {"content_block": {"type": "text"}}),
      ("error", {"error": {"type": "overloaded_error"}})], ""),
], ids=["finished", "max-tokens", "cut", "thinking", "error"])
def test_only_a_finished_plain_text_answer_is_learnable(events: list[tuple[str, Any]], learnable: str) -> None:
    tally = Tally()
    for name, data in events:
        tally.feed_event(name, {"type": name} | data)
    assert tally.learnable_text() == learnable
