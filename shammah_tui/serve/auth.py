"""Who may talk to the server: a local token in the data dir, and loopback unless told otherwise.

Clients never see the real API key: they authenticate with a token Shammah generates
(`serve.token`, mode 0600), sent as `x-api-key` or `Authorization: Bearer`, like an API key.
Named tokens (`shammah-tui serve token add NAME`) let each client be told apart in the request
log and revoked on its own; the store keeps only their hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from shammah_tui.atomic import replace_atomically

TOKEN_NAME = "serve.token"
TOKEN_PREFIX = "shm-"
#: A token read from the file must look like one this module wrote; anything else is replaced.
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def load_or_create_token(data_dir: Path) -> tuple[str, Path]:
    """The server's token and its file; a missing or damaged file gets a new token."""
    path = data_dir / TOKEN_NAME
    token = _read_token(path)
    if token is None:
        token = new_client_token()

        def write(tmp: Path) -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(token + "\n")

        replace_atomically(path, write)
    elif stat.S_IMODE(path.stat().st_mode) != 0o600:
        path.chmod(0o600)  # a copied or restored file may have come back readable by others
    return token, path


def _read_token(path: Path) -> str | None:
    try:
        # O_NOFOLLOW: a symlink planted in the data dir must not make us read another file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError:
        path.unlink(missing_ok=True)  # a symlink or something else odd: replaced by a plain file
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        text = f.read(256).decode("ascii", "replace").strip()
    ok = text.startswith(TOKEN_PREFIX) and len(text) >= 24 and set(text) <= _TOKEN_CHARS
    return text if ok else None


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a request carries: `x-api-key`, else `Authorization: Bearer …`."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def token_matches(presented: str | None, token: str) -> bool:
    if presented is None:
        return False
    # compare_digest: how long a wrong guess takes says nothing about the token.
    return hmac.compare_digest(presented.encode("utf-8", "replace"), token.encode())


def new_client_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a named client token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_problem(host: str, allow_remote: bool) -> str | None:
    """Why binding to `host` is refused (None: it is fine)."""
    if not host.strip():
        return "--host must not be empty"
    if not allow_remote and not is_loopback(host):
        return (f"--host {host} would accept connections from other machines; "
                "add --allow-remote to mean it (clients still need the token)")
    return None
