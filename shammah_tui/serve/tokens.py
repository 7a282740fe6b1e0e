"""`shammah-tui serve token add NAME | revoke NAME | list`: named client tokens.

A named token is printed once, when it is made; the store keeps only its hash. Requests are
logged with the name of the token they carried; a revoked token is refused from its next request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from shammah_tui.paths import DB_NAME, ensure_data_dir
from shammah_tui.serve.auth import new_client_token, token_digest
from shammah_tui.store import Store, StoreError

USAGE = "usage: shammah-tui serve token add NAME | revoke NAME | list"
#: A name shows in logs and terminals: short, and nothing that could be an escape sequence.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The token in serve.token is logged under this name; no named token may take it.
RESERVED = "default"


class TokenCommandError(Exception):
    """Bad usage (exit 2) or a name that cannot be added or revoked (exit 1): `exit_code` says which."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usage_problem(words: list[str]) -> str | None:
    """Why `serve WORDS…` is not a token command (None: it is one)."""
    if len(words) >= 1 and words[0] != "token":
        return f"serve takes no argument {words[0]!r}; {USAGE}"
    rest = words[1:]
    if rest == ["list"]:
        return None
    if len(rest) == 2 and rest[0] in ("add", "revoke"):
        if not _NAME.fullmatch(rest[1]):
            return "a token name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        if rest[1] == RESERVED:
            return f"{RESERVED!r} is the name of the token in serve.token"
        return None
    return USAGE


async def run_token_command(data_dir: Path, words: list[str]) -> list[str]:
    """The lines to print; raises TokenCommandError. `words` passed usage_problem."""
    action = words[1]
    store = await Store.open(ensure_data_dir(data_dir) / DB_NAME)
    try:
        if action == "list":
            rows = await store.client_tokens()
            if not rows:
                return ["no named tokens (clients use the token in serve.token)"]
            return [f"{name}  made {_when(created)}" + (f"  revoked {_when(revoked)}" if revoked else "")
                    for name, created, revoked in rows]
        name = words[2]
        if action == "add":
            token = new_client_token()
            try:
                await store.add_client_token(name, token_digest(token))
            except StoreError as exc:
                raise TokenCommandError(str(exc), 1) from None
            return [token, f"(token {name!r}: shown only now; give it to the client as its API key)"]
        if not await store.revoke_client_token(name):
            raise TokenCommandError(f"no live token named {name!r}", 1)
        return [f"token {name!r} revoked: its next request is refused"]
    finally:
        await store.close()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
