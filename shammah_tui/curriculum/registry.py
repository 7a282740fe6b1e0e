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


def solve(query: str) -> Solution | None:
    """The exact answer when any family recognizes `query`, else None."""
    if not isinstance(query, str) or len(query) > MAX_RULE_QUERY_CHARS or not query.strip():
        return None
    for family in FAMILIES.values():
        solution = family.identify(query)
        if solution is not None:
            return solution
    return None
