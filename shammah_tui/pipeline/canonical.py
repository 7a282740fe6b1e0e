"""One key per question, whatever its wording: what held-out sets, calibration exclusion and the
refusal to train a held-out question compare, so "What is 12*34?", "Compute 34 times 12." and
"What is the product of 12 and 34?" are one question, and "Reverse 'cat'." is "Write cat backwards".

Recognised shapes get a structured key (`arithmetic:12*34` with commuted operands sorted,
`words:reverse:cat`, `leap:1996`); anything else is keyed on its normalized wording with quotes
dropped (`text:who wrote hamlet`).
"""

from __future__ import annotations

import re

from shammah_tui.core.text import normalize_query

_INT = r"(-?\d+)"
_OPS = {"+": "+", "plus": "+", "added to": "+", "-": "-", "minus": "-", "*": "*", "×": "*", "x": "*",
        "times": "*", "multiplied by": "*"}
_INFIX = re.compile(_INT + r"\s*(\+|-|\*|×|x|plus|minus|times|multiplied by|added to)\s*" + _INT + r"\b")
_NAMED = {"sum": "+", "product": "*", "difference": "-"}
_NAMED_RE = re.compile(r"\b(sum|product|difference)\s+(?:of|between)\s+" + _INT + r"\s+and\s+" + _INT + r"\b")
_COMMUTATIVE = frozenset("+*")
_WORD_OPS = (("reverse", re.compile(r"\brevers|\bbackwards?\b")),
             ("uppercase", re.compile(r"\buppercase|\bupper case|\bcapital letters\b|\bcaps\b")),
             ("letters", re.compile(r"\bletters\b|\blength\b|\bhow long\b")))
_QUOTED = re.compile(r"""['"“”‘’]([^\s'"“”‘’]+)['"“”‘’]""")
_AFTER_WORD = re.compile(r"\bword\s+([a-z]+)\b")
_YEAR = re.compile(r"\b(\d{1,4})\b")
_QUOTES = re.compile(r"""['"“”‘’`]""")


def canonical_key(query: str) -> str:
    """The question behind `query`, the same for every wording this module recognises."""
    norm = normalize_query(query)
    return _arithmetic(norm) or _words(query, norm) or _leap(norm) or "text:" + _QUOTES.sub("", norm)


def _arithmetic(norm: str) -> str | None:
    if len(re.findall(r"\d+", norm)) != 2:
        return None  # "2+3*4" or a word problem is not one binary operation
    named = _NAMED_RE.search(norm)
    if named is not None:
        op, a, b = _NAMED[named.group(1)], int(named.group(2)), int(named.group(3))
    else:
        infix = _INFIX.search(norm)
        if infix is None:
            return None
        a, op, b = int(infix.group(1)), _OPS[infix.group(2)], int(infix.group(3))
    if op in _COMMUTATIVE:
        a, b = sorted((a, b))
    return f"arithmetic:{a}{op}{b}"


def _words(query: str, norm: str) -> str | None:
    quoted = _QUOTED.findall(query)
    if len(quoted) == 1:
        word = quoted[0].casefold()
    else:
        after = _AFTER_WORD.search(norm)
        if after is None:
            return None
        word = after.group(1)
    # The operation is read around the word, never in it ("the length of 'reversible'").
    rest = re.sub(r"\b" + re.escape(word) + r"\b", " ", norm)
    kind = next((name for name, pattern in _WORD_OPS if pattern.search(rest)), None)
    return None if kind is None else f"words:{kind}:{word}"


def _leap(norm: str) -> str | None:
    if "leap" not in norm:
        return None
    years = _YEAR.findall(norm)
    return f"leap:{int(years[0])}" if len(years) == 1 else None
