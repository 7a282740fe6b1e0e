"""The settings the UI lets you change (palette, `/set`): which, what they mean, how they read.

No Textual here. Values are checked and saved by `shammah_tui.settings.update_settings_file`.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from typing import Any

from shammah_tui.settings import Settings, SettingsError

#: key → what it does (shown in the palette and by `/set`), in the order shown.
EDITABLE: dict[str, str] = {
    "spot_check_rate": "ε: share of local answers the teacher also checks (0–1)",
    "error_bound": "δ: bound on the estimated error of local answers (0–1)",
    "auto_train": "start a training run by itself when a batch of examples is queued",
    "tier_order": "local tiers tried in order (default: template, learned, neural; one left out is off)",
    "batch_size": "a queue this long starts a training run",
    "step_batch_size": "examples in each training step",
    "steps_per_run": "generator steps per training run (0: as many as its new examples need)",
    "tool_iterations": "teacher turns before a teaching session stops",
    "claude_model": "the teacher's Claude model (a Messages API model name)",
}

#: Settings read once, at start (the teacher is made with its model then).
AT_NEXT_START = frozenset({"claude_model"})
#: Columns a setting's description is wrapped to, under its name (the chat pane is ~50 wide).
DESCRIPTION_WIDTH = 46


def value_problem(settings: Settings, key: str, text: str) -> str | None:
    """Why `text` cannot be `key`'s value, as one plain line (`must be in [0, 1] (got 2)`); None
    when it can."""
    if key not in EDITABLE:
        return f"unknown setting {key!r} (settings: {', '.join(EDITABLE)})"
    try:
        settings.with_overrides({key: text}, "settings")
    except SettingsError as exc:
        return plain_problem(str(exc), key, text)
    return None


def plain_problem(message: str, key: str, typed: Any) -> str:
    """A SettingsError's message without where it was found and with the value as typed:
    `settings.toml: batch_size must be an integer (got 'x')` → `must be an integer (got x)`."""
    _, found, problem = message.partition(f"{key} ")
    problem = problem if found else message
    return re.sub(r" \(got .*\)$", f" (got {format_value(typed)})", problem)


def format_value(value: Any) -> str:
    """A setting's value as typed back: `0.1`, `true`, `neural, learned, template`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value)
    return str(value)


def setting_value(settings: Settings, key: str) -> Any:
    """The value of the setting named `key` (a field of Settings)."""
    return dataclasses.asdict(settings)[key]


def settings_text(settings: Settings | None) -> str:
    """The editable settings and their values, as aligned plain text (`/set`): each description
    indented under its setting, so that a narrow pane wraps none of it to the first column."""
    width = max(map(len, EDITABLE))
    lines = []
    for key, what in EDITABLE.items():
        value = format_value(setting_value(settings, key)) if settings is not None else "?"
        lines.append(f"{key:<{width}}  {value}")
        lines += textwrap.wrap(what, DESCRIPTION_WIDTH, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)
