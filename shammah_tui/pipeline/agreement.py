"""Whether a local answer agrees with the teacher's: the ground truth for labels.

Router and validator labels, spot checks and the live "verified" rate all come
from `agreement`, so its rules are a contract; they are listed in its docstring
and pinned by tests/unit/test_agreement.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from shammah_tui.pipeline.templates import UNIT_ALIASES

if TYPE_CHECKING:
    import numpy as np

#: Token-overlap F1 at or above this counts as agreement (free-form answers).
OVERLAP_THRESHOLD = 0.8
#: Sentence-encoder cosine at or above this counts as saying the same in other words, when nothing
#: that changes a meaning differs (measured on paraphrased vs. different answers: same ≥ 0.825,
#: different ≤ 0.70 except one that differs only in a flag, which the code check catches).
MEANING_THRESHOLD = 0.85
#: Relative tolerance for comparing final numbers.
RELATIVE_TOLERANCE = Fraction(1, 10**9)
#: A teacher answer of at most this many words (and no final number) is a short answer.
MAX_SHORT_WORDS = 4
#: A lead-in before a final value ("the answer is", "there are") is at most this long.
MAX_LEAD_WORDS = 6

Method = Literal["exact", "exact_value", "overlap", "meaning", "empty"]
Embed = Callable[[list[str]], "np.ndarray"]


@dataclass(frozen=True)
class Agreement:
    """The verdict: a score in [0, 1], whether it counts as agreeing, and which rule decided."""

    score: float
    agrees: bool
    method: Method


_EDGE_PUNCT = " \t\r\n.,;:!?\"'`()[]{}<>\u2026\u201c\u201d\u2018\u2019\u00ab\u00bb"
_TOKEN = re.compile(
    r"(?P<num>(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w))"
    r"|(?P<word>°?\w+)"
    r"|(?P<eq>=)"
)
# A final value may follow these words directly: "the answer is 82", "there are 5
# letters", "it equals 12", "a total of 7".
_LEAD_ENDS = frozenset({
    "is", "are", "was", "were", "be", "equals", "equal", "makes", "gives", "get", "gets",
    "about", "approximately", "roughly", "around", "answer", "result", "total", "of", "to",
})
_ARTICLES = frozenset({"the", "a", "an"})
#: Words a plain lead-in to a short answer is made of, besides `_LEAD_ENDS` ("it is", "the answer
#: is", "that would be").
_LEAD_WORDS = frozenset({"it", "its", "s", "that", "this", "he", "she", "they", "there", "the", "a", "an",
                         "final", "would", "will", "should", "i", "think", "so", "well"})
#: The words of courtesy sentences ("Sure.", "Good question.", "Hope that helps.", "Let me know if
#: you want more detail."): a closed class of discourse markers and politeness formulas. A sentence
#: made only of them says nothing about the question; no negation, yes/no or number is among them.
_COURTESY_WORDS = frozenset("""
    a absolutely alright an and answer answers any anything are ask asking be briefly can certainly
    could course definitely detail details do else excellent fair feel for free further gist glad go
    good great happy has have help helped helpful helps here hope how i if in info information is it
    know let like me more need nice of ok okay other overview question questions quick s short so
    summary sure thank thanks that the there these this to want well what will wish would you your
""".split())
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+")
_COURTESY_TOKEN = re.compile(r"[^\W\d_]+|\d")
_YES_NO = frozenset({"yes", "no"})


def normalize_answer(text: str) -> str:
    """NFKC, casefold, single spaces, punctuation and spaces stripped from both ends."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text)
    return text.strip(_EDGE_PUNCT)


def without_courtesy(text: str) -> str:
    """The text without its leading and trailing courtesy sentences (`_COURTESY_WORDS` only: "Sure.",
    "In short:", "Hope that helps."), when something else remains; otherwise the text as given.
    Two answers that differ only in how politely they open and close say the same thing."""
    pieces = _SENTENCE_END.split(text.strip())

    def courtesy(piece: str) -> bool:
        words = _COURTESY_TOKEN.findall(unicodedata.normalize("NFKC", piece).casefold())
        return bool(words) and all(word in _COURTESY_WORDS for word in words)

    start, end = 0, len(pieces)
    while start < end and courtesy(pieces[start]):
        start += 1
    while end > start and courtesy(pieces[end - 1]):
        end -= 1
    if start == end or (start, end) == (0, len(pieces)):
        return text
    return " ".join(pieces[start:end])


def _tokens(normalized: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: kind is "num", "word" or "eq"."""
    out: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(normalized):
        kind = match.lastgroup or "word"
        out.append((kind, match.group(kind)))
    return out


def _number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").lstrip("+"))


def _unit(word: str) -> str:
    if word in UNIT_ALIASES:
        return UNIT_ALIASES[word]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _numeric_final(tokens: list[tuple[str, str]]) -> tuple[Fraction, str | None] | None:
    """The final number (and unit word) when the answer is built around one.

    Shapes: ``NUMBER [UNIT]``; ``… = NUMBER [UNIT]``; ``LEAD NUMBER [UNIT]`` where
    LEAD is at most MAX_LEAD_WORDS words ending in a word of `_LEAD_ENDS`.
    """
    if not tokens:
        return None
    tail = tokens
    unit = None
    if len(tail) >= 2 and tail[-1][0] == "word" and tail[-2][0] == "num":
        unit, tail = _unit(tail[-1][1]), tail[:-1]
    if tail[-1][0] != "num":
        return None
    value, lead = _number(tail[-1][1]), tail[:-1]
    if not lead or lead[-1][0] == "eq":
        return value, unit
    if len(lead) <= MAX_LEAD_WORDS and lead[-1][0] == "word" and lead[-1][1] in _LEAD_ENDS:
        return value, unit
    return None


#: A worked answer's last sentence ("… So she buys 21 in all. The answer is 21."), or GSM8K's
#: "#### 21" line: where a long answer states its final value.
_LAST_SENTENCE = re.compile(r"(?:^|(?<=[.!?;:])\s|\n)([^.!?;\n]*)[.!?]?\s*$")
_HASH_FINAL = re.compile(r"(?:^|\s)####\s*(.+?)\s*$")


def _stated_final(normalized: str) -> tuple[Fraction, str | None] | None:
    """The final value of an answer: its whole text's (`_numeric_final`), else its last sentence's
    or its `#### N` line's, when that sentence is built around a final number."""
    found = _numeric_final(_tokens(normalized))
    if found is not None:
        return found
    hashed = _HASH_FINAL.search(normalized)
    if hashed is not None:
        return _numeric_final(_tokens(hashed.group(1)))
    last = _LAST_SENTENCE.search(normalized)
    if last is not None and last.group(1).strip() and last.group(1).strip() != normalized:
        return _numeric_final(_tokens(last.group(1).strip()))
    return None


def _short_forms(tokens: list[tuple[str, str]], leads: str = "any") -> set[tuple[str, ...]]:
    """The answer's words, also without a leading article or a lead-in ("it is Paris"): any lead-in
    of at most MAX_LEAD_WORDS words ending in a `_LEAD_ENDS` word (leads="any"), only those made
    of `_LEAD_WORDS` ("plain"), or none."""
    words = tuple(t for _, t in tokens if t != "=")
    forms = {words}
    if words and words[0] in _ARTICLES:
        forms.add(words[1:])
    for i, word in enumerate(words[:MAX_LEAD_WORDS] if leads != "none" else ()):
        if leads == "plain" and not (word in _LEAD_ENDS or word in _LEAD_WORDS):
            break
        if word in _LEAD_ENDS and i + 1 < len(words):
            rest = words[i + 1:]
            forms.add(rest)
            if rest[0] in _ARTICLES:
                forms.add(rest[1:])
    return {f for f in forms if f}


def _same_short_answer(local: list[tuple[str, str]], teacher: list[tuple[str, str]]) -> bool:
    """One answer is the other's with a lead-in ("Paris" = "The capital is Paris"), or both have
    plain lead-ins ("It is Paris" = "The answer is Paris"). Two different lead-ins to one tail say
    different things: "Paris is the capital" ≠ "Lyon is the capital"."""
    return bool(_short_forms(local, "none") & _short_forms(teacher)
                or _short_forms(local) & _short_forms(teacher, "none")
                or _short_forms(local, "plain") & _short_forms(teacher, "plain"))


def _numbers_equal(a: Fraction, b: Fraction) -> bool:
    return abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def _overlap_f1(local: list[tuple[str, str]], teacher: list[tuple[str, str]]) -> float:
    a = Counter(t for k, t in local if k != "eq")
    b = Counter(t for k, t in teacher if k != "eq")
    common = sum((a & b).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def agreement(local: str, teacher: str, embed: Embed | None = None) -> Agreement:
    """Does the local answer say what the teacher's answer says?

    Leading and trailing courtesy sentences ("Sure.", "Good question.", "Hope that helps.") are
    set aside first when something else remains (`without_courtesy`): they carry no answer, and
    the teacher opens and closes differently every time. Both texts are then normalized:
    Unicode NFKC, casefold, whitespace collapsed, punctuation and spaces stripped from both
    ends (`normalize_answer`). Then the first rule that applies decides:

    1. ``empty`` — the local answer is empty after normalization: score 0, never
       agrees (nor does anything agree with an empty teacher answer).
    2. ``exact`` — both normalize to the same text: score 1, agrees.
    3. ``exact_value`` — the teacher's answer has a *final value*; the verdict
       compares only that value, score 1 or 0:

       - a final **number**, when the teacher's answer is ``NUMBER [UNIT]``,
         ``… = NUMBER [UNIT]`` ("10 km = 6.21 miles") or a lead-in of at most
         six words ending in is/are/was/equals/about/of/… followed by
         ``NUMBER [UNIT]`` ("The answer is 82.", "There are 5 letters") — or
         when the *last sentence* of a longer answer, or its ``#### N`` line, has
         one of those shapes (a worked answer: "First … Then … The answer is 21.").
         The local answer must have a final number of the same shapes, equal within
         1e-9 relative (thousands commas allowed); when both carry a unit word the
         units must match too (aliases and plurals folded: "mile" = "miles" =
         "mi"), so "5 vowels" does not agree with "5 letters", while a bare "6.21"
         agrees with "6.21 miles".
       - a **short answer**, when the teacher's answer has at most four words:
         the local answer agrees when its words equal the teacher's, ignoring a
         leading article and a lead-in ("Paris" = "It is Paris" = "The answer is
         Paris"); two different lead-ins to one tail do not ("Paris is the capital" ≠
         "Lyon is the capital"). A teacher's yes/no ("Yes", "No, it is not") agrees with any
         local answer that starts with the same yes/no word.

       So "The answer is 82." vs "82" agree; "82" vs "83" do not.
    4. Otherwise the two are free text, and agree when they say the same thing and nothing
       that changes a meaning differs between them: a number, a negation, a name, a piece
       of code (`pair_features.stated_differently`). "The same thing" is:

       - ``meaning``, with a sentence encoder (`embed`): cosine ≥ `MEANING_THRESHOLD`.
         The teacher never answers twice alike; the encoder hears the same answer in
         other words, and tells "Paris is the capital of France" from "Lyon is …";
       - ``overlap``, without one: token-overlap F1 between the two normalized word
         multisets ≥ `OVERLAP_THRESHOLD` (0.8).

    Known limits, accepted for exactness elsewhere: case is ignored everywhere
    (so "apple" agrees with "APPLE"), and a yes/no verdict reads only the first
    word.
    """
    local, teacher = without_courtesy(local), without_courtesy(teacher)
    local_norm, teacher_norm = normalize_answer(local), normalize_answer(teacher)
    if not local_norm or not teacher_norm:
        return Agreement(0.0, False, "empty")
    if local_norm == teacher_norm:
        return Agreement(1.0, True, "exact")
    local_tokens, teacher_tokens = _tokens(local_norm), _tokens(teacher_norm)

    teacher_value = _stated_final(teacher_norm)
    if teacher_value is not None:
        local_value = _stated_final(local_norm)
        agrees = (
            local_value is not None
            and _numbers_equal(local_value[0], teacher_value[0])
            and (local_value[1] is None or teacher_value[1] is None or local_value[1] == teacher_value[1])
        )
        return Agreement(1.0 if agrees else 0.0, agrees, "exact_value")

    teacher_words = [t for k, t in teacher_tokens if k != "eq"]
    if 0 < len(teacher_words) <= MAX_SHORT_WORDS:
        if teacher_words[0] in _YES_NO:
            local_words = [t for k, t in local_tokens if k != "eq"]
            agrees = bool(local_words) and local_words[0] == teacher_words[0]
        else:
            agrees = _same_short_answer(local_tokens, teacher_tokens)
        return Agreement(1.0 if agrees else 0.0, agrees, "exact_value")

    from shammah_tui.pipeline.pair_features import stated_differently

    score = _overlap_f1(local_tokens, teacher_tokens)
    same_facts = not stated_differently(local, teacher)
    if embed is None:
        return Agreement(score, score >= OVERLAP_THRESHOLD and same_facts, "overlap")
    # With an encoder the meaning decides, shared words or not: "Paris is the capital of France"
    # and "Lyon is the capital of France" share five words of six and mean different things.
    vectors = embed([local, teacher])
    cosine = float(vectors[0] @ vectors[1])
    return Agreement(cosine, cosine >= MEANING_THRESHOLD and same_facts, "meaning")
