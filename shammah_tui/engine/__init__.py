"""The headless core's front: `Engine` and what it is made of (see docs/ARCHITECTURE.md).

The names below are imported on first use: `engine.open` (settings and the open error) is read
by the CLI before anything is on screen, while the engine itself pulls in numpy and the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shammah_tui.engine.front import Engine
    from shammah_tui.engine.open import EngineOpenError, open_engine
    from shammah_tui.engine.query_flow import Query
    from shammah_tui.engine.training import TRAINING_ELSEWHERE

__all__ = ["Engine", "EngineOpenError", "Query", "TRAINING_ELSEWHERE", "open_engine"]

_HOMES = {"Engine": "front", "EngineOpenError": "open", "open_engine": "open", "Query": "query_flow",
          "TRAINING_ELSEWHERE": "training"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
