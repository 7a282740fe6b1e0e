"""The offline teacher's knowledge: task families it answers exactly.

Six families: ``arithmetic`` and ``unit_conversion`` (answered by the template
tier's own solver, so both give identical text), ``words``, ``calendar``,
``capitals`` and ``programming``. Each family can sample an underlying question,
phrase it several ways, and solve any phrasing it generates back to the same
answer and key. A key ("capitals:france", "words:reverse:apple") names the
underlying question independent of phrasing; one key always has one answer.

`stream` draws a realistic query stream over a limited pool of questions with
Zipf-like popularity, exact repeats and paraphrases: the workload on which local
answering should rise above 80% as the system learns.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from shammah_tui.pipeline.templates import (
    CONVERSIONS,
    convert_units,
    evaluate_arithmetic,
    exact_number_text,
)
from shammah_tui.pipeline.text import expand_contractions

#: Queries longer than this are never curriculum questions (checked first).
MAX_QUERY_CHARS = 300


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
        if len(query) > MAX_QUERY_CHARS:
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


# ---------------------------------------------------------------------------
# arithmetic and unit_conversion: through the template tier's solvers

_ARITHMETIC_TEMPLATES = ("What is {e}?", "What's {e}?", "Compute {e}.", "Calculate {e}.",
                         "How much is {e}?", "Evaluate {e}.")
_OP_WORDS = {"+": ("plus",), "-": ("minus",), "*": ("times", "multiplied by"), "/": ("divided by",)}


class ArithmeticFamily(Family):
    """Expressions on small explicit numbers; answers from `evaluate_arithmetic`."""

    name = "arithmetic"

    def sample_question(self, rng: random.Random) -> Question:
        tokens = self._sample_tokens(rng)
        forms = ["".join(tokens), " ".join(tokens)]
        if "(" not in tokens:
            for choice in range(2):
                forms.append(" ".join(_OP_WORDS[t][choice % len(_OP_WORDS[t])] if t in _OP_WORDS else t
                                      for t in tokens))
        phrasings = tuple(dict.fromkeys(t.format(e=f) for t in _ARITHMETIC_TEMPLATES for f in forms))
        result = evaluate_arithmetic(forms[0])
        if result is None:  # the sampler only builds valid expressions
            raise ValueError(f"unsolvable sample {forms[0]!r}")
        return Question(self.name, f"{self.name}:{result.expression}", result.answer, phrasings)

    @staticmethod
    def _sample_tokens(rng: random.Random) -> list[str]:
        shape = rng.random()
        if shape < 0.7:
            op = rng.choice("+-*/")
            return _binary(rng, op)
        # Three operands: precedence or parentheses.
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        a, b, c = (str(rng.randint(1, 20)) for _ in range(3))
        if rng.random() < 0.5:
            return ["(", a, op1, b, ")", op2, c]
        return [a, op1, b, op2, c]

    def identify(self, query: str) -> Solution | None:
        result = evaluate_arithmetic(query)
        if result is None:
            return None
        return Solution(self.name, result.answer, f"{self.name}:{result.expression}")


def _binary(rng: random.Random, op: str) -> list[str]:
    if op == "/":
        divisor = rng.randint(2, 12)
        # Mostly exact quotients; some with decimals to exercise rounding.
        dividend = divisor * rng.randint(1, 20) if rng.random() < 0.8 else rng.randint(1, 100)
        return [str(dividend), "/", str(divisor)]
    if op == "*":
        return [str(rng.randint(2, 30)), "*", str(rng.randint(2, 30))]
    if rng.random() < 0.1:
        return [f"{rng.randint(1, 50)}.{rng.randint(1, 9)}", op, f"{rng.randint(1, 50)}.{rng.randint(1, 9)}"]
    return [str(rng.randint(0, 99)), op, str(rng.randint(0, 99))]


_CONVERSION_TEMPLATES = ("Convert {v} {src} to {dst}.", "How many {dst} is {v} {src}?",
                         "What is {v} {src} in {dst}?", "{v} {src} in {dst}?",
                         "How many {dst} are in {v} {src}?")
#: How queries spell each unit (every spelling is an alias `convert_units` knows).
UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "km": ("km", "kilometers"), "miles": ("miles",), "kg": ("kg", "kilograms"),
    "pounds": ("pounds", "lbs"), "celsius": ("°C", "degrees Celsius", "Celsius"),
    "fahrenheit": ("°F", "degrees Fahrenheit", "Fahrenheit"), "meters": ("meters", "m"),
    "feet": ("feet", "ft"), "liters": ("liters", "L"), "gallons": ("gallons", "US gallons"),
    "cm": ("cm", "centimeters"), "inches": ("inches",),
}


class UnitConversionFamily(Family):
    """Conversions between the template tier's unit pairs; answers from `convert_units`."""

    name = "unit_conversion"
    pairs = tuple(sorted(CONVERSIONS))

    def sample_question(self, rng: random.Random) -> Question:
        source, target = rng.choice(self.pairs)
        if source in ("celsius", "fahrenheit"):
            value = str(rng.randrange(-40, 121, 5))
        elif rng.random() < 0.15:
            value = f"{rng.randint(1, 99)}.5"
        else:
            value = str(rng.randint(2, 500))
        phrasings = tuple(dict.fromkeys(
            t.format(v=value, src=s, dst=d)
            for t in _CONVERSION_TEMPLATES
            for s in UNIT_SPELLINGS[source] for d in UNIT_SPELLINGS[target]))
        conversion = convert_units(phrasings[0])
        if conversion is None:
            raise ValueError(f"unsolvable sample {phrasings[0]!r}")
        return Question(self.name, self._key(conversion.source, conversion.target, conversion.value),
                        conversion.answer, phrasings)

    def _key(self, source: str, target: str, value: Fraction) -> str:
        return f"{self.name}:{source}->{target}:{exact_number_text(value)}"

    def identify(self, query: str) -> Solution | None:
        conversion = convert_units(query)
        if conversion is None:
            return None
        return Solution(self.name, conversion.answer,
                        self._key(conversion.source, conversion.target, conversion.value))


# ---------------------------------------------------------------------------
# words

WORDS: tuple[str, ...] = tuple("""
    apple banana orange grape lemon cherry peach melon mango garden window table chair pencil
    paper rocket planet comet galaxy ocean river mountain valley forest desert island castle
    bridge tower village market doctor farmer artist pilot sailor guitar piano violin trumpet
    drum silver golden purple yellow green black white happy quiet gentle brave clever simple
    strong bright coffee butter cookie bread cheese pizza pasta salad tomato potato carrot onion
    pepper honey sugar winter summer autumn morning evening sunset thunder rainbow cloud storm
    breeze flower tulip daisy tiger lion zebra giraffe monkey rabbit turtle dolphin eagle falcon
    parrot penguin kitten puppy horse camel donkey spider beetle butterfly jacket sweater pocket
    button ribbon candle lantern mirror basket bottle kettle ladder hammer wrench engine wagon
    bicycle airplane harbor anchor compass treasure pirate knight dragon wizard giant puzzle
    riddle secret shadow journey alphabet school library museum kitchen blanket pillow carpet
    marble crystal diamond emerald copper velvet cotton orchestra keyboard laptop printer camera
    umbrella volcano glacier meadow
""".split())
#: "y" is not counted: the answer must not depend on how a word is pronounced.
_VOWELS = frozenset("aeiou")

_WORD_SLOT = {"word": "[a-z]{1,40}"}


def _word_kind(name: str, templates: tuple[str, ...], answer: Callable[[str], str]) -> QuestionKind:
    def resolve(slots: dict[str, str]) -> tuple[str, str] | None:
        word = slots["word"]
        return f"{name}:{word}", answer(word)

    return QuestionKind(name, templates, _WORD_SLOT, lambda: [{"word": w} for w in WORDS], resolve)


def _words_family() -> TemplatedFamily:
    return TemplatedFamily("words", [
        _word_kind("letters", (
            "How many letters are in the word '{word}'?", "How many letters does '{word}' have?",
            "Count the letters in \"{word}\".", "What is the length of the word '{word}'?"),
            lambda w: str(len(w))),
        _word_kind("reverse", (
            "Reverse the word '{word}'.", "What is '{word}' spelled backwards?",
            "What is \"{word}\" reversed?", "Write '{word}' backwards."),
            lambda w: w[::-1]),
        _word_kind("uppercase", (
            "What is '{word}' in uppercase?", "Write '{word}' in capital letters.",
            "Convert \"{word}\" to uppercase.", "Uppercase the word '{word}'."),
            lambda w: w.upper()),
        _word_kind("first_letter", (
            "What is the first letter of '{word}'?", "Which letter does '{word}' start with?",
            "What letter does the word \"{word}\" begin with?"),
            lambda w: w[0]),
        _word_kind("last_letter", (
            "What is the last letter of '{word}'?", "Which letter does '{word}' end with?",
            "What letter does the word \"{word}\" end with?"),
            lambda w: w[-1]),
        _word_kind("vowels", (
            "How many vowels are in '{word}'?", "Count the vowels in the word \"{word}\".",
            "How many vowels does the word '{word}' have?"),
            lambda w: str(sum(ch in _VOWELS for ch in w))),
    ])


# ---------------------------------------------------------------------------
# calendar

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_DAYS = (31, None, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
FEBRUARY_DAYS = "28 (29 in leap years)"
#: Loose month spelling → month index 0..11 (full names, 3-letter abbreviations, "sept").
_MONTH_INDEX = {**{m.lower(): i for i, m in enumerate(MONTHS)},
                **{m.lower()[:3]: i for i, m in enumerate(MONTHS)}, "sept": 8}
_WEEKDAY_INDEX = {**{d.lower(): i for i, d in enumerate(WEEKDAYS)},
                  **{d.lower()[:3]: i for i, d in enumerate(WEEKDAYS)}}
LEAP_YEARS_SAMPLED = range(1900, 2101)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def is_leap_year(year: int) -> bool:
    """Gregorian rule: divisible by 4, except centuries not divisible by 400."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month(slots: dict[str, str]) -> int | None:
    return _MONTH_INDEX.get(slots["month"])


def _resolve_days_in(slots: dict[str, str]) -> tuple[str, str] | None:
    i = _month(slots)
    if i is None:
        return None
    days = _MONTH_DAYS[i]
    return f"days_in:{MONTHS[i].lower()}", FEBRUARY_DAYS if days is None else str(days)


def _resolve_weekday(step: int, name: str) -> Callable[[dict[str, str]], tuple[str, str] | None]:
    def resolve(slots: dict[str, str]) -> tuple[str, str] | None:
        i = _WEEKDAY_INDEX.get(slots["weekday"])
        if i is None:
            return None
        return f"{name}:{WEEKDAYS[i].lower()}", WEEKDAYS[(i + step) % 7]

    return resolve


def _resolve_month_number(slots: dict[str, str]) -> tuple[str, str] | None:
    i = _month(slots)
    return None if i is None else (f"month_number:{MONTHS[i].lower()}", str(i + 1))


def _resolve_month_name(slots: dict[str, str]) -> tuple[str, str] | None:
    raw = slots.get("number") or slots.get("ordinal") or ""
    digits = re.match(r"\d+", raw)
    if digits is None:
        return None
    n = int(digits.group())
    if not 1 <= n <= 12 or ("ordinal" in slots and slots["ordinal"] != _ordinal(n)):
        return None
    return f"month_name:{n}", MONTHS[n - 1]


def _resolve_leap(slots: dict[str, str]) -> tuple[str, str] | None:
    year = int(slots["year"])
    if not 1 <= year <= 9999:
        return None
    return f"leap:{year}", "Yes" if is_leap_year(year) else "No"


def _calendar_family() -> TemplatedFamily:
    month_slot = {"month": "[a-z]+"}
    weekday_slot = {"weekday": "[a-z]+"}
    months = lambda: [{"month": m} for m in MONTHS]  # noqa: E731
    weekdays = lambda: [{"weekday": d} for d in WEEKDAYS]  # noqa: E731
    return TemplatedFamily("calendar", [
        QuestionKind("days_in", (
            "How many days are in {month}?", "How many days does {month} have?",
            "What is the number of days in {month}?", "{month} has how many days?"),
            month_slot, months, _resolve_days_in),
        QuestionKind("after", (
            "What day comes after {weekday}?", "What is the day after {weekday}?",
            "Which day follows {weekday}?", "What day is the day after {weekday}?"),
            weekday_slot, weekdays, _resolve_weekday(1, "after")),
        QuestionKind("before", (
            "What day comes before {weekday}?", "What is the day before {weekday}?",
            "Which day precedes {weekday}?", "What day is the day before {weekday}?"),
            weekday_slot, weekdays, _resolve_weekday(-1, "before")),
        QuestionKind("month_number", (
            "What number is the month of {month}?", "What is the month number of {month}?",
            "Which month number is {month}?", "{month} is month number what?"),
            month_slot, months, _resolve_month_number),
        QuestionKind("month_name", (
            "Which month is month number {number}?", "What is the {ordinal} month?",
            "Name month number {number}.", "Month {number} is which month?"),
            {"number": r"\d{1,2}", "ordinal": r"\d{1,2}(?:st|nd|rd|th)"},
            lambda: [{"number": str(n), "ordinal": _ordinal(n)} for n in range(1, 13)],
            _resolve_month_name),
        QuestionKind("months_in_year", (
            "How many months are in a year?", "How many months does a year have?",
            "What is the number of months in a year?", "A year has how many months?"),
            {}, lambda: [{}], lambda slots: ("months_in_year", "12")),
        QuestionKind("leap", (
            "Is {year} a leap year?", "Was {year} a leap year?", "Is the year {year} a leap year?",
            "Tell me whether {year} is a leap year."),
            {"year": r"\d{1,4}"}, lambda: [{"year": str(y)} for y in LEAP_YEARS_SAMPLED],
            _resolve_leap),
    ])


# ---------------------------------------------------------------------------
# capitals

#: Country as phrased in questions → capital. Countries with contested or
#: recently moved capitals are left out: answers must be exact.
CAPITALS: dict[str, str] = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "the United Kingdom": "London", "Ireland": "Dublin",
    "the Netherlands": "Amsterdam", "Belgium": "Brussels", "Switzerland": "Bern",
    "Austria": "Vienna", "Poland": "Warsaw", "the Czech Republic": "Prague",
    "Slovakia": "Bratislava", "Hungary": "Budapest", "Romania": "Bucharest", "Bulgaria": "Sofia",
    "Greece": "Athens", "Turkey": "Ankara", "Denmark": "Copenhagen", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Iceland": "Reykjavik", "Estonia": "Tallinn",
    "Latvia": "Riga", "Lithuania": "Vilnius", "Ukraine": "Kyiv", "Russia": "Moscow",
    "Serbia": "Belgrade", "Croatia": "Zagreb", "Slovenia": "Ljubljana", "Albania": "Tirana",
    "Belarus": "Minsk", "Cyprus": "Nicosia", "Malta": "Valletta", "Armenia": "Yerevan",
    "Azerbaijan": "Baku", "Egypt": "Cairo", "Morocco": "Rabat", "Algeria": "Algiers",
    "Tunisia": "Tunis", "Nigeria": "Abuja", "Ghana": "Accra", "Kenya": "Nairobi",
    "Ethiopia": "Addis Ababa", "Senegal": "Dakar", "Uganda": "Kampala", "Zimbabwe": "Harare",
    "Zambia": "Lusaka", "Angola": "Luanda", "Rwanda": "Kigali", "Canada": "Ottawa",
    "the United States": "Washington, D.C.", "Mexico": "Mexico City", "Cuba": "Havana",
    "Jamaica": "Kingston", "Brazil": "Brasília", "Argentina": "Buenos Aires", "Chile": "Santiago",
    "Peru": "Lima", "Colombia": "Bogotá", "Venezuela": "Caracas", "Ecuador": "Quito",
    "Uruguay": "Montevideo", "Paraguay": "Asunción", "China": "Beijing", "Japan": "Tokyo",
    "South Korea": "Seoul", "North Korea": "Pyongyang", "India": "New Delhi",
    "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Nepal": "Kathmandu", "Thailand": "Bangkok",
    "Vietnam": "Hanoi", "Cambodia": "Phnom Penh", "Laos": "Vientiane",
    "the Philippines": "Manila", "Malaysia": "Kuala Lumpur", "Mongolia": "Ulaanbaatar",
    "Iran": "Tehran", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh", "Jordan": "Amman",
    "Lebanon": "Beirut", "Syria": "Damascus", "Qatar": "Doha", "Afghanistan": "Kabul",
    "Kazakhstan": "Astana", "Uzbekistan": "Tashkent", "Australia": "Canberra",
    "New Zealand": "Wellington", "Fiji": "Suva",
}
_COUNTRY_ALIASES = {
    "uk": "the United Kingdom", "britain": "the United Kingdom",
    "great britain": "the United Kingdom", "us": "the United States",
    "usa": "the United States", "united states of america": "the United States",
    "america": "the United States", "czechia": "the Czech Republic", "holland": "the Netherlands",
    "turkiye": "Turkey", "viet nam": "Vietnam",
}


def _country_key(name: str) -> str:
    return re.sub(r"^the ", "", loose(name))


_COUNTRY_LOOKUP = {**{_country_key(c): c for c in CAPITALS},
                   **{_country_key(a): c for a, c in _COUNTRY_ALIASES.items()}}


def _resolve_capital(slots: dict[str, str]) -> tuple[str, str] | None:
    country = _COUNTRY_LOOKUP.get(_country_key(slots["country"]))
    if country is None:
        return None
    return _country_key(country).replace(" ", "-"), CAPITALS[country]


def _capitals_family() -> TemplatedFamily:
    return TemplatedFamily("capitals", [QuestionKind(
        "capital", (
            "What is the capital of {country}?", "What's the capital city of {country}?",
            "Which city is the capital of {country}?", "Name the capital of {country}.",
            "Capital of {country}?", "Tell me the capital of {country}."),
        {"country": r"[a-z][a-z ]{0,60}"},
        lambda: [{"country": c} for c in CAPITALS], _resolve_capital)])


# ---------------------------------------------------------------------------
# programming

#: (tool, task as asked) → fixed short answer.
IDIOMS: dict[tuple[str, str], str] = {
    ("python", "reverse a list"): "Use my_list[::-1] or my_list.reverse().",
    ("python", "sort a list"): "Use sorted(my_list) for a new list, or my_list.sort() in place.",
    ("python", "get the length of a list"): "Use len(my_list).",
    ("python", "read a file"): "Use: with open(path) as f: text = f.read()",
    ("python", "write text to a file"): "Open it in write mode: with open(path, \"w\") as f: f.write(text)",
    ("python", "remove duplicates from a list"):
        "Use list(dict.fromkeys(my_list)) to keep the order, or set(my_list).",
    ("python", "merge two dictionaries"): "Use a | b (Python 3.9+) or {**a, **b}.",
    ("python", "check if a key is in a dictionary"): "Use key in my_dict.",
    ("python", "convert a string to an integer"): "Use int(text).",
    ("python", "split a string on commas"): "Use text.split(\",\").",
    ("python", "join a list of strings"): "Use \", \".join(items).",
    ("python", "get today's date"): "Use datetime.date.today() from the datetime module.",
    ("python", "loop over a list with indexes"): "Use for i, item in enumerate(items):",
    ("python", "copy a list"): "Use my_list.copy() or my_list[:].",
    ("python", "check the type of a variable"): "Use type(x), or isinstance(x, SomeType) to test it.",
    ("python", "install a package"): "Run pip install package-name.",
    ("python", "create a virtual environment"): "Run python -m venv .venv.",
    ("python", "parse json"): "Use json.loads(text) from the json module.",
    ("python", "get the last element of a list"): "Use my_list[-1].",
    ("python", "strip whitespace from a string"): "Use text.strip().",
    ("python", "lowercase a string"): "Use text.lower().",
    ("python", "format a float with two decimals"): "Use f\"{x:.2f}\".",
    ("git", "undo the last commit"): "Run git reset --soft HEAD~1 (the changes stay staged).",
    ("git", "create a new branch"): "Run git switch -c branch-name (or git checkout -b branch-name).",
    ("git", "switch branches"): "Run git switch branch-name.",
    ("git", "see the commit history"): "Run git log (git log --oneline for a short view).",
    ("git", "discard changes to a file"): "Run git restore path/to/file.",
    ("git", "stage all changes"): "Run git add -A.",
    ("git", "amend the last commit"): "Run git commit --amend.",
    ("git", "see what changed"): "Run git diff (git diff --staged for staged changes).",
    ("git", "delete a local branch"): "Run git branch -d branch-name.",
    ("git", "stash my changes"): "Run git stash, then git stash pop to bring them back.",
    ("git", "clone a repository"): "Run git clone URL.",
    ("git", "show the current branch"): "Run git branch --show-current.",
    ("shell", "list all files"): "Run ls -la.",
    ("shell", "find files by name"): "Run find . -name \"pattern\".",
    ("shell", "search for text in files"): "Run grep -r \"text\" .",
    ("shell", "count the lines in a file"): "Run wc -l file.",
    ("shell", "check disk usage"): "Run df -h for disks, du -sh DIR for a folder.",
    ("shell", "make a script executable"): "Run chmod +x script.sh.",
    ("shell", "print the working directory"): "Run pwd.",
    ("shell", "create nested directories"): "Run mkdir -p path/to/dir.",
    ("shell", "delete a directory"): "Run rm -r DIR (it cannot be undone).",
    ("shell", "see running processes"): "Run ps aux (or top for a live view).",
    ("shell", "set an environment variable"): "Run export NAME=value.",
    ("shell", "follow the end of a log file"): "Run tail -f file.log.",
}
#: How each tool is named in generated questions.
TOOL_NAMES = {"python": "Python", "git": "git", "shell": "bash"}
_TOOL_ALIASES = {
    "python": "python", "python3": "python", "py": "python", "git": "git",
    "bash": "shell", "shell": "shell", "the shell": "shell", "terminal": "shell",
    "the terminal": "shell", "zsh": "shell", "linux": "shell", "the command line": "shell",
    "command line": "shell", "sh": "shell",
}
_IDIOM_LOOKUP = {(tool, loose(task)): (tool, task) for tool, task in IDIOMS}


def _resolve_idiom(slots: dict[str, str]) -> tuple[str, str] | None:
    tool = _TOOL_ALIASES.get(slots["tool"])
    found = _IDIOM_LOOKUP.get((tool, slots["task"])) if tool else None
    if found is None:
        return None
    return f"{tool}:{slug(found[1])}", IDIOMS[found]


def _programming_family() -> TemplatedFamily:
    tools = "|".join(re.escape(a) for a in sorted(_TOOL_ALIASES, key=len, reverse=True))
    return TemplatedFamily("programming", [QuestionKind(
        "idiom", (
            "How do I {task} in {tool}?", "In {tool}, how do you {task}?",
            "What's the {tool} way to {task}?", "{tool}: how to {task}?",
            "How can I {task} using {tool}?"),
        {"task": "[a-z0-9][a-z0-9 ]{0,80}?", "tool": f"(?:{tools})"},
        lambda: [{"task": task, "tool": TOOL_NAMES[tool]} for tool, task in IDIOMS],
        _resolve_idiom)])


# ---------------------------------------------------------------------------
# The registry and module API

FAMILIES: dict[str, Family] = {
    family.name: family for family in (
        ArithmeticFamily(), UnitConversionFamily(), _words_family(), _calendar_family(),
        _capitals_family(), _programming_family(),
    )
}


def solve(query: str) -> Solution | None:
    """The exact answer when any family recognizes `query`, else None."""
    if not isinstance(query, str) or len(query) > MAX_QUERY_CHARS or not query.strip():
        return None
    for family in FAMILIES.values():
        solution = family.identify(query)
        if solution is not None:
            return solution
    return None


def _families(names: Iterable[str] | None) -> list[Family]:
    chosen = list(FAMILIES) if names is None else list(names)
    unknown = [n for n in chosen if n not in FAMILIES]
    if unknown:
        raise KeyError(f"unknown curriculum families: {unknown}")
    return [FAMILIES[n] for n in chosen]


def sample_items(n: int, seed: int, families: Iterable[str] | None = None) -> list[CurriculumItem]:
    """`n` random items over `families` (all by default), deterministic for a seed."""
    rng = random.Random(seed)
    pool = _families(families)
    return [rng.choice(pool).sample(rng) for _ in range(n)]


def _distinct_questions(family: Family, count: int, rng: random.Random) -> list[Question]:
    """Up to `count` questions with distinct keys (fewer when the family is smaller)."""
    seen: dict[str, Question] = {}
    attempts = 0
    while len(seen) < count and attempts < count * 20:
        attempts += 1
        question = family.sample_question(rng)
        seen.setdefault(question.key, question)
    return list(seen.values())


def held_out_items(family: str, n: int, seed: int) -> list[CurriculumItem]:
    """`n` items of one family for evaluation: deterministic, distinct keys where the
    family has enough, each in a random phrasing. Uses its own random stream, so it
    does not follow `sample_items` or `stream` for the same seed."""
    source = _families([family])[0]
    rng = random.Random(f"held-out:{family}:{seed}")
    distinct = _distinct_questions(source, n, rng)
    questions = list(distinct)
    while distinct and len(questions) < n:  # a small family: reuse keys in other phrasings
        questions.append(rng.choice(distinct))
    return [phrase(q, rng) for q in questions[:n]]


#: Sampled questions per family in `corpus_texts`, on top of every finite question.
CORPUS_SAMPLES_PER_FAMILY = 250


def corpus_texts() -> Iterator[str]:
    """Questions and answers across all families, one text per line, deterministic.

    Every question of the finite families once (in a random phrasing), then
    `CORPUS_SAMPLES_PER_FAMILY` sampled items per family, each as query then
    answer: about five thousand lines to build a tokenizer from.
    """
    for name, family in FAMILIES.items():
        rng = random.Random(f"corpus:{name}")
        for question in family.questions() or []:
            item = phrase(question, rng)
            yield item.query
            yield item.answer
        for _ in range(CORPUS_SAMPLES_PER_FAMILY):
            item = family.sample(rng)
            yield item.query
            yield item.answer


def stream(
    n: int = 500,
    seed: int = 0,
    pool_size_per_family: int = 25,
    repeat_rate: float = 0.2,
    paraphrase_rate: float = 0.3,
    zipf_exponent: float = 0.8,
    families: Iterable[str] | None = None,
) -> list[CurriculumItem]:
    """A realistic query stream over a limited pool of underlying questions.

    The pool holds up to `pool_size_per_family` distinct questions per family,
    shuffled into one popularity ranking (weight 1 / rank^zipf_exponent). Each
    query is, with probability `repeat_rate`, an exact repeat of an earlier query;
    with probability `paraphrase_rate`, an earlier question in a phrasing not used
    yet (when one is left); otherwise a fresh draw from the pool by popularity
    (which may itself hit an earlier question). Earlier questions are picked by
    popularity too. Deterministic for a seed.
    """
    rng = random.Random(seed)
    pool = [q for family in _families(families)
            for q in _distinct_questions(family, pool_size_per_family, rng)]
    rng.shuffle(pool)
    weights = [1.0 / (rank + 1) ** zipf_exponent for rank in range(len(pool))]
    used: dict[int, list[str]] = {}  # pool index → phrasings emitted so far
    items: list[CurriculumItem] = []
    for _ in range(n):
        u = rng.random()
        seen = sorted(used)
        if seen and u < repeat_rate + paraphrase_rate:
            index = rng.choices(seen, [weights[i] for i in seen])[0]
            question = pool[index]
            fresh = [p for p in question.phrasings if p not in used[index]]
            if u < repeat_rate or not fresh:
                query = rng.choice(used[index])
            else:
                query = rng.choice(fresh)
        else:
            index = rng.choices(range(len(pool)), weights)[0]
            question = pool[index]
            query = rng.choice(question.phrasings)
        if query not in used.setdefault(index, []):
            used[index].append(query)
        items.append(CurriculumItem(query, question.answer, question.family, question.key))
    return items
