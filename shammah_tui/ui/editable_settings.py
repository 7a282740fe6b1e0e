"""The settings the UI lets you change (palette, `/set`): which, what they mean, how they read.

No Textual here. Values are checked and saved by `shammah_tui.settings.update_settings_file`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shammah_tui.settings import Settings

#: key → what it does (shown in the palette and by `/set`), in the order shown.
EDITABLE: dict[str, str] = {
    "spot_check_rate": "ε: share of local answers the teacher also checks (0–1)",
    "error_bound": "δ: bound on the estimated error of local answers (0–1)",
    "auto_train": "start a training run by itself when a batch of examples is queued",
    "tier_order": "local tiers tried in order (neural, learned, template)",
    "batch_size": "a queue this long starts a training run",
    "step_batch_size": "examples in each training step",
    "steps_per_run": "generator steps per training run (0: as many as its new examples need)",
    "tool_iterations": "teacher turns before a teaching session stops",
}


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
    """The editable settings and their values, as aligned plain text (`/set`)."""
    width = max(map(len, EDITABLE))
    lines = []
    for key, what in EDITABLE.items():
        value = format_value(setting_value(settings, key)) if settings is not None else "?"
        lines.append(f"{key:<{width}}  {value:<24} {what}")
    return "\n".join(lines)
