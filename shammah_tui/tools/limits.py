"""Limits every teaching tool applies to its input."""

from __future__ import annotations

from typing import Any

#: Largest text field, in UTF-8 bytes.
MAX_TEXT = 8 * 1024
#: Most examples one generate_training_data call may carry.
MAX_EXAMPLES = 200


def text_schema(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description, "minLength": 1, "maxBytes": MAX_TEXT}
