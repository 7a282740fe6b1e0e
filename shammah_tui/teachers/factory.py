"""Pick the teacher the settings ask for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shammah_tui.settings import Settings
from shammah_tui.teachers.base import Teacher


def make_teacher(settings: Settings) -> Teacher:
    """Claude when asked for (or `auto` with a key set); the offline curriculum otherwise."""
    name = default_teacher_name() if settings.teacher == "auto" else settings.teacher
    if name == "claude":
        from shammah_tui.teachers.claude import ClaudeTeacher

        return ClaudeTeacher(settings.claude_model, api_key=os.environ.get("ANTHROPIC_API_KEY"))
    from shammah_tui.teachers.offline import OfflineTeacher

    return OfflineTeacher(seed=settings.seed)


def default_teacher_name(environ: Mapping[str, str] | None = None) -> str:
    """`claude` when a key is set, else `offline` (used when nothing else chose)."""
    env = os.environ if environ is None else environ
    return "claude" if env.get("ANTHROPIC_API_KEY") else "offline"


def missing_key(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the teacher the settings ask for cannot be used (Claude asked for without a key), else None."""
    env = os.environ if environ is None else environ
    if settings.teacher == "claude" and not env.get("ANTHROPIC_API_KEY"):
        return ("the Claude teacher needs ANTHROPIC_API_KEY in the environment; set it, or use "
                "--teacher offline (the built-in curriculum)")
    return None
