"""An inter-process lock on a data directory, for work only one process may do at a time.

Two cases. Training: two processes that train on one data dir at once would both take the
same queued examples and each overwrite the other's checkpoints (non-blocking: a second run is
skipped). Opening the database: two first starts on a new data dir would both switch the new
file to WAL and run the migrations, and SQLite answers one of them "database is locked" without
waiting (the switch out of rollback mode can't wait for a lock another connection upgrades too);
opening waits for the lock instead. `fcntl.flock` on a file in the data dir is released by the
kernel when its holder exits, `kill -9` included, so a crash never leaves a lock held.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no inter-process lock (SQLite still guards the database)
    fcntl = None  # type: ignore[assignment]

TRAIN_LOCK_NAME = "train.lock"
#: The open lock is taken on the data directory itself: opening creates no file (a database
#: this version refuses leaves the data dir exactly as it was).
OPEN_LOCK_NAME = None
#: Seconds between two tries while waiting for a lock.
POLL_S = 0.005


class DataDirLock:
    """An exclusive `flock` on `<data dir>/<name>` (or on the data dir itself when `name` is None);
    use `try_acquire` / `acquire` / `release` or `with`."""

    def __init__(self, data_dir: Path, name: str | None = TRAIN_LOCK_NAME) -> None:
        self.path = Path(data_dir) / name if name is not None else Path(data_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if no other holder has it; True when this object now holds it."""
        if self._fd is not None:
            return True
        try:
            if self.path.is_dir():
                fd = os.open(self.path, os.O_RDONLY)
            else:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            try:  # a read-only data dir: an existing lock file still locks
                fd = os.open(self.path, os.O_RDONLY)
            except OSError:  # nothing to lock on; whatever comes next reports the real problem
                return True
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # BlockingIOError: someone else holds it
                os.close(fd)
                return False
        self._fd = fd
        return True

    async def acquire(self, timeout_s: float) -> bool:
        """Wait (without blocking the event loop) until the lock is ours; False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> bool:
        return self.try_acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
