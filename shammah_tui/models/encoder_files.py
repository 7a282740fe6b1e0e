"""Where a sentence encoder's files are: a configured folder, or the Hugging Face cache.

Apart from `encoder.py` so that finding the folder costs no torch import (stats and a cold CLI
say which encoder would load without loading it). Nothing here downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_REPO = "sentence-transformers/all-MiniLM-L6-v2"
REQUIRED_FILES = ("config.json", "tokenizer.json", "model.safetensors")



def is_encoder_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding config.json, tokenizer.json and model.safetensors."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in REQUIRED_FILES)


def hf_hub_cache(environ: Mapping[str, str]) -> Path:
    """The Hugging Face hub cache as huggingface_hub resolves it, from ``environ`` only."""
    home = Path(environ.get("HOME") or Path.home())

    def expand(p: str) -> Path:
        return home / p[2:] if p.startswith("~/") else Path(p)

    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if environ.get(var):
            return expand(environ[var])
    if environ.get("HF_HOME"):
        return expand(environ["HF_HOME"]) / "hub"
    xdg = expand(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else home / ".cache"
    return xdg / "huggingface" / "hub"


def locate_encoder(
    configured: str | Path | None,
    environ: Mapping[str, str] | None = None,
    repo: str = DEFAULT_REPO,
) -> Path | None:
    """The encoder folder to load, or None: never downloads.

    Tries the ``configured`` folder first, then the Hugging Face cache
    (``<hub cache>/models--<org>--<name>/snapshots/<rev>``, the revision named by ``refs/main``
    first, then any other snapshot, newest first). A folder counts only if it holds config.json,
    tokenizer.json and model.safetensors.
    """
    environ = os.environ if environ is None else environ
    if configured:
        folder = Path(configured).expanduser()
        if is_encoder_folder(folder):
            return folder
    repo_dir = hf_hub_cache(environ) / ("models--" + repo.replace("/", "--"))
    snapshots = repo_dir / "snapshots"
    try:
        main = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        main = ""
    if main and "/" not in main and is_encoder_folder(snapshots / main):
        return snapshots / main
    try:
        others = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    return next((p for p in others if is_encoder_folder(p)), None)
