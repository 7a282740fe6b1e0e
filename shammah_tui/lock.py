"""An inter-process lock on a data directory, for work only one process may do at a time.

Training is the case: two processes that train on one data dir at once would both take the
same queued examples and each overwrite the other's checkpoints. `fcntl.flock` on a file in
the data dir is released by the kernel when its holder exits, `kill -9` included, so a crash
never leaves the lock held. Non-blocking: the caller decides what to do when it is busy.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no inter-process lock (SQLite still guards the database)
    fcntl = None  # type: ignore[assignment]

TRAIN_LOCK_NAME = "train.lock"


class DataDirLock:
    """An exclusive `flock` on `<data dir>/<name>`; use `try_acquire` / `release` or `with`."""

    def __init__(self, data_dir: Path, name: str = TRAIN_LOCK_NAME) -> None:
        self.path = Path(data_dir) / name
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if no other holder has it; True when this object now holds it."""
        if self._fd is not None:
            return True
        try:
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
