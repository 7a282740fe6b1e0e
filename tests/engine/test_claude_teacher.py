"""ClaudeTeacher with the real anthropic SDK against the loopback FakeMessagesAPI."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx2
import pytest

from shammah_tui.core.teaching import TeacherError, Turn
from shammah_tui.teachers.base import TeachRequest
from shammah_tui.teachers.claude import (
    SYSTEM_PROMPT_ANSWER,
    SYSTEM_PROMPT_TEACH,
    ClaudeTeacher,
    build_messages,
    teach_system_prompt,
)
from shammah_tui.core.tool_calls import ToolCallEvent, ToolResult
from shammah_tui.tools.base import ToolRegistry, ToolSpec
from tests.fakeapi import FakeMessagesAPI, fake_api  # noqa: F401  (fixture)

CANARY = "sk-ant-canary-0000"
MODEL = "claude-test-model"


def make_teacher(api: FakeMessagesAPI, **kw: Any) -> ClaudeTeacher:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout_s", 5.0)
    return ClaudeTeacher(MODEL, api_key=CANARY, base_url=api.base_url, **kw)


def make_registry() -> tuple[ToolRegistry, list[ToolCallEvent], list[dict]]:
    events: list[ToolCallEvent] = []
    seen: list[dict] = []

    async def echo(inp: dict) -> ToolResult:
        seen.append(inp)
        return ToolResult(f"echo: {inp['text']}")

    async def add(inp: dict) -> ToolResult:
        seen.append(inp)
        return ToolResult(str(inp["a"] + inp["b"]), data={"sum": inp["a"] + inp["b"]})

    specs = [
        ToolSpec("echo", "Echo text back.", {
            "type": "object", "properties": {"text": {"type": "string", "minLength": 1}},
            "required": ["text"], "additionalProperties": False}, echo),
        ToolSpec("add", "Add two integers.", {
            "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"], "additionalProperties": False}, add),
    ]
    return ToolRegistry(specs, on_event=events.append), events, seen


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- answer ----------------------------------------------------------------------------


async def test_answer_streams_fragments_and_usage(fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue_text("The answer is 42.", stream_chunks=["The ", "answer ", "is 42."], usage=(12, 5))
    teacher = make_teacher(fake_api)
    got: list[str] = []
    reply = await teacher.answer("What is 6*7?", on_text=got.append)
    await teacher.close()
    assert got == ["The ", "answer ", "is 42."]
    assert reply.text == "The answer is 42."
    assert (reply.input_tokens, reply.output_tokens) == (12, 5)
    req = fake_api.requests[0]
    assert req.headers["Authorization"] == f"Bearer {CANARY}"
    assert req.body["model"] == MODEL and req.body["stream"] is True
    assert req.body["system"] == SYSTEM_PROMPT_ANSWER
    assert req.body["messages"] == [{"role": "user", "content": "What is 6*7?"}]
    assert "temperature" not in req.body
    assert teacher.label == MODEL and teacher.kind == "claude"


async def test_answer_sends_history_alternating_from_a_user_turn(fake_api: FakeMessagesAPI) -> None:
    teacher = make_teacher(fake_api)
    history = [
        Turn("assistant", "Welcome!"),  # nothing asked it: dropped
        Turn("user", "hi"), Turn("user", "what is 2+2?"),
        Turn("assistant", "4"), Turn("assistant", "   "), Turn("assistant", "Anything else?"),
    ]
    await teacher.answer("and 3+3?", history)
    await teacher.close()
    assert fake_api.requests[0].body["messages"] == [
        {"role": "user", "content": "hi\n\nwhat is 2+2?"},
        {"role": "assistant", "content": "4\n\nAnything else?"},
        {"role": "user", "content": "and 3+3?"},
    ]


def test_build_messages_merges_a_trailing_user_turn_into_the_query() -> None:
    assert build_messages([Turn("user", "context")], "q") == [{"role": "user", "content": "context\n\nq"}]
    assert build_messages([], "q") == [{"role": "user", "content": "q"}]


async def test_responder_answers_the_question_in_the_request(fake_api: FakeMessagesAPI) -> None:
    fake_api.responder = lambda body: body["messages"][-1]["content"].upper()
    teacher = make_teacher(fake_api)
    assert (await teacher.answer("shout this")).text == "SHOUT THIS"
    await teacher.close()


async def test_key_and_base_url_come_from_the_environment(fake_api: FakeMessagesAPI,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    teacher = ClaudeTeacher(MODEL, max_retries=0)
    fake_api.enqueue_text("ok")
    assert (await teacher.answer("ping")).text == "ok"
    await teacher.close()
    assert fake_api.requests[0].headers["Authorization"] == f"Bearer {CANARY}"


async def test_no_key_is_an_auth_error_at_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    teacher = ClaudeTeacher(MODEL)  # constructing is fine
    with pytest.raises(TeacherError) as info:
        await teacher.answer("hello")
    assert info.value.kind == "auth" and "ANTHROPIC_API_KEY" in info.value.message
    with pytest.raises(TeacherError) as info:
        await teacher.teach(make_registry()[0], TeachRequest())
    assert info.value.kind == "auth"
    await teacher.close()


async def test_rate_limit_then_success_is_retried(fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue_error(429, "rate_limit_error", "slow down", {"retry-after-ms": "5"})
    fake_api.enqueue_text("fine")
    teacher = make_teacher(fake_api, max_retries=1)
    assert (await teacher.answer("q")).text == "fine"
    await teacher.close()
    assert len(fake_api.requests) == 2


# --- errors ----------------------------------------------------------------------------

ERROR_IDS = ["401", "403", "429-ms", "429-s", "500", "529", "400", "413", "midstream-overloaded", "cut", "418"]
ERROR_CASES = [
    # (script, expected kind, expected requests, text that must be in the message)
    (lambda api: api.enqueue_error(401, "authentication_error", "invalid x-api-key"), "auth", 1, "401"),
    (lambda api: api.enqueue_error(403, "permission_error", "no access to model"), "permission", 1, "403"),
    (lambda api: api.enqueue_error(429, "rate_limit_error", "too many", {"retry-after-ms": "5"}, times=2),
     "rate_limit", 2, "retry after 0.005 s"),
    (lambda api: api.enqueue_error(429, "rate_limit_error", "too many", {"retry-after": "0.01"}, times=2),
     "rate_limit", 2, "retry after 0.01 s"),
    (lambda api: api.enqueue_error(500, "api_error", "boom", {"retry-after-ms": "5"}, times=2), "server", 2, "500"),
    (lambda api: api.enqueue_error(529, "overloaded_error", "Overloaded", {"retry-after-ms": "5"}, times=2),
     "overloaded", 2, "529"),
    (lambda api: api.enqueue_error(400, "invalid_request_error", "max_tokens too big"), "bad_request", 1,
     "max_tokens too big"),
    (lambda api: api.enqueue_error(413, "request_too_large", "too large"), "bad_request", 1, "413"),
    (lambda api: api.enqueue_stream_error("overloaded_error", "Overloaded", text_prefix="Partial"),
     "overloaded", 1, "overloaded"),
    (lambda api: api.enqueue_cut_stream("The answer is"), "stream_cut", 1, "discarded"),
    (lambda api: api.enqueue_error(418, "teapot_error", "short and stout"), "unknown", 1, "418"),
]


@pytest.mark.parametrize("mode", ["answer", "teach"])
@pytest.mark.parametrize(("script", "kind", "attempts", "needle"), ERROR_CASES, ids=ERROR_IDS)
async def test_errors_map_to_kinds_without_the_key(fake_api: FakeMessagesAPI, script, kind, attempts,
                                                   needle, mode) -> None:
    script(fake_api)
    teacher = make_teacher(fake_api, max_retries=1)
    fragments: list[str] = []
    with pytest.raises(TeacherError) as info:
        if mode == "answer":
            await teacher.answer("What is 6*7?", on_text=fragments.append)
        else:
            await teacher.teach(make_registry()[0], TeachRequest(), on_text=fragments.append)
    await teacher.close()
    err = info.value
    assert err.kind == kind, err.message
    assert needle.lower() in err.message.lower()
    assert CANARY not in err.message and CANARY not in str(err)
    assert "\n" not in err.message
    assert len(fake_api.requests) == attempts


async def test_cut_stream_does_not_return_partial_text(fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue_cut_stream("The answer is forty")
    teacher = make_teacher(fake_api)
    seen: list[str] = []
    with pytest.raises(TeacherError) as info:
        await teacher.answer("q", on_text=seen.append)
    await teacher.close()
    assert info.value.kind == "stream_cut"
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert "".join(seen).startswith("The answer")  # fragments streamed, but no reply returned


async def test_timeout(fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue_hang(10)
    teacher = make_teacher(fake_api, timeout_s=0.3)
    t0 = time.perf_counter()
    with pytest.raises(TeacherError) as info:
        await teacher.answer("q")
    await teacher.close()
    assert info.value.kind == "timeout" and "0.3 s" in info.value.message
    assert time.perf_counter() - t0 < 3


async def test_refused_connection_names_the_base_url() -> None:
    port = closed_port()
    teacher = ClaudeTeacher(MODEL, api_key=CANARY, base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(TeacherError) as info:
        await teacher.answer("q")
    await teacher.close()
    assert info.value.kind == "connection"
    assert f"127.0.0.1:{port}" in info.value.message and CANARY not in info.value.message


async def test_key_echoed_by_the_server_is_redacted(fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue_error(400, "invalid_request_error", f"bad header value {CANARY}")
    teacher = make_teacher(fake_api)
    with pytest.raises(TeacherError) as info:
        await teacher.answer("q")
    await teacher.close()
    assert CANARY not in info.value.message and "[redacted]" in info.value.message


# --- teach: the system prompt ----------------------------------------------------------


def test_teach_prompt_names_and_describes_every_tool_in_its_own_words() -> None:
    from typing import Any, cast

    from shammah_tui.tools.registry import build_registry, tool_descriptions

    specs = build_registry(cast(Any, None)).schemas()
    assert [(s["name"], s["description"]) for s in specs] == tool_descriptions()
    for spec in specs:
        assert f"- {spec['name']}: {spec['description']}" in SYSTEM_PROMPT_TEACH
    assert f"these {len(specs)} tools" in SYSTEM_PROMPT_TEACH


def test_a_new_tool_is_described_with_no_prompt_edit() -> None:
    prompt = teach_system_prompt([("query_local_model", "Ask."), ("explain_error", "Say why an answer was wrong.")])
    assert "- explain_error: Say why an answer was wrong." in prompt and "these 2 tools" in prompt


# --- teach: the tool loop --------------------------------------------------------------


async def test_tool_loop_sends_results_and_ends(fake_api: FakeMessagesAPI) -> None:
    registry, events, seen = make_registry()
    ids = fake_api.enqueue_tool_use([("echo", {"text": "hi"}), ("add", {"a": 1, "b": "two"})],
                                    text_before="Let me check.", usage=(100, 20))
    fake_api.enqueue_text("Taught arithmetic.", usage=(150, 10))
    teacher = make_teacher(fake_api)
    streamed: list[str] = []
    summary = await teacher.teach(registry, TeachRequest(topic="arithmetic", rounds=2), on_text=streamed.append)
    await teacher.close()

    assert (summary.iterations, summary.tool_calls, summary.stopped_because) == (2, 2, "done")
    assert summary.final_text == "Taught arithmetic."
    assert (summary.input_tokens, summary.output_tokens) == (250, 30)
    assert "".join(streamed) == "Let me check.\n\nTaught arithmetic."

    first, second = (r.body for r in fake_api.requests)
    assert first["system"] == SYSTEM_PROMPT_TEACH
    assert first["tools"] == registry.schemas()
    assert "arithmetic" in first["messages"][0]["content"] and "2 rounds" in first["messages"][0]["content"]
    user, assistant, results = second["messages"]
    assert user == first["messages"][0]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": ids[0], "name": "echo", "input": {"text": "hi"}},
        {"type": "tool_use", "id": ids[1], "name": "add", "input": {"a": 1, "b": "two"}},
    ]
    assert results["role"] == "user"
    assert [(r["type"], r["tool_use_id"], r["is_error"]) for r in results["content"]] == [
        ("tool_result", ids[0], False), ("tool_result", ids[1], True)]
    assert results["content"][0]["content"] == "echo: hi"
    assert "b must be an integer" in results["content"][1]["content"]
    assert seen == [{"text": "hi"}]  # the bad call never reached its handler
    assert [(e.call_id, e.status) for e in events if e.status != "running"] == [(ids[0], "ok"), (ids[1], "error")]


async def test_iteration_limit(fake_api: FakeMessagesAPI) -> None:
    registry, _, seen = make_registry()
    for i in range(5):
        fake_api.enqueue_tool_use([("add", {"a": i, "b": 1})])
    teacher = make_teacher(fake_api)
    summary = await teacher.teach(registry, TeachRequest(max_iterations=3))
    await teacher.close()
    assert summary.stopped_because == "iteration_limit"
    assert summary.iterations == 3 and len(fake_api.requests) == 3
    assert summary.tool_calls == 2 and len(seen) == 2  # the last turn's calls are not run


async def test_repeated_call_is_refused_then_stops(fake_api: FakeMessagesAPI) -> None:
    registry, _, seen = make_registry()
    ids = [fake_api.enqueue_tool_use([("echo", {"text": "same"})])[0] for _ in range(6)]
    teacher = make_teacher(fake_api)
    summary = await teacher.teach(registry, TeachRequest())
    await teacher.close()
    assert len(seen) == 2  # calls 1 and 2 ran; 3 was refused; 4 stopped the session
    assert summary.stopped_because == "repeated_call"
    assert len(fake_api.requests) == 4
    refused = fake_api.requests[3].body["messages"][-1]["content"][0]
    assert refused["tool_use_id"] == ids[2] and refused["is_error"] is True
    assert "same input" in refused["content"]


async def test_repeat_warning_then_a_different_call_goes_on(fake_api: FakeMessagesAPI) -> None:
    registry, _, seen = make_registry()
    for _ in range(3):
        fake_api.enqueue_tool_use([("echo", {"text": "same"})])
    fake_api.enqueue_tool_use([("echo", {"text": "new"})])
    fake_api.enqueue_text("done")
    teacher = make_teacher(fake_api)
    summary = await teacher.teach(registry, TeachRequest())
    await teacher.close()
    assert summary.stopped_because == "done" and summary.final_text == "done"
    assert seen == [{"text": "same"}, {"text": "same"}, {"text": "new"}]


async def test_malformed_tool_input_is_an_error_result_and_the_loop_goes_on(fake_api: FakeMessagesAPI) -> None:
    registry, events, seen = make_registry()
    call_id = fake_api.enqueue_malformed_tool_input(name="echo")
    fake_api.enqueue_text("Recovered.")
    teacher = make_teacher(fake_api)
    summary = await teacher.teach(registry, TeachRequest())
    await teacher.close()
    assert summary.stopped_because == "done" and summary.final_text == "Recovered."
    assert summary.tool_calls == 1 and seen == []
    _, assistant, results = fake_api.requests[1].body["messages"]
    assert assistant["content"] == [{"type": "tool_use", "id": call_id, "name": "echo", "input": {}}]
    result = results["content"][0]
    assert result["tool_use_id"] == call_id and result["is_error"] is True
    assert "not valid JSON" in result["content"]
    assert events[-1].status == "error"


async def test_close_then_use_again_makes_a_new_client(fake_api: FakeMessagesAPI) -> None:
    teacher = make_teacher(fake_api)
    await teacher.answer("one")
    await teacher.close()
    await teacher.close()  # twice is fine
    assert (await teacher.answer("two")).text
    await teacher.close()


async def test_fake_api_serves_non_streaming_json_too(fake_api: FakeMessagesAPI) -> None:
    import anthropic

    fake_api.enqueue_tool_use([("echo", {"text": "x"})], text_before="Calling.")
    client = anthropic.AsyncAnthropic(api_key=CANARY, base_url=fake_api.base_url, max_retries=0)
    msg = await client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    plain = await client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    await client.close()
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use"] and msg.content[1].input == {"text": "x"}
    assert plain.stop_reason == "end_turn" and plain.content[0].text == fake_api.default_text
