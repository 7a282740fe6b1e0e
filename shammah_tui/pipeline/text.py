"""Query text: similarity for the learned-answer store (normalization and context keys are
`core.text`'s).

`query_similarity` is built for precision: the learned store must never serve the
answer of a *different* question that happens to share most words ("capital of
France" vs "capital of Spain", "12 + 7" vs "12 + 8"). It compares the *content*
of two queries — every token that is not a question filler — and scores below
`SIMILARITY_THRESHOLD` whenever the content differs at all. Light rephrasings
(contractions, case, punctuation, "how many days does June have" vs "how many
days are in June") keep the same content and score ≥ the threshold.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from shammah_tui.core.text import normalize_query
from shammah_tui.pipeline.templates import UNIT_ALIASES

#: A stored answer is served for a new query at or above this similarity.
SIMILARITY_THRESHOLD = 0.9

# ---------------------------------------------------------------------------
# Similarity

_CONTRACTIONS = [
    (r"\bwhat's\b", "what is"), (r"\bwhats\b", "what is"), (r"\bwhere's\b", "where is"),
    (r"\bwho's\b", "who is"), (r"\bhow's\b", "how is"), (r"\bwhen's\b", "when is"),
    (r"\bthat's\b", "that is"), (r"\bthere's\b", "there is"), (r"\bit's\b", "it is"),
    (r"\bhere's\b", "here is"), (r"\blet's\b", "let us"), (r"\bcan't\b", "cannot"),
    (r"\bwon't\b", "will not"), (r"\bshan't\b", "shall not"), (r"\bi'm\b", "i am"),
    (r"\b(\w+)n't\b", r"\1 not"), (r"\b(\w+)'re\b", r"\1 are"), (r"\b(\w+)'ve\b", r"\1 have"),
    (r"\b(\w+)'ll\b", r"\1 will"), (r"\b(\w+)'d\b", r"\1 would"),
    (r"(\w)'s\b", r"\1"),  # possessive: "France's capital" → "France capital"
]
_CONTRACTION_RES = [(re.compile(p), r) for p, r in _CONTRACTIONS]


def expand_contractions(text: str) -> str:
    """what's → what is, don't → do not, France's → France (lower-case input)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    for pattern, replacement in _CONTRACTION_RES:
        text = pattern.sub(replacement, text)
    return text


# Multi-word phrases folded into one token before splitting; the "howto"/"howmany"
# tokens are fillers, the others canonical content.
_PHRASES = [(re.compile(p), r) for p, r in (
    (r"\bhow (?:many|much)\b", " howmany "),
    (r"\bhow (?:do|can|could|would|should|shall) (?:i|you|we|one)\b", " howto "),
    (r"\bhow to\b", " howto "),
    (r"\bmultiplied by\b", " * "), (r"\bdivided by\b", " / "),
    (r"\b(?:upper ?case|capital letters|all caps|block letters)\b", " uppercase "),
    (r"\blower ?case\b", " lowercase "),
    (r"\b(?:starts?|begins?|starting|beginning) with\b", " first "),
    (r"\b(?:ends?|ending) with\b", " last "),
    (r"\b(?:spelled|spelt|written) (?:backwards?|in reverse)\b", " reverse "),
    (r"\b(?:backwards?|in reverse|reversed)\b", " reverse "),
    (r"°\s*f\b", " fahrenheit "), (r"°\s*c\b", " celsius "),
    (r"(\d)(?:st|nd|rd|th)\b", r"\1"),
    (r"(\d),(\d{3})\b", r"\1\2"),
)]

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[-+*/×÷()%^=<>]")

#: Token spellings folded together (plurals and synonyms of question vocabulary).
_CANON = {
    "plus": "+", "minus": "-", "times": "*", "×": "*", "÷": "/",
    "letters": "letter", "characters": "letter", "chars": "letter", "character": "letter",
    "length": "letter", "vowels": "vowel", "days": "day", "months": "month", "years": "year",
    "weeks": "week", "hours": "hour", "minutes": "minute", "seconds": "second",
    "follows": "after", "follow": "after", "following": "after", "next": "after",
    "precedes": "before", "precede": "before", "preceding": "before",
    "reversing": "reverse", "reverses": "reverse",
    "capitals": "capital",
}
_UNITS = {alias: name for alias, name in UNIT_ALIASES.items() if " " not in alias}
# Short unit spellings are units only where a unit is expected: right after a
# number ("5 m", "100 f") or a conversion word ("in m", "how many L").
_SHORT_UNITS = {a for a in _UNITS if len(a) <= 2}
_UNIT_SLOT_WORDS = frozenset({"in", "to", "into", "howmany"})

#: Question filler: words that carry no content of their own. Deliberately small —
#: who/where/when/why/how, negations and prepositions with meaning
#: (after, before, from, without …) are content.
FILLERS = frozenset("""
    what which is are was were be been being the a an of in on at to into for by with
    me please tell can could would will you i do does did get give find show name
    howmany howmuch howto number count compute calculate evaluate solve convert change
    turn way there have has had it this that word city value result equal equals =
    write comes come exactly just kindly hey hi so and if whether using use my
    answer question know let us we quick quickly again one some any degree degrees
""".split())

_DIRECTION_WORDS = frozenset({"to", "into"})
#: A negation on one side only flips the question ("is 2024 a leap year" vs "… not …").
_NEGATIONS = frozenset({"not", "no", "never", "cannot", "nor", "without"})


def _tokens(text: str) -> list[str]:
    text = expand_contractions(unicodedata.normalize("NFKC", text).casefold())
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    raw = _TOKEN.findall(text)
    tokens: list[str] = []
    for i, token in enumerate(raw):
        token = _CANON.get(token, token)
        after_number = i > 0 and raw[i - 1][0].isdigit()
        after_unit_slot = after_number or (i > 0 and raw[i - 1] in _UNIT_SLOT_WORDS)
        if token == "x" and after_number and i + 1 < len(raw) and raw[i + 1][0].isdigit():
            token = "*"
        elif token in _UNITS and (token not in _SHORT_UNITS or after_unit_slot):
            token = "unit:" + _UNITS[token]
        tokens.append(token)
    return tokens


_ORDERED_SYMBOLS = frozenset("+-*/()%^<>")
#: A quoted word; the closing quote may be missing at the end (normalize_query strips edge quotes).
_QUOTED_WORD = re.compile(r"""(?:^|(?<=[\s(]))['"“‘]([^\W_]+)(?:['"”’]|$)""")


def _is_ordered(token: str) -> bool:
    """Numbers and operators: their order changes the meaning (12 - 7 vs 7 - 12)."""
    return token[0].isdigit() or token in _ORDERED_SYMBOLS


@functools.lru_cache(maxsize=16384)
def _analyse(text: str) -> tuple[frozenset[str], frozenset[str], frozenset[str], tuple[str, ...]]:
    """(content, fillers, direction targets, ordered sequence) of a query.

    A direction target is the first content token after "to"/"into" that follows
    a content token ("convert a string to an integer", "10 km to miles"), or a
    unit named after "in"/"how many" ("10 km in miles", "how many miles is …").
    """
    tokens = _tokens(text)
    # A quoted word is what the question is about ("What is 'for' reversed?"), even when it is a
    # filler elsewhere: it is content, and never the same content as the word unquoted.
    content: set[str] = {"quoted:" + _CANON.get(w, w) for w in _QUOTED_WORD.findall(text.casefold())}
    fillers: set[str] = set()
    targets: set[str] = set()
    ordered: list[str] = []
    pending_direction = False  # a "to"/"into" after content: the next content is a target
    pending_unit = False  # "in"/"to"/"how many": the next content, if a unit, is a target
    previous_content = False
    for token in tokens:
        if token in FILLERS:
            fillers.add(token)
            if token in _DIRECTION_WORDS and previous_content:
                pending_direction = True
            if token in _UNIT_SLOT_WORDS:
                pending_unit = True
            previous_content = False
            continue
        content.add(token)
        if _is_ordered(token):
            ordered.append(token)
        if pending_direction or (pending_unit and token.startswith("unit:")):
            targets.add(token)
        pending_direction = pending_unit = False
        previous_content = True
    return frozenset(content), frozenset(fillers), frozenset(targets), tuple(ordered)


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def query_similarity(a: str, b: str) -> float:
    """How likely two queries ask the same question, in [0, 1].

    - content tokens (everything not in `FILLERS`, after contraction expansion,
      plural/synonym folding and unit aliases) are compared as sets:
      ``score = 0.92 · dice(content)² + 0.08 · dice(fillers)``, so the same
      content scores ≥ 0.92 whatever the fillers;
    - any content token on one side only caps the score at 0.85 (below the
      threshold): a different word is a different question;
    - different numbers halve it; the same numbers/operators in another order
      cap it at 0.6 ("12 - 7" vs "7 - 12");
    - both sides naming a direction and disagreeing ("km to miles" vs "miles to
      km", "string to integer" vs "integer to string") cap it at 0.6;
    - a negation on one side only ("not", "never", …) caps it at 0.5.

    Queries with no content at all compare by their fillers alone.
    """
    if a == b:
        return 1.0
    content_a, fillers_a, targets_a, ordered_a = _analyse(a)
    content_b, fillers_b, targets_b, ordered_b = _analyse(b)
    if not content_a and not content_b:
        if not fillers_a and not fillers_b:
            return 1.0 if normalize_query(a) == normalize_query(b) else 0.0
        return _dice(fillers_a, fillers_b)
    score = 0.92 * _dice(content_a, content_b) ** 2 + 0.08 * _dice(fillers_a, fillers_b)
    if content_a != content_b:
        score = min(score, 0.85)
    numbers_a = {t for t in content_a if t[0].isdigit()}
    numbers_b = {t for t in content_b if t[0].isdigit()}
    if numbers_a != numbers_b:
        score *= 0.5
    elif ordered_a != ordered_b:
        score = min(score, 0.6)
    if targets_a and targets_b and targets_a != targets_b:
        score = min(score, 0.6)
    if content_a & _NEGATIONS != content_b & _NEGATIONS:
        score = min(score, 0.5)
    return max(0.0, min(1.0, score))
