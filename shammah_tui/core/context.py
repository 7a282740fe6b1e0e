"""Which queries depend on the conversation, and the context a query is keyed on.

A standalone question ("What is the capital of France?") means the same in any
conversation, so it is keyed with the empty context and every conversation can
reuse its answer. A follow-up ("and in French?", "why is that?") only makes sense
after what came before, so it is keyed on the conversation so far: two
conversations' "and in French?" never share an answer. When unsure we call a
query a follow-up — that costs a local hit, never a wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shammah_tui.core.text import context_key

_LEADING = re.compile(r"^\s*(and|but|or|so|also|then|what about|how about|same|now|why)\b", re.I)
_ANAPHORA = re.compile(
    r"\b(it|its|it's|that|this|those|these|they|them|their|he|she|him|her|his|one|ones|previous|above)\b",
    re.I,
)
#: How much of the conversation a follow-up is keyed on and given to the generator.
CONTEXT_TURNS = 2
CONTEXT_CHARS = 400


def is_follow_up(query: str) -> bool:
    """True when the query leans on earlier turns."""
    words = re.findall(r"\w+", query)
    if len(words) <= 2:
        return True
    return bool(_LEADING.search(query) or _ANAPHORA.search(query))


def query_context(query: str, turns: Sequence[tuple[str, str]], scope: str = "") -> tuple[str, str]:
    """(context text for the generator, context key for the store) of a query.

    `turns` are the earlier (role, text) pairs of the conversation, oldest first. `scope` is
    what else an answer depends on for every question (a client's system prompt and model):
    a non-empty scope is always part of the key, so two scopes never share an answer.
    """
    follow_up = bool(turns) and is_follow_up(query)
    if not follow_up and not scope:
        return "", ""
    keyed = [("scope", scope)] if scope else []
    if not follow_up:
        return "", context_key(keyed)
    recent = list(turns)[-CONTEXT_TURNS:]
    text = " ".join(t for _, t in recent)[-CONTEXT_CHARS:]
    return text, context_key(keyed + list(turns))
