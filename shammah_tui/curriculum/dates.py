"""calendar: days in a month, the day before or after a weekday, month numbers, leap years."""

from __future__ import annotations

import re
from collections.abc import Callable

from shammah_tui.curriculum.base import QuestionKind, TemplatedFamily

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


def calendar_family() -> TemplatedFamily:
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
