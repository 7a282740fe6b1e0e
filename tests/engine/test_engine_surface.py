"""The engine's front is what the CLI, the UI and `serve` call; the tools get its teaching side."""

from __future__ import annotations

import inspect

from shammah_tui.engine import Engine
from shammah_tui.engine.teaching_host import EngineTeachingHost
from shammah_tui.tools.host import TeachingHost

#: What only the teaching tools call.
TOOL_ONLY = {"local_only", "learn_pairs", "ask_teacher", "add_labels", "add_paraphrases", "skill_report"}


def _members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_the_teaching_host_has_every_member_the_tools_need() -> None:
    needed = _members(TeachingHost)
    assert TOOL_ONLY <= needed
    assert needed <= _members(EngineTeachingHost)
    for name in needed:
        ours, theirs = getattr(EngineTeachingHost, name), getattr(TeachingHost, name)
        if callable(theirs):
            assert inspect.signature(ours).parameters.keys() == inspect.signature(theirs).parameters.keys(), name


def test_the_engine_front_keeps_none_of_the_tool_only_members() -> None:
    assert not TOOL_ONLY & _members(Engine)
    # what the CLI and the UI call on it stays
    assert {"ask", "queue_counts", "train", "start_training", "cancel_training", "training", "tool_registry",
            "teach", "stats", "subscribe", "load_models", "models_ready", "apply_settings", "close"} <= _members(Engine)
