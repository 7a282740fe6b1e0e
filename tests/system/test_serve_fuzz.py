"""A slice of the serve fuzz bench (bench/serve_fuzz.py runs 10,000): generated requests, each
answered with a well-formed API response or API error, and a server that keeps serving."""

from __future__ import annotations

import http.client
import json

from hypothesis import HealthCheck, given, settings

from tests.fuzzreq import MODEL, check_response, paths, payloads
from tests.serving import ServerThread


def post(conn: http.client.HTTPConnection, token: str, path: str, body: bytes) -> tuple[int, str, bytes]:
    conn.request("POST", path, body=body, headers={"x-api-key": token, "content-type": "application/json"})
    resp = conn.getresponse()
    return resp.status, (resp.getheader("content-type") or "").split(";")[0], resp.read()


def test_generated_requests_get_api_answers_and_the_server_keeps_serving(tmp_path) -> None:
    with ServerThread(tmp_path / "data") as served:
        assert served.server is not None
        host, port, token = "127.0.0.1", served.server.port, served.server.token
        conn = http.client.HTTPConnection(host, port, timeout=30)
        problems: list[str] = []

        @settings(max_examples=300, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(path=paths, payload=payloads)
        def one(path: str, payload: bytes) -> None:
            nonlocal conn
            try:
                status, content_type, body = post(conn, token, path, payload)
            except (http.client.HTTPException, ConnectionError):
                conn.close()  # the server may close a connection after refusing a body; a new one
                conn = http.client.HTTPConnection(host, port, timeout=30)
                status, content_type, body = post(conn, token, path, payload)
            problem = check_response(path, status, content_type, body)
            if problem is not None:
                problems.append(f"{payload[:120]!r} -> {problem}")

        one()
        assert problems == []
        ok = json.dumps({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "what is 2+2"}]})
        conn = http.client.HTTPConnection(host, port, timeout=30)
        status, _, body = post(conn, token, "/v1/messages", ok.encode())
        assert status == 200 and json.loads(body)["content"][0]["text"] == "4"
        assert served.run(lambda engine: engine.store.integrity_ok())
