"""What every task family is made of: questions, their phrasings, and loose matching.

A family can sample an underlying question, phrase it several ways, and solve any phrasing it
generates back to the same answer and key. A key ("capitals:france", "words:reverse:apple")
names the underlying question independent of phrasing; one key always has one answer.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shammah_tui.core.kinds import MAX_RULE_QUERY_CHARS
from shammah_tui.pipeline.text import expand_contractions


@dataclass(frozen=True)
class CurriculumItem:
    """One phrased question with its exact answer."""

    query: str
    answer: str
    family: str
    key: str


@dataclass(frozen=True)
class Solution:
    """What `solve` recognized: the family, the exact answer and the question's key."""

    family: str
    answer: str
    key: str


@dataclass(frozen=True)
class Question:
    """An underlying question, before phrasing: `phrasings` lists its wordings."""

    family: str
    key: str
    answer: str
    phrasings: tuple[str, ...]


class Family:
    """A task family: sample questions, phrase them, solve any phrasing."""

    name: str = "family"

    def sample_question(self, rng: random.Random) -> Question:
        raise NotImplementedError

    def identify(self, query: str) -> Solution | None:
        raise NotImplementedError

    def questions(self) -> list[Question] | None:
        """Every underlying question when the family is finite, else None."""
        return None

    def sample(self, rng: random.Random) -> CurriculumItem:
        """One random question in one random phrasing."""
        question = self.sample_question(rng)
        return phrase(question, rng)

    def solve(self, query: str) -> str | None:
        """The exact answer when `query` is one of this family's questions."""
        solution = self.identify(query)
        return solution.answer if solution else None


def phrase(question: Question, rng: random.Random) -> CurriculumItem:
    """`question` in one of its phrasings, chosen by `rng`."""
    return CurriculumItem(rng.choice(question.phrasings), question.answer, question.family,
                          question.key)


# ---------------------------------------------------------------------------
# Loose matching for the templated families


@functools.lru_cache(maxsize=4096)
def loose(text: str) -> str:
    """Case, punctuation, quotes and spacing removed: what template matching compares.

    NFKC, lower case (not casefold: "ß" must not become "ss" and change a word's
    letters), contractions expanded ("what's" → "what is", "France's" →
    "france"), every non-word character a space, a leading/trailing "please"
    dropped, single spaces.
    """
    text = expand_contractions(unicodedata.normalize("NFKC", text).lower())
    text = re.sub(r"[^\w\s]|_", " ", text)
    text = " ".join(text.split())
    text = re.sub(r"^(?:please )+|(?: please)+$", "", text)
    return text


def slug(text: str) -> str:
    """Key fragment: loose words joined by hyphens."""
    return loose(text).replace(" ", "-")


@dataclass
class QuestionKind:
    """One type of question in a templated family.

    `choices` enumerates the underlying questions as display slot values;
    `resolve` turns the loose slot text matched from a query into
    (key suffix, answer), or None when the slot names nothing it knows.
    """

    name: str
    templates: tuple[str, ...]
    slot_patterns: dict[str, str]
    choices: Callable[[], list[dict[str, str]]]
    resolve: Callable[[dict[str, str]], tuple[str, str] | None]
    _compiled: list[re.Pattern[str]] = field(default_factory=list, repr=False)

    def patterns(self) -> list[re.Pattern[str]]:
        if not self._compiled:
            self._compiled = [self._compile(t) for t in self.templates]
        return self._compiled

    def _compile(self, template: str) -> re.Pattern[str]:
        names = re.findall(r"\{(\w+)\}", template)
        marked = template
        for i, name in enumerate(names):
            marked = marked.replace("{" + name + "}", f" qqslot{i}qq ", 1)
        pattern = re.escape(loose(marked))
        for i, name in enumerate(names):
            pattern = pattern.replace(f"qqslot{i}qq", f"(?P<{name}>{self.slot_patterns[name]})", 1)
        return re.compile(pattern)


class TemplatedFamily(Family):
    """A family whose questions are fixed templates over slot tables."""

    def __init__(self, name: str, kinds: Sequence[QuestionKind]) -> None:
        self.name = name
        self.kinds = list(kinds)
        self._choices = {kind.name: kind.choices() for kind in self.kinds}

    def _question(self, kind: QuestionKind, slots: dict[str, str]) -> Question:
        resolved = kind.resolve({k: loose(v) for k, v in slots.items()})
        if resolved is None:  # a table entry its own resolver rejects: a bug in the tables
            raise ValueError(f"{self.name}/{kind.name}: unresolvable slots {slots}")
        key_suffix, answer = resolved
        phrasings = tuple(dict.fromkeys(t.format(**slots) for t in kind.templates))
        return Question(self.name, f"{self.name}:{key_suffix}", answer, phrasings)

    def sample_question(self, rng: random.Random) -> Question:
        kind = rng.choice(self.kinds)
        return self._question(kind, rng.choice(self._choices[kind.name]))

    def questions(self) -> list[Question]:
        return [self._question(kind, slots) for kind in self.kinds for slots in self._choices[kind.name]]

    def identify(self, query: str) -> Solution | None:
        if len(query) > MAX_RULE_QUERY_CHARS:
            return None
        text = loose(query)
        for kind in self.kinds:
            for pattern in kind.patterns():
                match = pattern.fullmatch(text)
                if match is None:
                    continue
                resolved = kind.resolve(match.groupdict())
                if resolved is not None:
                    return Solution(self.name, resolved[1], f"{self.name}:{resolved[0]}")
        return None


