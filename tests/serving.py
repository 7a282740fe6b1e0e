"""Helpers for the serve tests: an engine without torch, and a whole server (fake upstream,
engine, `start_server`) on a loop of its own thread, for synchronous clients (hypothesis)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from shammah_tui.engine import Engine
from shammah_tui.serve.run import RunningServer, ServeLimits, start_server
from shammah_tui.settings import Settings
from shammah_tui.teachers.base import Teacher
from shammah_tui.teachers.claude import ClaudeTeacher
from tests.fakeapi import FakeMessagesAPI

MODEL = "claude-test-model"
UPSTREAM_KEY = "sk-ant-upstream-canary-7777"
SETTINGS = Settings(teacher="claude", claude_model=MODEL, auto_train=False, spot_check_rate=0.0)
#: Small limits keep the oversized-body and timeout tests fast.
LIMITS = ServeLimits(max_body_bytes=256 * 1024, read_timeout_s=1.0, connect_timeout_s=2.0)

T = TypeVar("T")


async def open_engine(data_dir: Path, teacher: Teacher, settings: Settings = SETTINGS) -> Engine:
    """An engine that answers from templates, the store and the teacher, without loading torch:
    serving is what these tests check, and the models cost seconds to load."""
    return await Engine.open(data_dir, settings, teacher, use_models=False)


def claude(base_url: str) -> ClaudeTeacher:
    return ClaudeTeacher(MODEL, api_key=UPSTREAM_KEY, base_url=base_url, max_retries=0, timeout_s=5.0)


class ServerThread:
    """A fake upstream, an engine and the server, on an event loop in a background thread."""

    def __init__(self, data_dir: Path, limits: ServeLimits = LIMITS) -> None:
        self.data_dir = data_dir
        self.limits = limits
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.fake = FakeMessagesAPI()
        self.engine: Engine | None = None
        self.server: RunningServer | None = None

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.call(self._start)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self._stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
        """Run `fn()` on the server's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return future.result(timeout)

    def run(self, awaitable: Callable[[Engine], Awaitable[T]]) -> T:
        async def go() -> T:
            assert self.engine is not None
            return await awaitable(self.engine)
        return self.call(go)

    async def _start(self) -> None:
        base = await self.fake.start()
        self.engine = await open_engine(self.data_dir, claude(base))
        self.server = await start_server(self.engine, self.data_dir, "127.0.0.1", 0, upstream_url=base,
                                         api_key=UPSTREAM_KEY, limits=self.limits)

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.engine is not None:
            await self.engine.close()
        await self.fake.stop()
