"""Where data lives: --data-dir, else SHAMMAH_HOME, else the platform's user data dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

DB_NAME = "shammah.db"
SETTINGS_NAME = "settings.toml"
MODELS_DIR = "models"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory the user asked for, without creating it."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SHAMMAH_HOME")
    if env:
        return Path(env).expanduser()
    return Path(user_data_dir("shammah-tui", appauthor=False))


def ensure_data_dir(path: Path) -> Path:
    """Create the data dir (0700) and its models folder; fix looser permissions."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    (path / MODELS_DIR).mkdir(exist_ok=True, mode=0o700)
    return path
