"""Crash bench for `shammah-tui serve`: `kill -9` at random moments under load, then restart.

    python bench/serve_kill.py [--kills 100] [--clients 8] [--json]

Each round starts the server on the same data dir, puts it under load (new questions that are
forwarded and learned, repeats of answered ones that come back locally, template questions;
half streamed), waits for the first answer (the models have loaded), waits a random 0-1.5 s
more, reads what is committed (another connection's view: rows it sees are committed), and
kills the server with SIGKILL at once. Then, with the server down:

- `PRAGMA integrity_check` must say ok;
- every row seen committed before the kill must still be there (query log, learned answers,
  training examples);
- every answer a client received complete must have its rows: the server sends the end of an
  answer only after storing it;
- every request-log row seen committed must still be there, and every JSON answer a client
  received must have its request-log row (found by its request-id: a JSON response leaves only
  after its row is written; a stream's row follows its last byte, so streams are only counted).

Half the requests go to the OpenAI-shaped chat completions route, half to the Messages route.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_common import MODEL, machine, prepare_data_dir, start_fake, start_server, stop  # noqa: E402


class Load:
    """Clients that ask until stopped, recording every answer they received whole."""

    def __init__(self, url: str, token: str, rng: random.Random, answered: list[str]) -> None:
        self.url, self.token, self.rng = url, token, rng
        self.answered = answered  # forwarded questions answered whole in earlier rounds: repeat them
        self.complete: list[tuple[str, str, str, str]] = []  # (question, source, how, request-id)
        self.first = asyncio.Event()
        self.counter = 0

    async def client(self, session: aiohttp.ClientSession) -> None:
        while True:
            self.counter += 1
            r = self.rng.random()
            if r < 0.45 or not self.answered:
                question = f"Crash bench question {os.getpid()}-{time.monotonic_ns()}-{self.counter}?"
            elif r < 0.85:
                question = self.rng.choice(self.answered)
            else:
                question = f"what is {self.counter} * 3"
            stream = self.rng.random() < 0.5
            chat = self.rng.random() < 0.5
            body = {"model": MODEL, "max_tokens": 128, "messages": [{"role": "user", "content": question}],
                    "stream": stream}
            path = "/v1/chat/completions" if chat else "/v1/messages"
            try:
                async with session.post(self.url + path, json=body,
                                        headers={"authorization": f"Bearer {self.token}"}) as resp:
                    data = await resp.read()
                    source = resp.headers.get("shammah-source", "")
                    if resp.status == 200 and _whole(data, stream, chat):
                        self.complete.append((question, source, "sse" if stream else "json",
                                              resp.headers.get("request-id", "")))
                        if source == "forward":
                            self.answered.append(question)
                        self.first.set()
            except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                await asyncio.sleep(0.05)  # the server is down: wait for the round to end


def _whole(data: bytes, stream: bool, chat: bool) -> bool:
    if stream:
        return data.rstrip().endswith(b"data: [DONE]" if chat else b'data: {"type": "message_stop"}')
    try:
        return json.loads(data).get("object" if chat else "type") == ("chat.completion" if chat else "message")
    except ValueError:
        return False


def committed(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {
            "query_log": con.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM query_log").fetchone(),
            "learned": {r[0] for r in con.execute("SELECT id FROM learned_answers")},
            "examples": con.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM training_examples").fetchone(),
            "request_log": con.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM request_log").fetchone(),
        }
    finally:
        con.close()


def verify(db: Path, seen: dict[str, Any], complete: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    con = sqlite3.connect(db, timeout=30)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        max_id, count = seen["query_log"]
        log_lost = count - con.execute("SELECT COUNT(*) FROM query_log WHERE id <= ?", (max_id,)).fetchone()[0]
        learned_now = {r[0] for r in con.execute("SELECT id FROM learned_answers")}
        ex_max, ex_count = seen["examples"]
        examples_lost = ex_count - con.execute("SELECT COUNT(*) FROM training_examples WHERE id <= ?",
                                               (ex_max,)).fetchone()[0]
        logged = Counter(con.execute("SELECT query, source FROM query_log WHERE source IS NOT NULL").fetchall())
        learned_queries = {r[0] for r in con.execute("SELECT query FROM learned_answers")}
        req_max, req_count = seen["request_log"]
        requests_lost = req_count - con.execute("SELECT COUNT(*) FROM request_log WHERE id <= ?",
                                                (req_max,)).fetchone()[0]
        request_ids = {r[0] for r in con.execute("SELECT request_id FROM request_log")}
    finally:
        con.close()
    received = Counter((q, s) for q, s, _, _ in complete)
    answers_without_rows = sum(max(0, n - logged[key]) for key, n in received.items())
    forwards_not_learned = sum(1 for (q, s) in received if s == "forward" and q not in learned_queries)
    return {"integrity": integrity, "log_rows_lost": log_lost, "learned_lost": len(seen["learned"] - learned_now),
            "examples_lost": examples_lost, "answers_without_rows": answers_without_rows,
            "forwards_not_learned": forwards_not_learned, "request_log_rows_lost": requests_lost,
            "json_answers_without_request_row": sum(1 for *_, how, rid in complete
                                                    if how == "json" and rid not in request_ids),
            "sse_answers_without_request_row": sum(1 for *_, how, rid in complete
                                                   if how == "sse" and rid not in request_ids)}


async def one_round(i: int, data: Path, upstream: str, log: Path, rng: random.Random, clients: int,
                    answered: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc, url, token = await asyncio.to_thread(start_server, data, upstream, log)
    load = Load(url, token, rng, answered)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.ensure_future(load.client(session)) for _ in range(clients)]
        try:
            await asyncio.wait_for(load.first.wait(), 180)
            delay = rng.uniform(0, 1.5)
            await asyncio.sleep(delay)
            seen = await asyncio.to_thread(committed, data / "shammah.db")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    result = verify(data / "shammah.db", seen, load.complete)
    result |= {"round": i, "delay_s": round(delay, 3), "answers_received": len(load.complete),
               "rows_seen": seen["query_log"][1], "round_s": time.perf_counter() - t0}
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shammah-serve-kill-"))
    data = tmp / "data"
    prepare_data_dir(data)
    rng = random.Random(args.seed)
    fake, upstream = start_fake()
    rounds: list[dict[str, Any]] = []
    answered: list[str] = []
    try:
        for i in range(args.kills):
            rounds.append(await one_round(i, data, upstream, tmp / "server.log", rng, args.clients, answered))
            if not args.json:
                r = rounds[-1]
                print(f"round {i + 1:3}: killed {r['delay_s']:.2f} s after the first answer; {r['answers_received']:3}"
                      f" answers received, {r['rows_seen']:5} rows committed; lost {r['log_rows_lost']}"
                      f"/{r['learned_lost']}/{r['examples_lost']}; answers without rows "
                      f"{r['answers_without_rows']}; integrity {r['integrity']}", flush=True)
        # Once more, cleanly: the server starts on what the kills left and answers.
        proc, url, token = await asyncio.to_thread(start_server, data, upstream, tmp / "server.log")
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/v1/messages", headers={"x-api-key": token}, json={
                    "model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "what is 2+2"}]}) as r:
                final_ok = r.status == 200
        final_exit = stop(proc)
    finally:
        stop(fake)
        shutil.rmtree(tmp, ignore_errors=True)
    totals = {k: sum(r[k] for r in rounds) for k in ("log_rows_lost", "learned_lost", "examples_lost",
                                                       "answers_without_rows", "forwards_not_learned",
                                                       "answers_received", "request_log_rows_lost",
                                                       "json_answers_without_request_row",
                                                       "sse_answers_without_request_row")}
    report = {
        "machine": machine(), "kills": len(rounds), "clients": args.clients,
        "integrity_ok_rounds": sum(r["integrity"] == "ok" for r in rounds),
        **totals,
        "rows_committed_at_last_kill": rounds[-1]["rows_seen"] if rounds else 0,
        "restart_after_kills_answers": final_ok, "clean_stop_exit_code": final_exit,
        "round_s_p50": sorted(r["round_s"] for r in rounds)[len(rounds) // 2] if rounds else 0,
        "wall_s": time.perf_counter() - t0,
    }
    report["ok"] = (report["integrity_ok_rounds"] == len(rounds) and totals["log_rows_lost"] == 0
                    and totals["learned_lost"] == 0 and totals["examples_lost"] == 0
                    and totals["answers_without_rows"] == 0 and totals["forwards_not_learned"] == 0
                    and totals["request_log_rows_lost"] == 0 and totals["json_answers_without_request_row"] == 0
                    and final_ok)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nserve kill bench ({report['machine']}; wall {report['wall_s']:.0f} s, "
              f"{report['round_s_p50']:.1f} s a round)")
        print(f"kill -9 rounds                      {report['kills']}")
        print(f"integrity_check ok                  {report['integrity_ok_rounds']}/{report['kills']}")
        print(f"committed rows lost (log/learned/examples)  {report['log_rows_lost']}/{report['learned_lost']}"
              f"/{report['examples_lost']}  (of {report['rows_committed_at_last_kill']} log rows at the end)")
        print(f"answers received whole              {report['answers_received']}")
        print(f"  without their rows                {report['answers_without_rows']}")
        print(f"  forwarded but not learned         {report['forwards_not_learned']}")
        print(f"request-log rows lost               {report['request_log_rows_lost']}")
        print(f"JSON answers without their request-log row  {report['json_answers_without_request_row']} "
              f"(streams: {report['sse_answers_without_request_row']}, their row follows the last byte)")
        print(f"restart after the kills answers     {report['restart_after_kills_answers']}; clean stop exit "
              f"code {report['clean_stop_exit_code']}")
        print("OK" if report["ok"] else "NOT OK")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
