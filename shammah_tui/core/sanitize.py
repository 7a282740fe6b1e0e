"""Query input checks: what reaches the pipeline is clean text of a sane size.

Terminal escape sequences and other control characters are removed (they must
never reach a terminal raw, and they are never part of a question); an empty or
oversized query is refused with a message that says why.
"""

from __future__ import annotations

import re
import unicodedata

from shammah_tui.core.kinds import MAX_QUERY_CHARS

# CSI (7- and 8-bit), string sequences (OSC, DCS, SOS, PM, APC: up to BEL or ST), other ESC
# sequences (charset, ESC 7, ESC c …); then any remaining C0/C1 control except tab and newline.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class QueryRejected(ValueError):
    """The query cannot be answered as given; the message says why."""


def strip_controls(text: str) -> str:
    """Text without escape sequences, control characters or lone surrogates."""
    text = _ESCAPES.sub("", text)
    text = _CONTROLS.sub("", text)
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def clean_query(raw: str) -> str:
    """The query, cleaned; raises QueryRejected for empty or oversized input."""
    if not isinstance(raw, str):
        raise QueryRejected("a query must be text")
    if len(raw) > MAX_QUERY_CHARS * 4:
        raise QueryRejected(f"query is {len(raw):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    text = unicodedata.normalize("NFC", strip_controls(raw)).strip()
    if not text:
        raise QueryRejected("empty query: type a question")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRejected(f"query is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    return text
