"""Starting and stopping the server on the caller's event loop (the CLI's, or the TUI's).

    server = await start_server(engine, data_dir, "127.0.0.1", 8765)
    print(server.url, server.token_path)
    ...
    await server.stop()          # the engine stays open: it is the caller's
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from shammah_tui.serve import DEFAULT_HOST, DEFAULT_PORT
from shammah_tui.serve.app import ServedRequest, ServeState, build_app
from shammah_tui.serve.auth import bind_problem, is_loopback, load_or_create_token
from shammah_tui.serve.protocol import MAX_BODY_BYTES
from shammah_tui.serve.upstream import Upstream, UpstreamConfig

if TYPE_CHECKING:
    from shammah_tui.engine import Engine

DEFAULT_UPSTREAM = "https://api.anthropic.com"
#: Seconds stop() lets requests in flight finish before cancelling them (aiohttp waits this
#: twice: for the handlers, then for the connections). Cancelled, they store nothing partial.
SHUTDOWN_GRACE_S = 1.0


class ServeError(Exception):
    """The server cannot start; the message is one line for the user."""


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = MAX_BODY_BYTES
    max_output_bytes: int = 64 * 1024 * 1024
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0


class RunningServer:
    """A started server: where it listens, the token clients use, and `stop()`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, token: str, token_path: Path,
                 upstream: Upstream | None) -> None:
        self._runner = runner
        self._upstream = upstream
        self.host = host
        self.port = port
        self.token = token
        self.token_path = token_path
        self.upstream_url = upstream.base_url if upstream is not None else None
        """Where forwarded requests go; None when the server has no Claude upstream."""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (a moment), close the upstream pool."""
        runner, self._runner = self._runner, None  # type: ignore[assignment]
        if runner is not None:
            await runner.cleanup()
        if self._upstream is not None:
            await self._upstream.close()

    def banner(self) -> list[str]:
        """What a user needs to point a client at the server."""
        upstream = (f"forwarding to Claude at {self.upstream_url}" if self.upstream_url else
                    "no Claude upstream (ANTHROPIC_API_KEY is not set): local answers and the offline curriculum only")
        token_file = shlex.quote(str(self.token_path))
        return [
            f"Shammah serves the Messages API at {self.url} ({upstream})",
            f"token file: {self.token_path}",
            "point a client at it:",
            f"  export ANTHROPIC_BASE_URL={self.url}",
            f"  export ANTHROPIC_API_KEY=\"$(cat {token_file})\"",
            "Ctrl+C stops it.",
        ]


async def start_server(engine: Engine, data_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                       allow_remote: bool = False, upstream_url: str | None = None, api_key: str | None = None,
                       limits: ServeLimits | None = None,
                       on_request: Callable[[ServedRequest], None] | None = None) -> RunningServer:
    """Serve the Messages API for `engine` on the running loop (port 0: any free port).

    The upstream is `upstream_url`, else the SDK's own ANTHROPIC_BASE_URL, else the API; the key
    is `api_key`, else ANTHROPIC_API_KEY. Without a key, or with the offline teacher, there is no
    upstream: only what the engine answers is answered. Raises ServeError (one line).

    A spot check of a local answer asks Claude the client's own request again (its system
    prompt and model), so a verdict, and an answer it corrects, stay in the client's scope.
    """
    problem = bind_problem(host, allow_remote)
    if problem is not None:
        raise ServeError(problem)
    if host.lower() == "localhost":
        host = "127.0.0.1"  # one socket: "localhost" may also resolve to ::1, on another free port
    limits = limits or ServeLimits()
    token, token_path = load_or_create_token(data_dir)
    key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY", "")
    upstream = None
    if key and engine.teacher.kind != "offline":
        base = upstream_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_UPSTREAM
        upstream = Upstream(UpstreamConfig(base, key, limits.connect_timeout_s, limits.read_timeout_s,
                                           limits.max_output_bytes))
    state = ServeState(engine, token, upstream, limits.max_body_bytes, on_request)
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_port = int(runner.addresses[0][1])
    server = RunningServer(runner, host, bound_port, token, token_path, upstream)
    if upstream is not None and _points_at(upstream.base_url, host, bound_port):
        await server.stop()
        raise ServeError(f"ANTHROPIC_BASE_URL ({upstream.base_url}) points at this server; "
                         "unset it where the server runs")
    return server


def _points_at(url: str, host: str, port: int) -> bool:
    try:
        parts = urlsplit(url)
        upstream_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    same_host = parts.hostname == host or (is_loopback(parts.hostname or "") and is_loopback(host))
    return same_host and upstream_port == port


async def serve_in_foreground(engine: Engine, data_dir: Path, host: str, port: int, *, allow_remote: bool,
                              write: Callable[[str], None]) -> None:
    """`shammah-tui serve`: start, say how to connect, report each request, stop on Ctrl+C/SIGTERM."""
    server = await start_server(engine, data_dir, host, port, allow_remote=allow_remote,
                                on_request=lambda served: write(served.line()))
    for line in server.banner():
        write(line)
    # The first question would otherwise wait for the models to load.
    loading = asyncio.ensure_future(engine.load_models())
    loading.add_done_callback(lambda task: task.cancelled() or task.exception())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not on this platform: Ctrl+C still interrupts
            pass
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await server.stop()
        if not loading.done():
            await asyncio.wait([loading], timeout=SHUTDOWN_GRACE_S)
