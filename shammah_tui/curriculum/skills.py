"""Skills: task families whose instances the teacher can produce without end and check exactly,
so the generator can learn them and be measured on instances it never saw.

Three skills, in the curriculum's own phrasings (the offline teacher answers every instance with
the same text, `curriculum.solve`):

- `arithmetic`: a + b and a - b on operands up to 3 digits, a * b on operands up to 2 digits;
- `words`: reverse, upper-case, or count the letters of a word (held out: a fixed fifth of the
  vocabulary, never in any training question; training also uses random letter strings);
- `leap`: is YEAR a leap year (centuries, the years 1000-2999, any year 1-9999).

Each skill has a fixed held-out set (a seeded draw, the same on every machine) whose questions are
never produced for training: the generator's accuracy on it is what `analyze_model` reports and
what the neural tier's threshold is calibrated on. Instances carry a `group` (an operation, a word
operation) so a teacher can ask for more of what the generator gets wrong.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

from shammah_tui.curriculum.dates import is_leap_year
from shammah_tui.curriculum.words import WORDS
from shammah_tui.pipeline.canonical import canonical_key

#: Held-out instances per skill (fixed: the same questions on every machine and every run).
HELD_OUT = 100

ARITHMETIC_TEMPLATES = ("What is {e}?", "What's {e}?", "Compute {e}.", "Calculate {e}.",
                        "How much is {e}?", "Evaluate {e}.")
OP_WORDS = {"+": ("plus",), "-": ("minus",), "*": ("times", "multiplied by")}
WORD_TEMPLATES = {
    "letters": ("How many letters are in the word '{word}'?", "How many letters does '{word}' have?",
                "Count the letters in \"{word}\".", "What is the length of the word '{word}'?"),
    "reverse": ("Reverse the word '{word}'.", "What is '{word}' spelled backwards?",
                "What is \"{word}\" reversed?", "Write '{word}' backwards."),
    "uppercase": ("What is '{word}' in uppercase?", "Write '{word}' in capital letters.",
                  "Convert \"{word}\" to uppercase.", "Uppercase the word '{word}'."),
}
WORD_ANSWERS: dict[str, Callable[[str], str]] = {
    "letters": lambda w: str(len(w)), "reverse": lambda w: w[::-1], "uppercase": str.upper}
LEAP_TEMPLATES = ("Is {year} a leap year?", "Was {year} a leap year?", "Is the year {year} a leap year?",
                  "Tell me whether {year} is a leap year.")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class SkillInstance:
    """One phrased question of a skill, its exact answer, and what it is an instance of."""

    query: str
    answer: str
    key: str
    """The underlying question, whatever the phrasing ("arithmetic:347+589")."""
    skill: str
    group: str
    """What the teacher can ask for more of: "+", "*", "reverse", "leap" …"""


Key = tuple[object, ...]


class Skill:
    """Samples instances; a held-out instance's key is never produced for training."""

    name = "skill"
    groups: tuple[str, ...] = ()

    def sample_key(self, rng: random.Random, held_out: bool, group: str | None = None) -> Key:
        """A question; with `group` None the group is uniform (the held-out distribution)."""
        raise NotImplementedError

    def instance(self, key: Key, rng: random.Random) -> SkillInstance:
        raise NotImplementedError

    def held_out(self, n: int = HELD_OUT) -> list[SkillInstance]:
        """The fixed held-out set: `n` distinct questions, the same on every machine."""
        rng = random.Random(f"skills-held-out:{self.name}")
        seen: dict[Key, SkillInstance] = {}
        while len(seen) < n:
            key = self.sample_key(rng, held_out=True)
            if key not in seen:
                seen[key] = self.instance(key, rng)
        return list(seen.values())

    def training(self, n: int, seed: str, groups: Iterable[str] | None = None,
                 weights: Iterable[float] | None = None) -> list[SkillInstance]:
        """`n` distinct training instances (never a held-out question), the groups drawn by `weights`."""
        rng = random.Random(f"skills:{self.name}:{seed}")
        chosen = list(groups) if groups is not None else list(self.groups)
        w = list(weights) if weights is not None else [1.0] * len(chosen)
        never = held_out_canonical_keys()
        out: dict[str, SkillInstance] = {}
        attempts = 0
        while len(out) < n and attempts < n * 50:
            attempts += 1
            group = rng.choices(chosen, w)[0]
            item = self.instance(self.sample_key(rng, held_out=False, group=group), rng)
            if canonical_key(item.query) not in never:  # a commuted twin is the same question
                out.setdefault(item.key, item)
        return list(out.values())


def _operand(rng: random.Random, max_digits: int) -> int:
    """Number of digits uniform in 1..max_digits, then the value uniform among those."""
    digits = rng.randint(1, max_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits - 1)


class Arithmetic(Skill):
    """a + b, a - b (operands 0..999), a * b (operands 0..99)."""

    name = "arithmetic"
    groups = ("+", "-", "*")

    def sample_key(self, rng: random.Random, held_out: bool, group: str | None = None) -> Key:
        op = group or rng.choice("+-*")
        digits = 2 if op == "*" else 3
        return (_operand(rng, digits), op, _operand(rng, digits))

    def instance(self, key: Key, rng: random.Random) -> SkillInstance:
        a, op, b = key
        assert isinstance(a, int) and isinstance(b, int) and isinstance(op, str)
        forms = [f"{a}{op}{b}", f"{a} {op} {b}"] + [f"{a} {word} {b}" for word in OP_WORDS[op]]
        query = rng.choice(ARITHMETIC_TEMPLATES).format(e=rng.choice(forms))
        answer = str(a + b if op == "+" else a - b if op == "-" else a * b)
        return SkillInstance(query, answer, f"arithmetic:{a}{op}{b}", self.name, op)


@cache
def _lexicon() -> tuple[str, ...]:
    """Lower-case words of 3-10 letters: the curriculum's WORDS and the Python docs' vocabulary."""
    words = set(WORDS)
    try:
        from pydoc_data.topics import topics

        for text in topics.values():
            words.update(re.findall(r"\b[a-z]+\b", text))
    except ImportError:  # some distributions split the docs out: the curriculum's words remain
        pass
    return tuple(sorted(w for w in words if 3 <= len(w) <= 10))


class Words(Skill):
    """Reverse, upper-case or count the letters of a word. Held out: a fixed fifth of the lexicon."""

    name = "words"
    groups = tuple(sorted(WORD_TEMPLATES))

    def __init__(self) -> None:
        shuffled = list(_lexicon())
        random.Random("skills-held-out-words").shuffle(shuffled)
        self.held_words = sorted(shuffled[: len(shuffled) // 5])
        self._held = frozenset(self.held_words)
        self.train_words = [w for w in _lexicon() if w not in self._held]

    def sample_key(self, rng: random.Random, held_out: bool, group: str | None = None) -> Key:
        kind = group or rng.choice(self.groups)
        if held_out:
            return kind, rng.choice(self.held_words)
        while True:
            word = (rng.choice(self.train_words) if rng.random() < 0.5
                    else "".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 10))))
            if word not in self._held:
                return kind, word

    def instance(self, key: Key, rng: random.Random) -> SkillInstance:
        kind, word = key
        assert isinstance(kind, str) and isinstance(word, str)
        return SkillInstance(rng.choice(WORD_TEMPLATES[kind]).format(word=word), WORD_ANSWERS[kind](word),
                             f"words:{kind}:{word}", self.name, kind)


class LeapYears(Skill):
    """Is YEAR a leap year? 15 % centuries, 60 % 1000-2999, 25 % 1-9999."""

    name = "leap"
    groups = ("leap",)

    def sample_key(self, rng: random.Random, held_out: bool, group: str | None = None) -> Key:
        u = rng.random()
        year = (rng.randint(1, 99) * 100 if u < 0.15 else rng.randint(1000, 2999) if u < 0.75
                else rng.randint(1, 9999))
        return (year,)

    def instance(self, key: Key, rng: random.Random) -> SkillInstance:
        (year,) = key
        assert isinstance(year, int)
        return SkillInstance(rng.choice(LEAP_TEMPLATES).format(year=year), "Yes" if is_leap_year(year) else "No",
                             f"leap:{year}", self.name, "leap")


SKILLS: dict[str, Skill] = {skill.name: skill for skill in (Arithmetic(), Words(), LeapYears())}


@cache
def _held_out_keys(name: str) -> frozenset[str]:
    return frozenset(item.key for item in SKILLS[name].held_out())


def held_out_queries() -> frozenset[str]:
    """Every held-out question's text as phrased (a teacher's examples are checked against it)."""
    return frozenset(item.query for skill in SKILLS.values() for item in skill.held_out())


@cache
def held_out_canonical_keys() -> frozenset[str]:
    """Every held-out question's canonical key: no wording of one is ever trained on."""
    return frozenset(canonical_key(item.query) for skill in SKILLS.values() for item in skill.held_out())


def is_held_out_question(query: str) -> bool:
    """True for any wording of a held-out question (commuted operands, quotes, other phrasings)."""
    return canonical_key(query) in held_out_canonical_keys()


def is_held_out(key: str) -> bool:
    """True for the key of a held-out question of any skill."""
    skill = key.split(":", 1)[0]
    return skill in SKILLS and key in _held_out_keys(skill)
