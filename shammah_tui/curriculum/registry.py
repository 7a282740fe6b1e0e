"""The six families by name, and `solve`: which family, if any, knows the answer to a query."""

from __future__ import annotations

from shammah_tui.curriculum.arithmetic import ArithmeticFamily
from shammah_tui.curriculum.base import Family, Solution
from shammah_tui.curriculum.capitals import capitals_family
from shammah_tui.curriculum.dates import calendar_family
from shammah_tui.curriculum.programming import programming_family
from shammah_tui.curriculum.units import UnitConversionFamily
from shammah_tui.curriculum.words import words_family
from shammah_tui.core.kinds import MAX_RULE_QUERY_CHARS

FAMILIES: dict[str, Family] = {
    family.name: family for family in (
        ArithmeticFamily(), UnitConversionFamily(), words_family(), calendar_family(),
        capitals_family(), programming_family(),
    )
}


#: Each family as a person would name it (the family names are identifiers, not words).
PLAIN_NAMES: dict[str, str] = {
    "arithmetic": "arithmetic on the numbers given",
    "unit_conversion": "unit conversions",
    "words": "questions about words (letters, spelling backwards, upper case)",
    "calendar": "calendar questions (days in a month, weekdays, leap years)",
    "capitals": "the capitals of {countries} countries",
    "programming": "common Python, git and shell idioms",
}


def plain_name(family: str, short: bool = False) -> str:
    """`family` in plain words (the identifier itself when it has none); `short`: without the
    examples in parentheses."""
    from shammah_tui.curriculum.capitals import CAPITALS

    name = PLAIN_NAMES.get(family, family.replace("_", " ")).format(countries=len(CAPITALS))
    return name.split(" (")[0] if short else name


def solve(query: str) -> Solution | None:
    """The exact answer when any family recognizes `query`, else None."""
    if not isinstance(query, str) or len(query) > MAX_RULE_QUERY_CHARS or not query.strip():
        return None
    for family in FAMILIES.values():
        solution = family.identify(query)
        if solution is not None:
            return solution
    return None
