"""Reading an upstream answer as it goes by: SSE events split off a byte stream, and a tally of
what the answer held, enough to decide whether it may be learned.

The bytes themselves are relayed unchanged; this module only looks at them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# An event ends at a blank line; servers may end lines with \n, \r\n or \r.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """(complete events, each with its terminator; the unfinished rest)."""
    events: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(buffer):
        events.append(buffer[start:match.end()])
        start = match.end()
    return events, buffer[start:]


def parse_event(raw: bytes) -> tuple[str, Any]:
    """(event name, decoded data) of one event; data that is not JSON comes back as None."""
    name, data_lines = "", []
    for line in raw.decode("utf-8", "replace").splitlines():
        field_name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field_name == "event":
            name = value
        elif field_name == "data":
            data_lines.append(value)
    try:
        data = json.loads("\n".join(data_lines)) if data_lines else None
    except ValueError:
        data = None
    return name, data


@dataclass
class Tally:
    """What an answer held: its text, whether anything but text came, how it stopped."""

    parts: list[str] = field(default_factory=list)
    block_types: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    finished: bool = False
    """message_stop arrived (streaming), or a whole message was read."""
    error: str | None = None
    """The error type of an `event: error`, if one came."""
    unread: bool = False
    """Part of the stream was relayed without being read (an event too large): never learned."""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def learnable_text(self) -> str:
        """The answer's text if it is a plain, finished text answer; else "" (not learned)."""
        plain = self.block_types and all(t == "text" for t in self.block_types)
        if self.finished and self.error is None and not self.unread and self.stop_reason == "end_turn" and plain:
            return self.text
        return ""

    def feed_event(self, name: str, data: Any) -> None:
        """One SSE event of a streamed answer."""
        if not isinstance(data, dict):
            return
        if name == "message_start":
            usage = _dict(_dict(data.get("message")).get("usage"))
            self.input_tokens = _int(usage.get("input_tokens"), self.input_tokens)
            self.output_tokens = _int(usage.get("output_tokens"), self.output_tokens)
        elif name == "content_block_start":
            self.block_types.append(str(_dict(data.get("content_block")).get("type")))
        elif name == "content_block_delta":
            delta = _dict(data.get("delta"))
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                self.parts.append(delta["text"])
            else:
                self.block_types.append(str(delta.get("type")))
        elif name == "message_delta":
            self.stop_reason = _dict(data.get("delta")).get("stop_reason")
            usage = _dict(data.get("usage"))  # cumulative: it replaces, never adds
            self.output_tokens = _int(usage.get("output_tokens"), self.output_tokens)
            self.input_tokens = _int(usage.get("input_tokens"), self.input_tokens)
        elif name == "message_stop":
            self.finished = True
        elif name == "error":
            self.error = str(_dict(data.get("error")).get("type") or "error")

    def feed_message(self, message: Any) -> None:
        """A whole (non-streamed) message."""
        if not isinstance(message, dict) or message.get("type") != "message":
            return
        for block in message.get("content") or []:
            block = _dict(block)
            self.block_types.append(str(block.get("type")))
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                self.parts.append(block["text"])
        self.stop_reason = message.get("stop_reason")
        usage = _dict(message.get("usage"))
        self.input_tokens = _int(usage.get("input_tokens"), 0)
        self.output_tokens = _int(usage.get("output_tokens"), 0)
        self.finished = True


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
