"""The headless core's front: `Engine` and what it is made of (see docs/ARCHITECTURE.md)."""

from shammah_tui.engine.front import Engine
from shammah_tui.engine.query_flow import Query
from shammah_tui.engine.training import TRAINING_ELSEWHERE

__all__ = ["Engine", "Query", "TRAINING_ELSEWHERE"]
