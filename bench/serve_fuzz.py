"""Fuzz bench for `shammah-tui serve`: generated requests, each of which must get a well-formed
API response or API error, from a server that never stops serving.

    python bench/serve_fuzz.py [--examples 10000] [--seed 0] [--json]

Requests come from tests/fuzzreq.py (hypothesis): odd JSON, wrong types, huge or empty content,
odd unicode, escape sequences, unknown fields, bytes that are not JSON, to the Messages route,
count_tokens and the chat completions route (each answer in its route's shape); plus a few
bodies over the API's 32 MiB limit. The server is `shammah-tui serve` as a user starts it, with the loopback
Messages API as Claude. Every 500 requests a plain question must still be answered; at the end
the server must stop cleanly on Ctrl+C and the database must pass `integrity_check`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from bench.serve_common import MODEL, machine, prepare_data_dir, start_fake, start_server, stop  # noqa: E402
from tests.fuzzreq import check_response, paths, payloads  # noqa: E402

HEALTH_EVERY = 500
OVERSIZED = 3


class Poster:
    """One keep-alive connection, reopened when the server closes it (it may, after a refusal)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.token = parts.hostname or "127.0.0.1", parts.port or 80, token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def post(self, path: str, body: bytes) -> tuple[int, str, str | None, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body,
                                  headers={"x-api-key": self.token, "content-type": "application/json"})
                resp = self.conn.getresponse()
                return (resp.status, (resp.getheader("content-type") or "").split(";")[0],
                        resp.getheader("shammah-source"), resp.read())
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def healthy(self) -> bool:
        body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "what is 2+2"}]}
        status, _, _, data = self.post("/v1/messages", json.dumps(body).encode())
        return status == 200 and json.loads(data)["content"][0]["text"] == "4"


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shammah-serve-fuzz-"))
    data = tmp / "data"
    prepare_data_dir(data)
    fake, upstream = start_fake()
    statuses: Counter[int] = Counter()
    sources: Counter[str] = Counter()
    paths_sent: Counter[str] = Counter()
    problems: list[str] = []
    health: list[bool] = []
    latencies: list[float] = []
    try:
        proc, url, token = start_server(data, upstream, tmp / "server.log")
        poster = Poster(url, token)
        health.append(poster.healthy())  # also waits for the models to load

        @hypothesis_seed(args.seed)
        @settings(max_examples=args.examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(path=paths, payload=payloads)
        def one(path: str, payload: bytes) -> None:
            t = time.perf_counter()
            try:
                status, ctype, source, body = poster.post(path, payload)
            except (http.client.HTTPException, ConnectionError) as exc:
                problems.append(f"{payload[:100]!r} -> no response ({type(exc).__name__})")
                return
            latencies.append((time.perf_counter() - t) * 1000)
            statuses[status] += 1
            sources[source or "-"] += 1
            paths_sent[f"{path} {status}"] += 1
            problem = check_response(path, status, ctype, body)
            if problem is not None:
                problems.append(f"{payload[:100]!r} -> {problem}")
            if sum(statuses.values()) % HEALTH_EVERY == 0:
                health.append(proc.poll() is None and poster.healthy())

        one()
        huge = (b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "'
                + b"x" * (33 << 20) + b'"}]}')
        for _ in range(OVERSIZED):
            status, ctype, _, body = poster.post("/v1/messages", huge)
            statuses[status] += 1
            problem = check_response("/v1/messages", status, ctype, body)
            if status != 413 or problem:
                problems.append(f"33 MiB body -> {status} {problem or ''}")
        health.append(proc.poll() is None and poster.healthy())
        poster.conn.close()
        exit_code = stop(proc)
        con = sqlite3.connect(data / "shammah.db")
        try:
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
            logged = con.execute("SELECT COUNT(*) FROM query_log").fetchone()[0]
        finally:
            con.close()
    finally:
        stop(fake)
        shutil.rmtree(tmp, ignore_errors=True)
    sent = sum(statuses.values())
    ordered = sorted(latencies)
    report = {
        "machine": machine(), "requests": sent, "well_formed": sent - len(problems), "problems": problems[:20],
        "problem_count": len(problems), "by_status": dict(sorted(statuses.items())),
        "by_source": dict(sources.most_common()), "by_path": dict(sorted(paths_sent.items())),
        "health_checks": len(health), "health_ok": sum(health),
        "query_log_rows": logged, "server_exit_code": exit_code, "integrity_check": integrity,
        "latency_p50_ms": ordered[len(ordered) // 2] if ordered else None, "wall_s": time.perf_counter() - t0,
    }
    report["ok"] = (not problems and report["health_ok"] == len(health) and exit_code == 0 and integrity == "ok"
                    and sent >= args.examples)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"serve fuzz bench ({report['machine']}; wall {report['wall_s']:.0f} s)")
        print(f"requests                 {report['requests']}")
        print(f"well-formed API answers  {report['well_formed']}  (problems: {report['problem_count']})")
        for problem in report["problems"]:
            print(f"  {problem}")
        print(f"by status                {report['by_status']}")
        print(f"by shammah-source        {report['by_source']}")
        print(f"by route and status      {report['by_path']}")
        print(f"health checks passed     {report['health_ok']}/{report['health_checks']}")
        print(f"query-log rows           {report['query_log_rows']}; integrity_check {report['integrity_check']}; "
              f"exit code on Ctrl+C {report['server_exit_code']}; p50 {report['latency_p50_ms']:.1f} ms")
        print("OK" if report["ok"] else "NOT OK")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
