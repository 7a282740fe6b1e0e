"""Load bench for `shammah-tui serve`: what serving costs over the in-process pipeline and over
calling Claude directly, and whether 50 concurrent clients lose or duplicate a row.

    python bench/serve_load.py [--clients 50] [--requests 2000] [--repeats 300] [--json]

Claude is the loopback Messages API (tests/fakeapi.py) in a process of its own; the server is
`shammah-tui serve` in another, as a user starts it; the clients are aiohttp in this one.

1. In-process: an engine on the data dir learns 200 questions from the fake, then answers them
   (and template questions) again, timed around `Engine.ask`; then it is closed.
2. Sequential, through the server: the same local answers; pass-through requests (with tools,
   never learned) and new text questions (forwarded and learned), each interleaved with the same
   request sent straight to the fake. Overhead = p50 through the server − p50 of the baseline.
3. Load: `--clients` clients share `--requests` requests: learned repeats, templates, new
   questions, tool requests, and repeats and new questions on the OpenAI-shaped chat route,
   half of them streamed. Every response is checked, then the rows: one query-log row per
   request the engine saw, one learned answer per new question (with its own answer), none for
   tool requests, one request-log row per request.

The chat route is timed beside the Messages route in phase 2: its local answers against the
same in-process answers, its forwarded ones against the same request sent straight to the fake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_common import (  # noqa: E402
    MODEL, UPSTREAM_KEY, answer_for, machine, percentile, prepare_data_dir, start_fake, start_server, stop,
)
from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.serve.protocol import scope_of  # noqa: E402
from tests.fuzzreq import check_response  # noqa: E402

TOOL = {"name": "get_weather", "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TARGET_MS = 5.0


def body_for(question: str, *, stream: bool = False, tools: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": question}]}
    if tools:
        body["tools"] = [TOOL]
    if stream:
        body["stream"] = True
    return body


CHAT = "/v1/chat/completions"


def chat_body(question: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": question}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def check_chat(status: int, ctype: str, data: bytes) -> str | None:
    """What is wrong with a chat completions response (None: it is one the openai SDK reads)."""
    try:
        if status != 200:
            error = json.loads(data)["error"]
            return None if isinstance(error["message"], str) and error["type"] else "bad error shape"
        if ctype == "text/event-stream":
            events = [e for e in data.decode().split("\n\n") if e]
            if events[-1] != "data: [DONE]":
                return "stream without data: [DONE]"
            chunks = [json.loads(e[6:]) for e in events[:-1]]
            if any(c["object"] != "chat.completion.chunk" for c in chunks):
                return "not a chunk"
            return None
        completion = json.loads(data)
        return None if completion["object"] == "chat.completion" and completion["usage"]["total_tokens"] > 0 \
            else "not a completion"
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"unreadable chat response ({type(exc).__name__})"


def chat_text(ctype: str, data: bytes) -> str:
    if ctype == "text/event-stream":
        parts = []
        for raw in data.decode().split("\n\n"):
            if raw.startswith("data: {"):
                parts += [c["delta"].get("content") or "" for c in json.loads(raw[6:])["choices"]]
        return "".join(parts)
    return str(json.loads(data)["choices"][0]["message"]["content"])


def template_question(i: int) -> str:
    return f"what is {i} + {i * 7 + 3}"


class Client:
    """Timed requests to the server (with the token) or to the fake (directly)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session, self.url, self.key = session, url, key

    async def post(self, body: dict[str, Any], path: str = "/v1/messages") -> tuple[float, int, str | None, str, bytes]:
        """(ms until the whole body arrived, status, shammah-source, content type, body)."""
        t0 = time.perf_counter()
        headers = ({"x-api-key": self.key, "anthropic-version": "2023-06-01"} if path == "/v1/messages"
                   else {"authorization": f"Bearer {self.key}"})
        async with self.session.post(self.url + path, json=body, headers=headers) as resp:
            data = await resp.read()
            return ((time.perf_counter() - t0) * 1000, resp.status, resp.headers.get("shammah-source"),
                    resp.content_type, data)


# --- 1. in-process -------------------------------------------------------------------------


async def in_process(data: Path, upstream: str, learned: list[str], repeats: int) -> dict[str, list[float]]:
    from shammah_tui.engine.open import open_engine
    from shammah_tui.teachers.claude import ClaudeTeacher

    engine = await open_engine(data, teacher=ClaudeTeacher(MODEL, api_key=UPSTREAM_KEY, base_url=upstream),
                               overrides={"teacher": "claude"})
    scope = scope_of(MODEL, "")  # the server's scope for these requests: the same stored answers
    try:
        await engine.load_models()
        for question in learned:
            result = await engine.ask(Question(question, scope=scope), AskPolicy(auto_train="off"))
            assert result.source == "forward", result
        times: dict[str, list[float]] = {"learned": [], "template": []}
        for i in range(repeats):
            for kind, question in (("learned", learned[i % len(learned)]), ("template", template_question(i))):
                t0 = time.perf_counter()
                result = await engine.ask(Question(question, scope=scope),
                                          AskPolicy(auto_train="off", spot_check="background"))
                times[kind].append((time.perf_counter() - t0) * 1000)
                assert result.source == kind, (kind, result)
        return times
    finally:
        await engine.close()


# --- 2. sequential, through the server ---------------------------------------------------


async def sequential(server: Client, direct: Client, learned: list[str], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in (
        "learned", "template", "learned_sse", "pass_json", "direct_json", "pass_sse", "direct_sse",
        "forward_json", "direct_forward_json", "chat_learned", "chat_template", "chat_learned_sse",
        "chat_forward_json", "direct_chat_forward_json")}
    for i in range(repeats):
        for kind, question in (("learned", learned[i % len(learned)]), ("template", template_question(i))):
            ms, status, source, _, _ = await server.post(body_for(question))
            assert status == 200 and source == kind, (status, source)
            times[kind].append(ms)
        ms, status, source, _, _ = await server.post(body_for(learned[i % len(learned)], stream=True))
        assert status == 200 and source == "learned"
        times["learned_sse"].append(ms)
        for kind, question, stream in (("learned", learned[(i + 7) % len(learned)], False),
                                       ("template", template_question(i + 1), False),
                                       ("learned", learned[(i + 11) % len(learned)], True)):
            ms, status, source, _, _ = await server.post(chat_body(question, stream=stream), CHAT)
            assert status == 200 and source == kind, (status, source)
            times[f"chat_{kind}" + ("_sse" if stream else "")].append(ms)
        for stream, name in ((False, "json"), (True, "sse")):
            body = body_for(f"Weather in city {i}?", stream=stream, tools=True)
            # alternate who goes first: drift in the machine's load falls on both alike
            pair = [(server, f"pass_{name}"), (direct, f"direct_{name}")]
            for client, key in (pair if i % 2 else pair[::-1]):
                ms, status, source, _, _ = await client.post(body)
                assert status == 200 and (client is direct or source == "forward")
                times[key].append(ms)
        new = body_for(f"Sequential new question number {i}?")
        for client, key in ((server, "forward_json"), (direct, "direct_forward_json")):
            ms, status, _, _, _ = await client.post(new)
            assert status == 200
            times[key].append(ms)
        new_chat = f"Sequential new chat question number {i}?"
        pair = [(server, "chat_forward_json", chat_body(new_chat), CHAT),
                (direct, "direct_chat_forward_json", body_for(new_chat), "/v1/messages")]
        for client, key, body, path in (pair if i % 2 else pair[::-1]):
            ms, status, _, _, _ = await client.post(body, path)
            assert status == 200
            times[key].append(ms)
    return times


# --- 3. load -----------------------------------------------------------------------------


async def load(server: Client, learned: list[str], clients: int, total: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    jobs: list[tuple[str, str, bool]] = []  # (expected source, question, streamed)
    for i in range(total):
        r = rng.random()
        stream = rng.random() < 0.5
        if r < 0.3:
            jobs.append(("learned", rng.choice(learned), stream))
        elif r < 0.4:
            jobs.append(("template", template_question(10_000 + i), stream))
        elif r < 0.6:
            jobs.append(("forward", f"Load question {i}: what is special about the number {i}?", stream))
        elif r < 0.7:
            jobs.append(("tool", f"Weather in load city {i}?", stream))
        elif r < 0.85:
            jobs.append(("chat_learned", rng.choice(learned), stream))
        else:
            jobs.append(("chat_forward", f"Load chat question {i}: what is special about the number {i}?", stream))
    queue: asyncio.Queue[tuple[str, str, bool]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    results: list[tuple[str, str, bool, float, int, str | None, str | None]] = []

    async def worker() -> None:
        while not queue.empty():
            kind, question, stream = queue.get_nowait()
            body = body_for(question, stream=stream, tools=kind == "tool")
            if kind.startswith("chat_"):
                ms, status, source, ctype, data = await server.post(chat_body(question, stream=stream), CHAT)
                problem = check_chat(status, ctype, data)
            else:
                ms, status, source, ctype, data = await server.post(body)
                problem = check_response("/v1/messages", status, ctype, data)
            if problem is None and status == 200:
                text = chat_text(ctype, data) if kind.startswith("chat_") else _answer_text(ctype, data)
                expected = answer_for(body) if kind in ("forward", "tool", "chat_forward") else None
                if expected is not None and text != expected:
                    problem = f"wrong answer for {question!r}: {text!r}"
            results.append((kind, question, stream, ms, status, source, problem))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"jobs": jobs, "results": results, "wall_s": wall}


def _answer_text(ctype: str, data: bytes) -> str:
    if ctype == "text/event-stream":
        parts = []
        for raw in data.decode().split("\n\n"):
            lines = raw.split("\n")
            if len(lines) >= 2 and lines[0] == "event: content_block_delta":
                parts.append(json.loads(lines[1][6:])["delta"].get("text", ""))
        return "".join(parts)
    return "".join(b.get("text", "") for b in json.loads(data)["content"])


def check_rows(db: Path, before: dict[str, int], outcome: dict[str, Any]) -> dict[str, Any]:
    """The rows the load phase must have left: none lost, none doubled, none crossed."""
    results = outcome["results"]
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        after_id = before["query_log_max_id"]
        logged = con.execute("SELECT query, source, answer, error FROM query_log WHERE id > ?", (after_id,)).fetchall()
        learned = dict(con.execute("SELECT query, answer FROM learned_answers WHERE id > ?",
                                   (before["learned_max_id"],)).fetchall())
        examples = con.execute("SELECT COUNT(*) FROM training_examples WHERE id > ?",
                               (before["examples_max_id"],)).fetchone()[0]
        request_rows = con.execute("SELECT COUNT(*) FROM request_log WHERE id > ?",
                                   (before["request_log_max_id"],)).fetchone()[0]
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
    engine_requests = [r for r in results if r[0] != "tool"]
    new_questions = [r[1] for r in results if r[0] in ("forward", "chat_forward")]
    expected_source = {"tool": "forward", "chat_learned": "learned", "chat_forward": "forward"}
    forward_rows = [q for q, source, _, _ in logged if source == "forward"]
    return {
        "responses_ok": sum(1 for r in results if r[4] == 200 and r[6] is None),
        "responses_bad": [r[6] or f"status {r[4]}" for r in results if r[4] != 200 or r[6]][:5],
        "source_mismatches": sum(1 for r in results if r[5] != expected_source.get(r[0], r[0])),
        "query_log_rows": len(logged),
        "query_log_expected": len(engine_requests),
        "query_log_errors": sum(1 for row in logged if row[3]),
        "forward_rows_duplicated": len(forward_rows) - len(set(forward_rows)),
        "learned_rows": len(learned),
        "learned_expected": len(set(new_questions)),
        "learned_wrong_answer": sum(1 for q in new_questions if learned.get(q) != answer_for(body_for(q))),
        "examples_rows": examples,
        "tool_rows": sum(1 for q, *_ in logged if q.startswith("Weather in load city")),
        "request_log_rows": request_rows, "request_log_expected": len(results),
        "integrity_check": integrity,
    }


def max_ids(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            "query_log_max_id": con.execute("SELECT COALESCE(MAX(id), 0) FROM query_log").fetchone()[0],
            "learned_max_id": con.execute("SELECT COALESCE(MAX(id), 0) FROM learned_answers").fetchone()[0],
            "examples_max_id": con.execute("SELECT COALESCE(MAX(id), 0) FROM training_examples").fetchone()[0],
            "request_log_max_id": con.execute("SELECT COALESCE(MAX(id), 0) FROM request_log").fetchone()[0],
        }
    finally:
        con.close()


# --- report ------------------------------------------------------------------------------


def summarize(inproc: dict[str, list[float]], seq: dict[str, list[float]], rows: dict[str, Any],
              outcome: dict[str, Any], wall_s: float, args: argparse.Namespace) -> dict[str, Any]:
    p50 = {k: percentile(v, 0.5) for k, v in (inproc | {f"serve_{k}": v for k, v in seq.items()}).items()}
    by_kind: dict[str, list[float]] = {}
    for kind, _, _, ms, *_ in outcome["results"]:
        by_kind.setdefault(kind, []).append(ms)
    report = {
        "machine": machine(),
        "in_process_learned_p50_ms": p50["learned"], "in_process_template_p50_ms": p50["template"],
        "serve_learned_p50_ms": p50["serve_learned"], "serve_template_p50_ms": p50["serve_template"],
        "serve_learned_sse_p50_ms": p50["serve_learned_sse"],
        "local_overhead_p50_ms": p50["serve_learned"] - p50["learned"],
        "local_overhead_template_p50_ms": p50["serve_template"] - p50["template"],
        "direct_json_p50_ms": p50["serve_direct_json"], "pass_json_p50_ms": p50["serve_pass_json"],
        "pass_overhead_json_p50_ms": p50["serve_pass_json"] - p50["serve_direct_json"],
        "direct_sse_p50_ms": p50["serve_direct_sse"], "pass_sse_p50_ms": p50["serve_pass_sse"],
        "pass_overhead_sse_p50_ms": p50["serve_pass_sse"] - p50["serve_direct_sse"],
        "forward_learned_overhead_p50_ms": p50["serve_forward_json"] - p50["serve_direct_forward_json"],
        "chat_learned_p50_ms": p50["serve_chat_learned"], "chat_template_p50_ms": p50["serve_chat_template"],
        "chat_learned_sse_p50_ms": p50["serve_chat_learned_sse"],
        "chat_local_overhead_p50_ms": p50["serve_chat_learned"] - p50["learned"],
        "chat_local_overhead_template_p50_ms": p50["serve_chat_template"] - p50["template"],
        "chat_forward_json_p50_ms": p50["serve_chat_forward_json"],
        "direct_chat_forward_json_p50_ms": p50["serve_direct_chat_forward_json"],
        "chat_forward_overhead_p50_ms": p50["serve_chat_forward_json"] - p50["serve_direct_chat_forward_json"],
        "load_clients": args.clients, "load_requests": len(outcome["results"]),
        "load_wall_s": outcome["wall_s"], "load_req_per_s": len(outcome["results"]) / outcome["wall_s"],
        "load_p50_ms": {k: percentile(v, 0.5) for k, v in by_kind.items()},
        "load_p95_ms": {k: percentile(v, 0.95) for k, v in by_kind.items()},
        "load_mix": {k: len(v) for k, v in by_kind.items()},
        "rows": rows, "bench_wall_s": wall_s,
    }
    report["ok"] = (report["local_overhead_p50_ms"] <= TARGET_MS and report["pass_overhead_json_p50_ms"] <= TARGET_MS
                    and report["pass_overhead_sse_p50_ms"] <= TARGET_MS
                    and report["chat_local_overhead_p50_ms"] <= TARGET_MS
                    and rows["request_log_rows"] == rows["request_log_expected"]
                    and rows["responses_ok"] == len(outcome["results"])
                    and rows["query_log_rows"] == rows["query_log_expected"] and rows["forward_rows_duplicated"] == 0
                    and rows["learned_rows"] == rows["learned_expected"] and rows["learned_wrong_answer"] == 0
                    and rows["tool_rows"] == 0 and rows["source_mismatches"] == 0 and rows["integrity_check"] == "ok")
    return report


def print_table(r: dict[str, Any]) -> None:
    rows = r["rows"]
    print(f"serve load bench ({r['machine']}; wall {r['bench_wall_s']:.0f} s)")
    print(f"{'':34}{'p50 ms':>9}")
    for label, key in (("in-process, learned answer", "in_process_learned_p50_ms"),
                       ("through serve, learned answer", "serve_learned_p50_ms"),
                       ("  overhead (target ≤ 5)", "local_overhead_p50_ms"),
                       ("in-process, template answer", "in_process_template_p50_ms"),
                       ("through serve, template answer", "serve_template_p50_ms"),
                       ("  overhead", "local_overhead_template_p50_ms"),
                       ("through serve, learned, SSE", "serve_learned_sse_p50_ms"),
                       ("upstream direct, JSON", "direct_json_p50_ms"),
                       ("pass-through, JSON", "pass_json_p50_ms"),
                       ("  overhead (target ≤ 5)", "pass_overhead_json_p50_ms"),
                       ("upstream direct, SSE", "direct_sse_p50_ms"),
                       ("pass-through, SSE", "pass_sse_p50_ms"),
                       ("  overhead (target ≤ 5)", "pass_overhead_sse_p50_ms"),
                       ("forwarded + learned, overhead", "forward_learned_overhead_p50_ms"),
                       ("chat route, learned answer", "chat_learned_p50_ms"),
                       ("  overhead (target ≤ 5)", "chat_local_overhead_p50_ms"),
                       ("chat route, template answer", "chat_template_p50_ms"),
                       ("  overhead", "chat_local_overhead_template_p50_ms"),
                       ("chat route, learned, SSE", "chat_learned_sse_p50_ms"),
                       ("upstream direct, same question", "direct_chat_forward_json_p50_ms"),
                       ("chat route, forwarded + learned", "chat_forward_json_p50_ms"),
                       ("  overhead (as Messages' above)", "chat_forward_overhead_p50_ms")):
        print(f"{label:34}{r[key]:>9.2f}")
    print(f"\nload: {r['load_clients']} clients, {r['load_requests']} requests in {r['load_wall_s']:.1f} s "
          f"({r['load_req_per_s']:.0f} req/s)")
    for kind in sorted(r["load_mix"]):
        print(f"  {kind:9} n={r['load_mix'][kind]:5}  p50 {r['load_p50_ms'][kind]:7.1f} ms  "
              f"p95 {r['load_p95_ms'][kind]:7.1f} ms")
    print(f"responses well-formed and right: {rows['responses_ok']}/{r['load_requests']}"
          f"{'  ' + str(rows['responses_bad']) if rows['responses_bad'] else ''}; source mismatches "
          f"{rows['source_mismatches']}")
    print(f"query-log rows {rows['query_log_rows']} (expected {rows['query_log_expected']}, errors "
          f"{rows['query_log_errors']}); forward rows duplicated {rows['forward_rows_duplicated']}")
    print(f"learned answers {rows['learned_rows']} (expected {rows['learned_expected']}, wrong "
          f"{rows['learned_wrong_answer']}); training examples {rows['examples_rows']}; rows for tool requests "
          f"{rows['tool_rows']}; integrity_check {rows['integrity_check']}")
    print(f"request-log rows {rows['request_log_rows']} (expected {rows['request_log_expected']})")
    print("OK" if r["ok"] else "NOT OK")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shammah-serve-load-"))
    data = tmp / "data"
    prepare_data_dir(data)
    learned = [f"Bench question {i}: what does the word number {i} mean?" for i in range(200)]
    fake, upstream = start_fake()
    try:
        inproc = await in_process(data, upstream, learned, args.repeats)
        server_proc, url, token = start_server(data, upstream, tmp / "server.log")
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                server, direct = Client(session, url, token), Client(session, upstream, UPSTREAM_KEY)
                for _ in range(20):  # warm: the first answer waits for the models to load
                    await server.post(body_for(learned[0]))
                    await direct.post(body_for("warm"))
                seq = await sequential(server, direct, learned, args.repeats)
                before = max_ids(data / "shammah.db")
                outcome = await load(server, learned, args.clients, args.requests, args.seed)
        finally:
            code = stop(server_proc)
        rows = check_rows(data / "shammah.db", before, outcome) | {"server_exit_code": code}
        return summarize(inproc, seq, rows, outcome, time.perf_counter() - t0, args)
    finally:
        stop(fake)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=300, help="sequential requests per timed kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
