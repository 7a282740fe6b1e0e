"""What `serve` tells clients and keeps about each request: the usage Claude measured, reported
again by a local answer and counted as saved; a request-id on every response; the health route;
named client tokens; the request log and its event, refusals included."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import aiohttp
import anthropic
import pytest
from anthropic import AsyncAnthropic

from shammah_tui.cli import main
from shammah_tui.core.events import RequestServed
from shammah_tui.serve.run import start_server
from shammah_tui.teachers.offline import OfflineTeacher
from tests.fakeapi import FakeMessagesAPI
from tests.serving import LIMITS, MODEL, UPSTREAM_KEY, claude, open_engine

USAGE = (1234, 56)
QUESTION = [{"role": "user", "content": "Who painted the Mona Lisa?"}]
ANSWER = "Leonardo da Vinci painted it."


@pytest.fixture
async def served(tmp_path, fake_api: FakeMessagesAPI):
    data = tmp_path / "data"
    engine = await open_engine(data, claude(fake_api.base_url))
    engine.apply_settings(dataclasses.replace(engine.settings, prices_usd_per_mtok="claude-test-*=3/15"))
    server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=fake_api.base_url,
                                api_key=UPSTREAM_KEY, limits=LIMITS)
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    try:
        yield engine, server, client, fake_api
    finally:
        await client.close()
        await server.stop()
        await engine.close()


async def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET",
               body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, headers=headers or {}, data=body) as resp:
            return resp.status, dict(resp.headers), await resp.read()


async def test_a_local_answer_reports_and_saves_the_usage_claude_measured_for_it(served) -> None:
    engine, server, client, fake = served
    fake.enqueue_text(ANSWER, usage=USAGE)
    forwarded = await client.messages.create(model=MODEL, max_tokens=256, messages=QUESTION)
    assert (forwarded.usage.input_tokens, forwarded.usage.output_tokens) == USAGE
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=QUESTION)
    local = await raw.parse()
    assert raw.headers["shammah-source"] == "learned"
    assert (local.usage.input_tokens, local.usage.output_tokens) == USAGE
    assert (raw.headers["shammah-saved-input-tokens"], raw.headers["shammah-saved-output-tokens"]) == ("1234", "56")
    # Streamed: message_start carries the true input count (clients show context use from it).
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=QUESTION) as stream:
        starts = [event async for event in stream if event.type == "message_start"]
        final = await stream.get_final_message()
    assert starts[0].message.usage.input_tokens == USAGE[0] and final.usage.output_tokens == USAGE[1]
    usd = (USAGE[0] * 3 + USAGE[1] * 15) / 1e6
    for _ in range(100):  # a stream's row is written after its last byte went out
        if len(await engine.store.requests()) == 3:
            break
        await asyncio.sleep(0.02)
    stats = await engine.stats()
    assert stats.saved["total"] == {"requests": 2, "input_tokens": 2 * USAGE[0], "output_tokens": 2 * USAGE[1],
                                       "usd": round(2 * usd, 6)}
    (day,) = stats.saved["by_day"].values()
    assert day["learned"]["input_tokens"] == 2 * USAGE[0] and day["forward"]["requests"] == 1
    assert stats.saved["prices_date"] == engine.settings.prices_date


async def test_an_answer_claude_never_measured_saves_nothing_it_cannot_show(served) -> None:
    engine, server, client, fake = served
    raw = await client.messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "what is 2+3"}])
    assert raw.headers["shammah-source"] == "template" and "shammah-saved-input-tokens" not in raw.headers
    (row,) = await engine.store.requests()
    assert (row.source, row.saved_input_tokens, row.saved_output_tokens, row.saved_usd) == ("template", 0, 0, 0.0)


async def test_every_response_carries_a_request_id_and_every_request_is_logged_and_announced(served) -> None:
    engine, server, client, fake = served
    events: list[RequestServed] = []
    engine.subscribe(lambda event: isinstance(event, RequestServed) and events.append(event))
    key = {"x-api-key": server.token, "content-type": "application/json"}
    fake.enqueue_text(ANSWER)
    ok = json.dumps({"model": MODEL, "max_tokens": 8, "messages": QUESTION}).encode()
    responses = [
        await _get(server.url + "/v1/messages", key, "POST", ok),  # forwarded: Claude's request-id
        await _get(server.url + "/v1/messages", key, "POST", ok),  # local
        await _get(server.url + "/v1/messages", {"x-api-key": "shm-nope"}, "POST", ok),
        await _get(server.url + "/v1/nowhere", key),
        await _get(server.url + "/v1/messages", key, "POST", b"{"),
        await _get(server.url + "/health"),
    ]
    assert [status for status, _, _ in responses] == [200, 200, 401, 404, 400, 200]
    ids = [headers.get("request-id") for _, headers, _ in responses]
    assert all(ids) and len(set(ids)) == len(ids)
    rows = await engine.store.requests()
    assert [(r.route, r.status, r.source, r.token_name) for r in rows] == [
        ("messages", 200, "forward", "default"), ("messages", 200, "learned", "default"),
        ("messages", 401, None, None), ("other", 404, None, "default"), ("messages", 400, None, "default"),
        ("health", 200, None, None)]
    assert [r.request_id for r in rows] == ids and rows[2].error and "Invalid API key" in rows[2].error
    assert [e.request.request_id for e in events] == ids


async def test_health_needs_no_token_and_says_what_is_served(served) -> None:
    engine, server, client, fake = served
    for path in ("/health", "/"):
        status, _, body = await _get(server.url + path)
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok" and health["teacher"] == "claude"
        assert health["upstream"] is True and health["models_loaded"] is False and health["version"]
        assert "/v1/chat/completions" in health["routes"] and server.token not in body.decode()
    assert (await _get(server.url + "/health", method="POST"))[0] == 401  # only GET is open


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": ""}], [{"role": "user", "content": "  "}], [{"role": "user", "content": []}],
    [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Who are you?"}],
], ids=["empty", "blank", "no-blocks", "assistant-first"])
async def test_requests_the_api_refuses_are_400_before_anything_is_asked(served, messages) -> None:
    engine, server, client, fake = served
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model=MODEL, max_tokens=8, messages=messages)
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert info.value.response.headers["request-id"] and fake.requests == []


async def test_a_503_without_an_upstream_is_logged_with_its_request_id(tmp_path) -> None:
    data = tmp_path / "data"
    engine = await open_engine(data, OfflineTeacher(seed=0))
    server = await start_server(engine, data, "127.0.0.1", 0, api_key="", limits=LIMITS)
    client = AsyncAnthropic(base_url=server.url, api_key=server.token, max_retries=0)
    try:
        with pytest.raises(anthropic.ServiceUnavailableError) as info:
            await client.messages.create(model=MODEL, max_tokens=8,
                                         messages=[{"role": "user", "content": "Why is the sky blue?"}])
        request_id = info.value.response.headers["request-id"]
        (row,) = await engine.store.requests()
        assert (row.request_id, row.status, row.source) == (request_id, 503, None) and "Claude" in (row.error or "")
    finally:
        await client.close()
        await server.stop()
        await engine.close()


def test_named_tokens_are_logged_by_name_and_stop_working_when_revoked(tmp_path, capsys, fake_api) -> None:
    data = tmp_path / "data"
    assert main(["serve", "token", "add", "laptop", "--data-dir", str(data)]) == 0
    token = capsys.readouterr().out.splitlines()[0]
    assert main(["serve", "token", "add", "laptop", "--data-dir", str(data)]) == 1
    assert main(["serve", "token", "add", "default", "--data-dir", str(data)]) == 2
    assert main(["serve", "token", "add", "\x1b[2J", "--data-dir", str(data)]) == 2
    assert main(["serve", "frobnicate", "--data-dir", str(data)]) == 2
    assert token not in (data / "shammah.db").read_bytes().decode("latin-1")  # only its hash is kept

    async def ask(engine_token: str) -> int:
        engine = await open_engine(data, claude(fake_api.base_url))
        server = await start_server(engine, data, "127.0.0.1", 0, upstream_url=fake_api.base_url,
                                    api_key=UPSTREAM_KEY, limits=LIMITS)
        try:
            body = json.dumps({"model": MODEL, "max_tokens": 8,
                               "messages": [{"role": "user", "content": "what is 2+3"}]}).encode()
            status, _, _ = await _get(server.url + "/v1/messages", {"authorization": f"Bearer {engine_token}"},
                                      "POST", body)
            return status
        finally:
            await server.stop()
            rows = await engine.store.requests()
            await engine.close()
            names.append(rows[-1].token_name)

    names: list[str | None] = []
    assert asyncio.run(ask(token)) == 200
    assert main(["serve", "token", "revoke", "laptop", "--data-dir", str(data)]) == 0
    assert asyncio.run(ask(token)) == 401
    assert names == ["laptop", None]
    assert main(["serve", "token", "list", "--data-dir", str(data)]) == 0
    assert "laptop" in capsys.readouterr().out
