"""Checkpoints: safetensors weights plus the config and tokenizer version, written atomically.

A checkpoint is one ``.safetensors`` file. Its string metadata holds everything needed to
rebuild and trust the model: a format tag, the model kind, the config as JSON and the
version of the tokenizer it was trained with (token ids are meaningless under another).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from shammah_tui.atomic import replace_atomically

FORMAT = "shammah-checkpoint/1"

M = TypeVar("M", bound=nn.Module)


class CheckpointError(Exception):
    """A checkpoint is missing, damaged, or does not fit the model or tokenizer in use."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config_dict: dict,
    tokenizer_version: str,
    extra: dict[str, str] | None = None,
    *,
    kind: str | None = None,
) -> None:
    """Write ``model`` to ``path`` atomically: tmp file in the same dir, fsync, os.replace.

    ``kind`` (default: the model's class name) is checked on load, so a router file can't be
    loaded as a validator. ``extra`` is free-form str -> str metadata returned by the loader.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT,
        "kind": kind or type(model).__name__,
        "config": json.dumps(config_dict, sort_keys=True),
        "tokenizer_version": tokenizer_version,
        "extra": json.dumps(dict(extra or {}), sort_keys=True),
    }
    # save_model keeps tied weights once
    replace_atomically(path, lambda tmp: save_model(model, str(tmp), metadata=metadata))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The raw string metadata of a checkpoint; raises ``CheckpointError`` if unreadable."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"unreadable checkpoint {path}: {_first_line(e)}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not a shammah checkpoint: {path}")
    return meta


def load_checkpoint(
    path: str | Path,
    build: Callable[[dict], M],
    expected_tokenizer_version: str | None,
    *,
    expected_kind: str | None = None,
) -> tuple[M, dict]:
    """Rebuild the model saved at ``path``: ``build(config_dict)`` then load the weights.

    Returns ``(model, info)`` with info = {"kind", "config" (dict), "tokenizer_version",
    "extra" (dict)}. Raises ``CheckpointError`` with a one-line reason when the file is
    missing, truncated or garbage, of another kind, for another tokenizer, or when its
    tensors don't fit the built model.
    """
    path = Path(path)
    meta = read_metadata(path)
    kind = meta.get("kind", "")
    if expected_kind is not None and kind != expected_kind:
        raise CheckpointError(f"checkpoint {path} holds a {kind!r}, expected a {expected_kind!r}")
    tv = meta.get("tokenizer_version", "")
    if expected_tokenizer_version is not None and tv != expected_tokenizer_version:
        raise CheckpointError(
            f"checkpoint {path} was trained with tokenizer {tv!r}, current tokenizer is {expected_tokenizer_version!r}"
        )
    try:
        config = json.loads(meta["config"])
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has bad metadata: {_first_line(e)}") from None
    try:
        model = build(config)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} has an unusable config: {_first_line(e)}") from None
    try:
        missing, unexpected = load_model(model, str(path), strict=True)
    except Exception as e:  # size mismatch, missing keys, data cut short
        raise CheckpointError(f"checkpoint {path} does not fit the model: {_first_line(e)}") from None
    with torch.no_grad():
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise CheckpointError(f"checkpoint {path} contains non-finite weights")
    return model, {"kind": kind, "config": config, "tokenizer_version": tv, "extra": extra}


def _first_line(e: BaseException) -> str:
    """The error as one short line (torch's load_state_dict errors span several)."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return (text or type(e).__name__)[:300]
