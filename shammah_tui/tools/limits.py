"""Limits and checks every teaching tool applies to its input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shammah_tui.core.sanitize import QueryRejected
from shammah_tui.tools.base import ToolInputError

if TYPE_CHECKING:
    from shammah_tui.tools.host import TeachingHost
    from shammah_tui.pipeline.local import LocalDecision

#: Largest text field, in UTF-8 bytes.
MAX_TEXT = 8 * 1024
#: Most examples one generate_training_data call may carry.
MAX_EXAMPLES = 200


def text_schema(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description, "minLength": 1, "maxBytes": MAX_TEXT}


async def local_decision(host: TeachingHost, query: str) -> LocalDecision:
    """The local pipeline's decision for a tool's query; a query with nothing left once cleaned
    (only control characters, say) is the caller's input error."""
    try:
        return await host.local_only(query)
    except QueryRejected as exc:
        raise ToolInputError(f"input.query: {exc}") from None
