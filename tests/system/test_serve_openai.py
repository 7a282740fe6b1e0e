"""`/v1/chat/completions` with the real openai SDK as the client and the loopback Messages API
(tests/fakeapi.py) as Claude: forwarded once, then answered locally with the usage Claude
measured; errors in OpenAI's shape; the same answers as the Messages route."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

import openai
import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from shammah_tui import curriculum
from shammah_tui.engine import Engine
from shammah_tui.serve.run import RunningServer, start_server
from shammah_tui.teachers.offline import OfflineTeacher
from tests.fakeapi import FakeMessagesAPI
from tests.serving import LIMITS, MODEL, UPSTREAM_KEY, claude, open_engine

HAMLET = "Who wrote Hamlet?"
HAMLET_ANSWER = "William Shakespeare wrote Hamlet."
#: What the fake Claude says each answer cost: the numbers a local answer must report and save.
USAGE = (321, 17)


@dataclass
class Chat:
    engine: Engine
    server: RunningServer
    client: AsyncOpenAI
    fake: FakeMessagesAPI


@pytest.fixture
async def chat(tmp_path, fake_api: FakeMessagesAPI):
    data = tmp_path / "data"
    engine = await open_engine(data, claude(fake_api.base_url))
    server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=fake_api.base_url,
                                api_key=UPSTREAM_KEY, limits=LIMITS)
    client = AsyncOpenAI(base_url=server.url + "/v1", api_key=server.token, max_retries=0)
    try:
        yield Chat(engine, server, client, fake_api)
    finally:
        await client.close()
        await server.stop()
        await engine.close()


async def _ask(client: AsyncOpenAI, streaming: bool, messages: list[dict[str, str]],
               **extra: object) -> tuple[str, str | None, tuple[int, int], str | None]:
    """(text, shammah-source, (prompt, completion) tokens, finish_reason) of one completion."""
    if streaming:
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}, **extra)
        stream = raw.parse()
        texts, usage, finish = [], None, None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            for choice in chunk.choices:
                texts.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
        assert usage is not None
        return "".join(texts), raw.headers.get("shammah-source"), usage, finish
    raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=messages, **extra)
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl")
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    return (completion.choices[0].message.content or "", raw.headers.get("shammah-source"),
            (completion.usage.prompt_tokens, completion.usage.completion_tokens), completion.choices[0].finish_reason)


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_a_question_is_forwarded_then_answered_locally_with_the_usage_claude_measured(
        chat: Chat, streaming: bool) -> None:
    chat.engine.apply_settings(dataclasses.replace(chat.engine.settings, prices_usd_per_mtok="claude-test-*=3/15"))
    chat.fake.enqueue_text(HAMLET_ANSWER, usage=USAGE)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": HAMLET}]
    first = await _ask(chat.client, streaming, messages)
    second = await _ask(chat.client, streaming, messages)
    assert first == (HAMLET_ANSWER, "forward", USAGE, "stop")
    assert second == (HAMLET_ANSWER, "learned", USAGE, "stop")
    # Claude was asked once, with the Messages request the chat request means.
    (upstream,) = chat.fake.requests
    assert upstream.body == {"model": MODEL, "max_tokens": 4096, "system": "Be brief.",
                             "messages": [{"role": "user", "content": HAMLET}], "stream": False}
    assert upstream.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert all(chat.server.token not in value for value in upstream.headers.values())
    for _ in range(100):  # a stream's row is written after its last byte went out
        logged = await chat.engine.store.requests()
        if len(logged) == 2:
            break
        await asyncio.sleep(0.02)
    assert [(r.route, r.source, r.input_tokens, r.output_tokens, r.saved_input_tokens, r.saved_output_tokens)
            for r in logged] == [("chat", "forward", *USAGE, 0, 0), ("chat", "learned", *USAGE, *USAGE)]
    assert logged[1].saved_usd == pytest.approx((USAGE[0] * 3 + USAGE[1] * 15) / 1e6)


async def test_both_routes_share_what_they_learned(chat: Chat) -> None:
    chat.fake.enqueue_text(HAMLET_ANSWER, usage=USAGE)
    assert (await _ask(chat.client, False, [{"role": "user", "content": HAMLET}]))[1] == "forward"
    anthropic_client = AsyncAnthropic(base_url=chat.server.url, api_key=chat.server.token, max_retries=0)
    try:
        raw = await anthropic_client.messages.with_raw_response.create(
            model=MODEL, max_tokens=4096, messages=[{"role": "user", "content": HAMLET}])
    finally:
        await anthropic_client.close()
    message = await raw.parse()
    assert raw.headers["shammah-source"] == "learned" and message.content[0].text == HAMLET_ANSWER
    assert (message.usage.input_tokens, message.usage.output_tokens) == USAGE
    assert len(chat.fake.requests) == 1


async def test_fields_sent_as_null_mean_their_defaults(chat: Chat) -> None:
    import aiohttp

    chat.fake.enqueue_text(HAMLET_ANSWER)
    body = {"model": MODEL, "messages": [{"role": "user", "content": HAMLET}], "n": None, "stream": None,
            "max_tokens": None, "temperature": None, "tools": None, "stream_options": None}
    async with aiohttp.ClientSession() as session:
        async with session.post(chat.server.url + "/v1/chat/completions", json=body,
                                headers={"authorization": f"Bearer {chat.server.token}"}) as resp:
            assert resp.status == 200 and (await resp.json())["choices"][0]["message"]["content"] == HAMLET_ANSWER
    assert chat.fake.requests[0].body["max_tokens"] == 4096


async def test_max_tokens_cuts_a_local_answer_with_finish_reason_length(chat: Chat) -> None:
    chat.fake.enqueue_text("word " * 200, usage=(50, 200))
    question = [{"role": "user", "content": "Say word many times."}]
    await _ask(chat.client, False, question)
    text, source, usage, finish = await _ask(chat.client, False, question, max_tokens=10)
    assert source == "learned" and finish == "length" and len(text) <= 40 and usage == (50, 10)


@pytest.mark.parametrize("extra, messages", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, None),
    ({"n": 2}, None), ({"logprobs": True}, None), ({"temperature": 1.5}, None), ({"max_tokens": 0}, None),
    ({}, [{"role": "user", "content": ""}]),
    ({}, [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": HAMLET}]),
    ({}, [{"role": "system", "content": "Be brief."}]),
    ({}, [{"role": "tool", "content": "x", "tool_call_id": "t"}]),
    ({}, [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]),
], ids=["tools", "n", "logprobs", "hot", "max-tokens-0", "empty", "assistant-first", "system-only", "tool-role",
        "image"])
async def test_what_cannot_be_served_faithfully_is_a_400_in_openais_shape(
        chat: Chat, extra: dict[str, object], messages: list[dict[str, object]] | None) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await chat.client.chat.completions.create(
            model=MODEL, messages=messages or [{"role": "user", "content": HAMLET}], **extra)  # type: ignore[arg-type]
    error = info.value.body
    assert isinstance(error, dict) and error["type"] == "invalid_request_error" and error["message"]
    assert info.value.response.headers["request-id"] and chat.fake.requests == []


async def test_a_wrong_token_and_an_upstream_fault_come_back_as_openai_errors(chat: Chat) -> None:
    wrong = AsyncOpenAI(base_url=chat.server.url + "/v1", api_key="shm-wrong", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as auth:
            await wrong.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": HAMLET}])
    finally:
        await wrong.close()
    assert auth.value.code == "invalid_api_key"
    chat.fake.enqueue_error(429, "rate_limit_error", "slow down")
    with pytest.raises(openai.RateLimitError):
        await chat.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": HAMLET}])
    assert await chat.engine.store.learned_answers() == []
    chat.fake.enqueue_text(HAMLET_ANSWER)  # and the server goes on
    assert (await _ask(chat.client, False, [{"role": "user", "content": HAMLET}]))[:2] == (HAMLET_ANSWER, "forward")


async def test_without_a_key_the_offline_curriculum_answers_and_says_so(tmp_path) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, OfflineTeacher(seed=0))
    server = await start_server(engine, data, "127.0.0.1", 0, api_key="", limits=LIMITS)
    client = AsyncOpenAI(base_url=server.url + "/v1", api_key=server.token, max_retries=0)
    item = curriculum.sample_items(1, 3, families=["capitals"])[0]
    try:
        for streaming, expected in ((False, "teacher-offline"), (True, "learned")):
            text, source, _, _ = await _ask(client, streaming, [{"role": "user", "content": item.query}])
            assert (text, source) == (item.answer, expected)
        with pytest.raises(openai.InternalServerError) as info:  # 503: a system prompt needs Claude
            await client.chat.completions.create(model=MODEL, messages=[
                {"role": "system", "content": "You are a pirate."}, {"role": "user", "content": item.query}])
        assert info.value.status_code == 503 and "ANTHROPIC_API_KEY" in str(info.value.body)
        assert [m.id async for m in client.models.list()] == [engine.settings.claude_model]
    finally:
        await client.close()
        await server.stop()
        await engine.close()
