"""Savings bench for `shammah-tui serve`: are the tokens and dollars it says local answers saved
exactly the upstream usage of the answers they reused?

    python bench/serve_savings.py [--requests 500] [--questions 150] [--json]

Claude is the loopback Messages API (tests/fakeapi.py), whose usage differs per question (about
four bytes a token of the prompt and of the answer); the server is `shammah-tui serve` on a
fresh data dir. A stream of `--requests` requests draws from `--questions` questions, so most
come back: on both routes (Messages and chat completions), half streamed. The client keeps what
Claude reported for each question when it was forwarded; every later, local answer of that
question must save exactly that. Then the server stops and `shammah-tui stats --json` is read:
its `saved` totals must equal the client's sum, to the token, and the dollars that sum priced
with the settings' table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_common import (  # noqa: E402
    ROOT, machine, prepare_data_dir, server_env, start_fake, start_server, stop,
)

#: A model the default price table prices (its sonnet row).
MODEL = "claude-sonnet-bench"


def usage_of(route: str, stream: bool, data: bytes) -> tuple[str, tuple[int, int]]:
    """(answer text, (input, output) tokens) of a response, as the client reads it."""
    if route == "messages" and stream:
        text, tokens_in, tokens_out = [], 0, 0
        for raw in data.decode().split("\n\n"):
            lines = raw.split("\n")
            if len(lines) < 2:
                continue
            event = json.loads(lines[1][6:])
            if event["type"] == "message_start":
                tokens_in = event["message"]["usage"]["input_tokens"]
            elif event["type"] == "content_block_delta":
                text.append(event["delta"]["text"])
            elif event["type"] == "message_delta":
                tokens_out = event["usage"]["output_tokens"]
        return "".join(text), (tokens_in, tokens_out)
    if route == "messages":
        message = json.loads(data)
        return message["content"][0]["text"], (message["usage"]["input_tokens"], message["usage"]["output_tokens"])
    if stream:
        text, usage = [], None
        for raw in data.decode().split("\n\n"):
            if not raw.startswith("data: ") or raw == "data: [DONE]":
                continue
            chunk = json.loads(raw[6:])
            if chunk.get("usage"):
                usage = (chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
            for choice in chunk["choices"]:
                text.append(choice["delta"].get("content") or "")
        assert usage is not None
        return "".join(text), usage
    completion = json.loads(data)
    return (completion["choices"][0]["message"]["content"],
            (completion["usage"]["prompt_tokens"], completion["usage"]["completion_tokens"]))


async def stream_of_requests(url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    questions = [f"Savings question {i}: what is {'remarkable ' * (i % 7)}about the number {i}?"
                 for i in range(args.questions)]
    measured: dict[str, tuple[int, int]] = {}  # question → Claude's usage when it was forwarded
    expected_in = expected_out = 0
    headers_in = headers_out = 0
    counts: dict[str, int] = {}
    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        for i in range(args.requests):
            question = rng.choice(questions)
            route = "messages" if rng.random() < 0.5 else "chat"
            stream = rng.random() < 0.5
            messages = [{"role": "user", "content": question}]
            if route == "messages":
                path, body = "/v1/messages", {"model": MODEL, "max_tokens": 1024, "messages": messages}
            else:
                path, body = "/v1/chat/completions", {"model": MODEL, "max_tokens": 1024, "messages": messages}
                if stream:
                    body["stream_options"] = {"include_usage": True}
            if stream:
                body["stream"] = True
            async with session.post(url + path, json=body, headers={"authorization": f"Bearer {token}"}) as resp:
                data = await resp.read()
                source = resp.headers.get("shammah-source")
                saved = (int(resp.headers.get("shammah-saved-input-tokens", 0)),
                         int(resp.headers.get("shammah-saved-output-tokens", 0)))
                if resp.status != 200:
                    problems.append(f"request {i}: status {resp.status}")
                    continue
            text, usage = usage_of(route, stream, data)
            counts[f"{route}/{source}"] = counts.get(f"{route}/{source}", 0) + 1
            if source == "forward":
                if question in measured:
                    problems.append(f"request {i}: {question!r} forwarded twice")
                measured[question] = usage
            elif source == "learned":
                if question not in measured:
                    problems.append(f"request {i}: local answer to a question never forwarded")
                    continue
                if usage != measured[question]:
                    problems.append(f"request {i}: usage {usage} != Claude's {measured[question]}")
                expected_in += measured[question][0]
                expected_out += measured[question][1]
                headers_in += saved[0]
                headers_out += saved[1]
            else:
                problems.append(f"request {i}: source {source}")
            if not text.startswith("Answer to:"):
                problems.append(f"request {i}: answer {text[:60]!r}")
    return {"expected_input_tokens": expected_in, "expected_output_tokens": expected_out,
            "headers_input_tokens": headers_in, "headers_output_tokens": headers_out,
            "counts": counts, "problems": problems[:10], "problem_count": len(problems)}


def stats_json(data: Path, upstream: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "shammah_tui", "stats", "--json", "--data-dir", str(data)],
                         capture_output=True, text=True, cwd=ROOT, env=server_env(upstream), check=True).stdout
    stats: dict[str, Any] = json.loads(out)
    return stats


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from shammah_tui.settings import Settings

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shammah-serve-savings-"))
    data = tmp / "data"
    prepare_data_dir(data)
    fake, upstream = start_fake()
    try:
        server, url, token = start_server(data, upstream, tmp / "server.log")
        try:
            client = await stream_of_requests(url, token, args)
        finally:
            code = stop(server)
        stats = stats_json(data, upstream)
    finally:
        stop(fake)
        shutil.rmtree(tmp, ignore_errors=True)
    price = Settings().price_per_mtok(MODEL)
    assert price is not None
    expected_usd = (client["expected_input_tokens"] * price[0] + client["expected_output_tokens"] * price[1]) / 1e6
    total = stats["saved"]["total"]
    report = {
        "machine": machine(), "requests": args.requests, "questions": args.questions, **client,
        "stats_saved": total, "expected_usd": round(expected_usd, 6), "prices_date": stats["saved"]["prices_date"],
        "price_per_mtok": price, "server_exit_code": code, "wall_s": time.perf_counter() - t0,
    }
    report["ok"] = (client["problem_count"] == 0
                    and total["input_tokens"] == client["expected_input_tokens"] == client["headers_input_tokens"]
                    and total["output_tokens"] == client["expected_output_tokens"] == client["headers_output_tokens"]
                    and abs(total["usd"] - expected_usd) < 1e-6 and code == 0)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"serve savings bench ({report['machine']}; wall {report['wall_s']:.0f} s)")
        print(f"{args.requests} requests over {args.questions} questions: {report['counts']}")
        print(f"saved, summed from Claude's usage of each reused answer: {report['expected_input_tokens']} in + "
              f"{report['expected_output_tokens']} out tokens, ${report['expected_usd']:.6f} "
              f"(at ${report['price_per_mtok'][0]:g}/${report['price_per_mtok'][1]:g} per Mtok, prices of "
              f"{report['prices_date']})")
        print(f"saved, as the response headers said: {report['headers_input_tokens']} in + "
              f"{report['headers_output_tokens']} out tokens")
        saved = report["stats_saved"]
        print(f"saved, as stats --json says: {saved['input_tokens']} in + {saved['output_tokens']} out tokens, "
              f"${saved['usd']:.6f} over {saved['requests']} local answers")
        print(f"problems: {report['problem_count']} {report['problems'] or ''}")
        print("OK" if report["ok"] else "NOT OK")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
