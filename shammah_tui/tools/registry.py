"""The five teaching tools, bound to a `TeachingHost` (the engine).

Each tool module names itself: `NAME`, `DESCRIPTION`, `SCHEMA`, and `make(host) -> ToolSpec`.
What the teacher is told about the tools is read from here, so a tool added to `TOOL_MODULES`
is described to the teacher with no other edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shammah_tui.tools import (
    analyze_model, compare_responses, generate_training_data, query_local_model, train,
)
from shammah_tui.tools.base import ToolEventSink, ToolRecorder, ToolRegistry

if TYPE_CHECKING:
    from shammah_tui.tools.host import TeachingHost

TOOL_MODULES = (query_local_model, generate_training_data, train, compare_responses, analyze_model)


def tool_descriptions() -> list[tuple[str, str]]:
    """(name, description) of each tool, in the registry's order; no host needed."""
    return [(module.NAME, module.DESCRIPTION) for module in TOOL_MODULES]


def build_registry(host: TeachingHost, *, on_event: ToolEventSink | None = None,
                   record: ToolRecorder | None = None) -> ToolRegistry:
    return ToolRegistry([module.make(host) for module in TOOL_MODULES], on_event=on_event, record=record)
