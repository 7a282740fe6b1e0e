"""Query text every part keys on: the normalized form (the store's exact-lookup key) and the key
of the conversation before a query."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

_SENTENCE_END = "?!.\u2026"
_EDGE_PUNCT = " \t\r\n,;:\"'`\u00bf\u00a1\u201c\u201d\u2018\u2019\u00ab\u00bb"


def normalize_query(text: str) -> str:
    """The canonical form of a query, used as the store's exact-lookup key.

    NFKC, casefold, whitespace collapsed to single spaces, quotes / commas /
    colons and spaces stripped from both ends, then trailing ``? ! . …`` dropped.
    Brackets and operators stay: "(2+3)*4" keeps its meaning.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text)
    previous = None
    while previous != text:
        previous = text
        text = text.strip(_EDGE_PUNCT).rstrip(_SENTENCE_END)
    return text


def context_key(turns: Sequence[tuple[str, str]]) -> str:
    """A stable 16-hex-digit key of the conversation before a query; "" when empty.

    `turns` are (role, text) pairs, oldest first; texts are compared normalized,
    so trailing punctuation or case does not split a context.
    """
    if not turns:
        return ""
    digest = hashlib.sha256()
    for role, text in turns:
        digest.update(role.strip().casefold().encode("utf-8"))
        digest.update(b"\x1f")
        digest.update(normalize_query(text).encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]
