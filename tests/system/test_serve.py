"""`shammah-tui serve` with the real anthropic SDK as the client and the loopback Messages API
(tests/fakeapi.py) as Claude.

A text question is forwarded once, then answered locally; tool use passes through untouched;
every bad request and every upstream fault comes back as the API's error, nothing partial is
stored, and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic import AsyncAnthropic

from shammah_tui import curriculum
from shammah_tui.cli import main
from shammah_tui.engine import Engine
from shammah_tui.core.events import QueryVerified
from shammah_tui.serve.app import ServedRequest
from shammah_tui.serve.auth import TOKEN_NAME
from shammah_tui.serve.run import SHUTDOWN_GRACE_S, RunningServer, ServeError, start_server
from shammah_tui.teachers.offline import OfflineTeacher
from tests.fakeapi import FAKE_MODEL, FakeMessagesAPI
from tests.serving import LIMITS, MODEL, UPSTREAM_KEY, claude, open_engine

HAMLET = "Who wrote Hamlet?"
HAMLET_ANSWER = "William Shakespeare wrote Hamlet."
WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}


@dataclass
class Served:
    engine: Engine
    server: RunningServer
    client: AsyncAnthropic
    fake: FakeMessagesAPI

    async def raw(self, method: str, path: str, *, body: bytes | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """A request without the SDK (for what the SDK would never send)."""
        sent = {"x-api-key": self.server.token, "content-type": "application/json"} | (headers or {})
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.server.url + path, data=body,
                                       headers={k: v for k, v in sent.items() if v is not None}) as resp:
                return resp.status, dict(resp.headers), await resp.read()

    async def sources(self) -> list[str | None]:
        return [q.source for q in await self.engine.store.queries()]


@pytest.fixture
async def served(tmp_path, fake_api: FakeMessagesAPI):
    data = tmp_path / "data"
    engine = await open_engine(data, claude(fake_api.base_url))
    server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=fake_api.base_url,
                                api_key=UPSTREAM_KEY, limits=LIMITS)
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    try:
        yield Served(engine, server, client, fake_api)
    finally:
        await client.close()
        await server.stop()
        await engine.close()


def hamlet_responder(body: dict[str, Any]) -> str | None:
    last = body["messages"][-1]["content"]
    return HAMLET_ANSWER if isinstance(last, str) and "Hamlet" in last else None


def is_api_error(status: int, body: bytes, error_type: str) -> bool:
    data = json.loads(body)
    return (data["type"] == "error" and data["error"]["type"] == error_type
            and isinstance(data["error"]["message"], str) and status >= 400)


# --- forwarded once, then answered locally ------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_a_question_asked_twice_is_forwarded_then_answered_locally(served: Served, streaming: bool) -> None:
    served.fake.responder = hamlet_responder
    question = [{"role": "user", "content": HAMLET}]

    async def ask() -> tuple[anthropic.types.Message, str | None]:
        if streaming:
            async with served.client.messages.stream(model=MODEL, max_tokens=256, messages=question) as stream:
                texts = [event.text async for event in stream if event.type == "text"]
                message = await stream.get_final_message()
            assert "".join(texts) == message.content[0].text
            return message, stream.response.headers.get("shammah-source")
        raw = await served.client.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=question)
        return await raw.parse(), raw.headers.get("shammah-source")

    first, first_source = await ask()
    second, second_source = await ask()

    assert (first_source, second_source) == ("forward", "learned")
    for message in (first, second):
        assert message.type == "message" and message.role == "assistant" and message.model == MODEL
        assert [b.type for b in message.content] == ["text"] and message.content[0].text == HAMLET_ANSWER
        assert message.stop_reason == "end_turn" and message.id.startswith("msg_")
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    # Claude was asked once, with the client's request as it was and the server's own key.
    (upstream,) = served.fake.requests
    assert upstream.body == {"model": MODEL, "max_tokens": 256, "messages": question} | (
        {"stream": True} if streaming else {})
    assert upstream.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert all(served.server.token not in value for value in upstream.headers.values())
    learned = await served.engine.store.learned_answers()
    assert [(a.query, a.answer, a.origin, a.hits) for a in learned] == [(HAMLET, HAMLET_ANSWER, "forward", 1)]
    assert await served.sources() == ["forward", "learned"]


async def test_answers_never_cross_system_prompts_or_models(served: Served) -> None:
    question = [{"role": "user", "content": "What is the capital of Peru?"}]
    variants = [({"system": "Answer in French."}, MODEL, "La capitale du Pérou est Lima."),
                ({}, MODEL, "The capital of Peru is Lima."),
                ({}, "claude-other-model", "Lima.")]
    for extra, model, answer in variants:
        served.fake.enqueue_text(answer)
        message = await served.client.messages.create(model=model, max_tokens=256, messages=question, **extra)
        assert message.content[0].text == answer
    for extra, model, answer in variants:  # each now answered locally, each with its own answer
        raw = await served.client.messages.with_raw_response.create(model=model, max_tokens=256,
                                                                    messages=question, **extra)
        assert raw.headers["shammah-source"] == "learned"
        assert (await raw.parse()).content[0].text == answer
    assert len(served.fake.requests) == 3


async def test_a_spot_check_asks_the_clients_own_request_and_stays_in_its_scope(served: Served) -> None:
    """A local answer's spot check sends the client's request again (system prompt, model, all of
    it), so a disagreeing verdict corrects the answer in that client's scope only."""
    served.engine.apply_settings(dataclasses.replace(served.engine.settings, spot_check_rate=1.0))
    verified: list[QueryVerified] = []
    served.engine.subscribe(lambda event: isinstance(event, QueryVerified) and verified.append(event))
    french = {"system": "Answer in French.", "model": MODEL, "max_tokens": 256,
              "messages": [{"role": "user", "content": "What is the capital of Peru?"}]}
    served.fake.enqueue_text("Lima.")
    await served.client.messages.create(**french)  # forwarded and learned
    served.fake.enqueue_text("La capitale du Pérou est Lima, au bord du Pacifique.")  # the check disagrees
    raw = await served.client.messages.with_raw_response.create(**french)
    assert raw.headers["shammah-source"] == "learned"
    for _ in range(200):  # the check runs after the answer went out; its verdict is the last step
        if verified:
            break
        await asyncio.sleep(0.02)
    check = served.fake.requests[1].body
    assert check["system"] == "Answer in French." and check["model"] == MODEL and check["stream"] is False
    assert check["messages"] == french["messages"]
    (learned,) = await served.engine.store.learned_answers()
    assert learned.answer == "La capitale du Pérou est Lima, au bord du Pacifique."
    plain = await served.client.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=french["messages"])  # no system prompt: not that answer
    assert plain.headers["shammah-source"] == "forward"


# The second is no follow-up by the engine's rule: only the conversation in the scope keeps it apart.
@pytest.mark.parametrize("question", ["and in French?", "How many people live in the city?"])
async def test_a_question_in_a_conversation_is_keyed_on_that_conversation(served: Served, question: str) -> None:
    def conversation(topic: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": f"Tell me about {topic}."},
                {"role": "assistant", "content": f"{topic} is a city."},
                {"role": "user", "content": question}]

    for topic in ("Paris", "London"):
        served.fake.enqueue_text(f"About {topic}.")
        message = await served.client.messages.create(model=MODEL, max_tokens=64, messages=conversation(topic))
        assert message.content[0].text == f"About {topic}."
    again = await served.client.messages.with_raw_response.create(model=MODEL, max_tokens=64,
                                                                  messages=conversation("London"))
    assert again.headers["shammah-source"] == "learned"
    assert (await again.parse()).content[0].text == "About London."
    assert len(served.fake.requests) == 2


async def test_templates_answer_without_claude_and_a_long_answer_stops_at_max_tokens(served: Served) -> None:
    raw = await served.client.messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "what is 2+3"}])
    assert raw.headers["shammah-source"] == "template" and (await raw.parse()).content[0].text == "5"
    long_answer = "word " * 200
    served.fake.enqueue_text(long_answer)
    question = [{"role": "user", "content": "Write two hundred words."}]
    await served.client.messages.create(model=MODEL, max_tokens=1024, messages=question)
    short = await served.client.messages.create(model=MODEL, max_tokens=10, messages=question)
    assert short.stop_reason == "max_tokens" and long_answer.startswith(short.content[0].text)
    assert 0 < len(short.content[0].text) <= 40
    assert len(served.fake.requests) == 1


# --- tools pass through untouched ----------------------------------------------------------


async def test_a_tool_loop_passes_through_untouched_and_nothing_is_learned(served: Served) -> None:
    """The SDK's own tool runner drives the loop; its tool runs in the client, never in Shammah."""
    calls: list[str] = []

    @anthropic.beta_async_tool
    async def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: City name.
        """
        calls.append(city)
        return "18C and sunny"

    tool_id, = served.fake.enqueue_tool_use([("get_weather", {"city": "Paris"})], text_before="Let me check.")
    served.fake.enqueue_text("It is 18C and sunny in Paris.")
    runner = served.client.beta.messages.tool_runner(
        model=MODEL, max_tokens=256, tools=[get_weather],
        messages=[{"role": "user", "content": "What's the weather in Paris?"}])
    final = await runner.until_done()

    assert calls == ["Paris"] and final.content[0].text == "It is 18C and sunny in Paris."
    first, second = served.fake.requests
    assert first.body["tools"][0]["name"] == "get_weather"
    assert first.body["messages"] == [{"role": "user", "content": "What's the weather in Paris?"}]
    tool_result = second.body["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == tool_id
    assert "18C and sunny" in json.dumps(tool_result["content"])
    assert await served.engine.store.learned_answers() == [] and await served.sources() == []


async def test_a_streamed_tool_use_reaches_the_client_block_by_block(served: Served) -> None:
    served.fake.enqueue_tool_use([("get_weather", {"city": "Lima"})])
    request = {"model": MODEL, "max_tokens": 256, "tools": [WEATHER_TOOL], "tool_choice": {"type": "auto"},
               "messages": [{"role": "user", "content": "Weather in Lima?"}]}
    async with served.client.messages.stream(**request) as stream:
        kinds = [event.type async for event in stream]
        message = await stream.get_final_message()
    assert "input_json" in kinds and stream.response.headers["shammah-source"] == "forward"
    assert message.stop_reason == "tool_use" and message.content[0].input == {"city": "Lima"}
    assert served.fake.requests[0].body == request | {"stream": True}
    assert await served.sources() == []


async def test_count_tokens_and_models_pass_through(served: Served) -> None:
    counted = await served.client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens > 0
    page = await served.client.models.list(limit=5)
    assert [m.id for m in page.data] == [FAKE_MODEL]
    # An id is one path segment upstream, whatever it holds.
    one = await served.client.models.retrieve("claude-x/../y")
    assert one.id == "claude-x%2F..%2Fy"
    paths = [r.path for r in served.fake.requests]
    assert paths == ["/v1/messages/count_tokens", "/v1/models", "/v1/models/claude-x/../y"]


# --- refused requests ------------------------------------------------------------------------


async def test_a_wrong_or_missing_token_is_refused_with_401(served: Served) -> None:
    # Not even the real API key opens the server: only its own token does.
    wrong = AsyncAnthropic(base_url=served.server.url, api_key=UPSTREAM_KEY, max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await wrong.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    finally:
        await wrong.close()
    assert info.value.status_code == 401 and info.value.type == "authentication_error"
    body = json.dumps({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "2+2"}]}).encode()
    status, _, data = await served.raw("POST", "/v1/messages", body=body, headers={"x-api-key": None})
    assert status == 401 and is_api_error(status, data, "authentication_error")
    for header in ({"x-api-key": None, "authorization": f"Bearer {served.server.token}"},
                   {"x-api-key": served.server.token}):
        status, _, data = await served.raw("POST", "/v1/messages", body=body, headers=header)
        assert status == 200 and json.loads(data)["content"][0]["text"] == "4"
    assert served.fake.requests == []


@pytest.mark.parametrize("body, status, error_type", [
    (b"{not json", 400, "invalid_request_error"),
    (b"", 400, "invalid_request_error"),
    (b"[1, 2]", 400, "invalid_request_error"),
    (b"\xff\xfe{}", 400, "invalid_request_error"),
    (b"[" * 100_000, 400, "invalid_request_error"),
    (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode(), 400,
     "invalid_request_error"),
    (json.dumps({"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}).encode(),
     400, "invalid_request_error"),
    (b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "' + b"x" * 300_000 + b'"}]}',
     413, "request_too_large"),
], ids=["malformed", "empty", "array", "bad-utf8", "deep", "no-max-tokens", "bad-role", "oversized"])
async def test_bad_requests_get_the_api_error_and_the_server_goes_on(
        served: Served, body: bytes, status: int, error_type: str) -> None:
    got, headers, data = await served.raw("POST", "/v1/messages", body=body)
    assert got == status and headers["Content-Type"].startswith("application/json")
    assert is_api_error(got, data, error_type)
    message = await served.client.messages.create(model=MODEL, max_tokens=8,
                                                  messages=[{"role": "user", "content": "what is 6*7"}])
    assert message.content[0].text == "42"
    assert served.fake.requests == [] and await served.sources() == ["template"]


@pytest.mark.parametrize("encode", [lambda body: json.dumps(body).encode(),
                                    lambda body: json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")],
                         ids=["escaped", "raw-bytes"])
async def test_lone_surrogates_and_escape_sequences_in_a_conversation_are_answered(served: Served, encode) -> None:
    """Found by the fuzz bench: a lone surrogate in an earlier turn once reached the engine's key
    hashing and failed the request with a 500."""
    body = {"model": MODEL, "max_tokens": 16, "messages": [
        {"role": "user", "content": "\ud800 lone \x1b]0;title\x07 surrogate"},
        {"role": "assistant", "content": "\x1b[2Jcleared"},
        {"role": "user", "content": "and what about that?"}]}
    status, _, data = await served.raw("POST", "/v1/messages", body=encode(body))
    assert status == 200 and json.loads(data)["type"] == "message"
    (logged,) = await served.engine.store.queries()
    assert logged.source == "forward" and logged.error is None


async def test_the_sdk_reads_our_errors_as_its_own_classes(served: Served) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await served.client.messages.create(model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.ContentTooLargeError):
        await served.client.messages.create(model=MODEL, max_tokens=8,
                                            messages=[{"role": "user", "content": "x" * 300_000}])
    for method, path in (("GET", "/v1/nothing"), ("GET", "/v1/messages"), ("POST", "/../../etc/passwd")):
        status, _, data = await served.raw(method, path)
        assert status in (404, 405) and json.loads(data)["type"] == "error"


async def test_a_request_that_loops_back_and_a_server_pointed_at_itself_are_refused(
        served: Served, tmp_path) -> None:
    status, headers, data = await served.raw("POST", "/v1/messages", body=b"{}", headers={"shammah-hop": "1"})
    assert status == 508 and headers["x-should-retry"] == "false" and is_api_error(status, data, "api_error")
    port = served.server.port + 1
    with pytest.raises(ServeError, match="points at this server"):
        await start_server(served.engine, tmp_path / "data", "127.0.0.1", port,
                           upstream_url=f"http://localhost:{port}", api_key="k")
    with pytest.raises(ServeError, match="--allow-remote"):
        await start_server(served.engine, tmp_path / "data", "0.0.0.0", 0, upstream_url="http://x", api_key="k")
    with pytest.raises(ServeError, match="cannot listen"):  # the CLI's one line and exit code 1
        await start_server(served.engine, tmp_path / "data", "127.0.0.1", served.server.port, api_key="")


# --- upstream faults ---------------------------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


UPSTREAM_FAULTS = {
    "429": (lambda api: api.enqueue_error(429, "rate_limit_error", "slow down", {"retry-after": "7"}),
            anthropic.RateLimitError, 429),
    "529": (lambda api: api.enqueue_error(529, "overloaded_error", "Overloaded"), anthropic.OverloadedError, 529),
    "500-not-json": (lambda api: api.enqueue(_NotJson()), anthropic.InternalServerError, 500),
    "timeout": (lambda api: api.enqueue_hang(LIMITS.read_timeout_s + 2), anthropic.GatewayTimeoutError, 504),
    "stream-error": (lambda api: api.enqueue_stream_error("overloaded_error", "Overloaded", "William"),
                     anthropic.APIStatusError, 200),
    "cut-stream": (lambda api: api.enqueue_cut_stream("William Shakespeare wr"), anthropic.APIStatusError, 200),
}


class _NotJson:
    """Served by a patched fake below: a 500 with an HTML body, as a proxy might send."""


@pytest.mark.parametrize("fault", list(UPSTREAM_FAULTS))
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_upstream_faults_reach_the_client_as_api_errors_and_nothing_is_learned(
        served: Served, fault: str, streaming: bool, monkeypatch) -> None:
    script, error_class, status = UPSTREAM_FAULTS[fault]
    if fault in ("stream-error", "cut-stream") and not streaming:
        status = 529 if fault == "stream-error" else 502
        error_class = anthropic.OverloadedError if fault == "stream-error" else anthropic.InternalServerError
    if fault == "500-not-json":
        original = served.fake._serve

        async def serve(request, body, reply):  # type: ignore[no-untyped-def]
            if isinstance(reply, _NotJson):
                from aiohttp import web
                return web.Response(status=500, text="<html>bad gateway</html>", content_type="text/html")
            return await original(request, body, reply)

        monkeypatch.setattr(served.fake, "_serve", serve)
    script(served.fake)
    question = [{"role": "user", "content": HAMLET}]

    with pytest.raises(error_class) as info:
        if streaming:
            async with served.client.messages.stream(model=MODEL, max_tokens=64, messages=question) as stream:
                async for _ in stream:
                    pass
        else:
            await served.client.messages.create(model=MODEL, max_tokens=64, messages=question)
    assert info.value.status_code == status
    if fault == "429":
        assert info.value.response.headers["retry-after"] == "7" and info.value.type == "rate_limit_error"

    # Nothing learned; the failure is in the query log; the server answers the next request.
    assert await served.engine.store.learned_answers() == []
    (logged,) = await served.engine.store.queries()
    assert (logged.source, logged.answer) == (None, None) and logged.error
    assert served.server.token not in logged.error and UPSTREAM_KEY not in logged.error
    served.fake.responder = hamlet_responder
    again = await served.client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=question)
    assert again.headers["shammah-source"] == "forward" and (await again.parse()).content[0].text == HAMLET_ANSWER


async def test_an_upstream_error_that_echoes_the_key_reaches_the_client_without_it(served: Served) -> None:
    served.fake.enqueue_error(400, "invalid_request_error", f"bad header x-api-key: {UPSTREAM_KEY}")
    with pytest.raises(anthropic.BadRequestError) as info:
        await served.client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": HAMLET}])
    assert UPSTREAM_KEY not in info.value.response.text and "[redacted]" in info.value.response.text
    (logged,) = await served.engine.store.queries()
    assert logged.error and UPSTREAM_KEY not in logged.error


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_an_answer_past_the_output_limit_is_cut_with_an_error_and_not_learned(
        tmp_path, fake_api: FakeMessagesAPI, streaming: bool) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, claude(fake_api.base_url))
    server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=fake_api.base_url, api_key=UPSTREAM_KEY,
                                limits=dataclasses.replace(LIMITS, max_output_bytes=4000))
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    fake_api.enqueue_text("word " * 2000)
    try:
        with pytest.raises(anthropic.APIStatusError) as info:
            if streaming:
                async with client.messages.stream(model=MODEL, max_tokens=4096,
                                                  messages=[{"role": "user", "content": HAMLET}]) as stream:
                    async for _ in stream:
                        pass
            else:
                await client.messages.create(model=MODEL, max_tokens=4096,
                                             messages=[{"role": "user", "content": HAMLET}])
        assert "limit of 4,000 bytes" in str(info.value)
        assert await engine.store.learned_answers() == []
    finally:
        await client.close()
        await server.stop()
        await engine.close()


async def test_an_unreachable_upstream_is_a_502(tmp_path) -> None:
    data = tmp_path / "data"
    dead = f"http://127.0.0.1:{closed_port()}"
    engine = await open_engine(data, claude(dead))
    server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=dead, api_key=UPSTREAM_KEY, limits=LIMITS)
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    try:
        with pytest.raises(anthropic.InternalServerError) as info:
            await client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": HAMLET}])
        assert info.value.status_code == 502 and "Could not reach Claude" in str(info.value)
        assert (await client.messages.create(model=MODEL, max_tokens=8,
                                             messages=[{"role": "user", "content": "what is 1+1"}])
                ).content[0].text == "2"
    finally:
        await client.close()
        await server.stop()
        await engine.close()


async def test_a_client_that_hangs_up_mid_stream_stores_nothing_and_stops_the_upstream(served: Served) -> None:
    # About 45 events 50 ms apart: the whole answer would take over 2 s upstream.
    served.fake.enqueue_text("one two three four five six seven eight nine ten " * 4, chunk_delay_s=0.05)
    t0 = time.monotonic()
    stream = await served.client.messages.create(model=MODEL, max_tokens=256, stream=True,
                                                 messages=[{"role": "user", "content": HAMLET}])
    async for event in stream:
        if event.type == "content_block_delta":
            break
    await stream.close()
    for _ in range(100):  # the server notices at its next write
        if await served.engine.store.queries():
            break
        await asyncio.sleep(0.05)
    (logged,) = await served.engine.store.queries()
    assert time.monotonic() - t0 < 1.5  # the server stopped reading Claude's answer, not finished it
    assert logged.source is None and "hung up" in (logged.error or "")
    assert await served.engine.store.learned_answers() == []
    again = await served.client.messages.create(model=MODEL, max_tokens=8,
                                                messages=[{"role": "user", "content": "what is 3+4"}])
    assert again.content[0].text == "7"


async def test_stopping_with_a_stream_in_flight_is_quick_and_stores_nothing_partial(served: Served) -> None:
    served.fake.enqueue_text("word " * 200, chunk_delay_s=0.05)

    async def listen() -> None:
        async with served.client.messages.stream(model=MODEL, max_tokens=512,
                                                 messages=[{"role": "user", "content": HAMLET}]) as stream:
            async for _ in stream:
                pass

    listening = asyncio.ensure_future(listen())
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    await served.server.stop()
    assert time.monotonic() - t0 < 2 * SHUTDOWN_GRACE_S + 1.5
    with pytest.raises(Exception):  # noqa: B017 - the SDK's or the transport's, either says "cut"
        await listening
    assert await served.engine.store.learned_answers() == [] and await served.sources() in ([], [None])


# --- no key: the offline teacher ------------------------------------------------------------------


async def test_without_a_key_curriculum_answers_say_so_and_the_rest_is_a_clear_503(tmp_path) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, OfflineTeacher(seed=0))
    server = await start_server(engine, data, "127.0.0.1", 0, api_key="", limits=LIMITS)
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    item = curriculum.sample_items(1, 3, families=["capitals"])[0]
    try:
        assert server.upstream_url is None
        for expected in ("teacher-offline", "learned"):
            raw = await client.messages.with_raw_response.create(
                model=MODEL, max_tokens=64, messages=[{"role": "user", "content": item.query}])
            assert raw.headers["shammah-source"] == expected and (await raw.parse()).content[0].text == item.answer
        with pytest.raises(anthropic.ServiceUnavailableError) as info:
            await client.messages.create(model=MODEL, max_tokens=64,
                                         messages=[{"role": "user", "content": "Why is the sky blue?"}])
        assert "ANTHROPIC_API_KEY" in info.value.message and info.value.response.headers["x-should-retry"] == "false"
        with pytest.raises(anthropic.ServiceUnavailableError):
            await client.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER_TOOL],
                                         messages=[{"role": "user", "content": "Weather in Lima?"}])
        # Nothing reached Claude, and an answer that ignored a system prompt would pass as its answer.
        with pytest.raises(anthropic.ServiceUnavailableError) as info:
            await client.messages.create(model=MODEL, max_tokens=64, system="You are a pirate. Answer as one.",
                                         messages=[{"role": "user", "content": item.query}])
        assert "system prompt" in info.value.message and info.value.response.headers["request-id"]
        # Clients that list models at start still start.
        assert [m.id for m in (await client.models.list()).data] == [engine.settings.claude_model]
    finally:
        await client.close()
        await server.stop()
        await engine.close()


# --- the token, the bind, the CLI ---------------------------------------------------------------


async def test_the_token_file_is_private_and_stays_across_restarts(tmp_path, fake_api: FakeMessagesAPI) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, claude(fake_api.base_url))
    try:
        first = await start_server(engine, data, "127.0.0.1", 0, api_key="")
        await first.stop()
        path = data / TOKEN_NAME
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == first.token
        path.chmod(0o644)
        second = await start_server(engine, data, "127.0.0.1", 0, api_key="")
        await second.stop()
        assert second.token == first.token and stat.S_IMODE(path.stat().st_mode) == 0o600
        # A damaged file, or a link planted to read another file, gets a fresh token instead.
        secret = tmp_path / "elsewhere"
        secret.write_text("shm-" + "a" * 40)
        path.unlink()
        path.symlink_to(secret)
        third = await start_server(engine, data, "127.0.0.1", 0, api_key="")
        await third.stop()
        assert third.token != first.token and third.token != secret.read_text()
        assert not path.is_symlink() and secret.read_text() == "shm-" + "a" * 40
    finally:
        await engine.close()


async def test_a_watcher_sees_every_request_with_its_source(tmp_path, fake_api: FakeMessagesAPI) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, claude(fake_api.base_url))
    seen: list[ServedRequest] = []
    server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=fake_api.base_url, api_key=UPSTREAM_KEY,
                                on_request=seen.append)
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    try:
        await client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "what is 2+3"}])
        await client.messages.create(model=MODEL, max_tokens=8, tools=[WEATHER_TOOL],
                                     messages=[{"role": "user", "content": "Weather?"}])
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/v1/%1b[2Jx", headers={"x-api-key": server.token}) as resp:
                assert resp.status == 404
    finally:
        await client.close()
        await server.stop()
        await engine.close()
    assert [(r.method, r.path, r.status, r.source) for r in seen] == [
        ("POST", "/v1/messages", 200, "template"), ("POST", "/v1/messages", 200, "forward"),
        ("GET", "/v1/x", 404, None)]  # the escape sequence is gone
    assert "\x1b" not in seen[-1].line() and seen[0].line().startswith("POST /v1/messages 200 template ")


def test_cli_refuses_a_remote_host_without_allow_remote(tmp_path, capsys) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and err.count("\n") == 1
    assert main(["serve", "--data-dir", str(tmp_path), "--port", "70000"]) == 2
    assert not (tmp_path / TOKEN_NAME).exists()


def test_cli_serve_prints_how_to_connect_answers_and_stops_on_ctrl_c(tmp_path) -> None:
    import signal
    import subprocess
    import sys

    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    proc = subprocess.Popen([sys.executable, "-m", "shammah_tui", "serve", "--data-dir", str(data), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(6)]  # type: ignore[union-attr]
        url = lines[0].split(" at ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:") and "no Claude upstream" in lines[0]
        assert f"token file: {data / TOKEN_NAME}" in lines[1]
        assert f"export ANTHROPIC_BASE_URL={url}" in lines[3] and "ANTHROPIC_API_KEY=" in lines[4]
        assert stat.S_IMODE((data / TOKEN_NAME).stat().st_mode) == 0o600
        client = anthropic.Anthropic(base_url=url, api_key=(data / TOKEN_NAME).read_text().strip(), max_retries=0)
        reply = client.messages.with_raw_response.create(model=MODEL, max_tokens=8,
                                                         messages=[{"role": "user", "content": "what is 2+3"}])
        assert reply.headers["shammah-source"] == "template" and reply.parse().content[0].text == "5"
        client.close()
        assert "POST /v1/messages 200 template" in proc.stdout.readline()  # type: ignore[union-attr]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
