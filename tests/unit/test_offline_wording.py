"""What the offline teacher says: its refusals and its round lines, in plain words."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import pytest

from shammah_tui import curriculum
from shammah_tui.core.teaching import TeacherError
from shammah_tui.teachers.base import TeachRequest
from shammah_tui.teachers.offline import OfflineTeacher


def refusal_of(query: str) -> str:
    with pytest.raises(TeacherError) as caught:
        asyncio.run(OfflineTeacher().answer(query))
    return caught.value.message


def test_a_refusal_says_in_plain_words_what_it_can_answer():
    text = refusal_of("Why did the Roman Empire fall?")
    assert "unit_conversion" not in text and "curriculum (" not in text and ", capitals," not in text
    assert "unit conversions" in text and f"capitals of {len(curriculum.CAPITALS)} countries" in text
    assert "ANTHROPIC_API_KEY" in text and "\n" not in text


def test_a_capital_it_lacks_is_named_as_such():
    text = refusal_of("What is the capital of Narnia?")
    assert text.startswith("The offline teacher does not know the capital of Narnia.")
    assert "the capitals of" in text  # and says what it does know


class FakeTools:
    """The tool registry as the offline policy sees it: every call succeeds, analysis is flat."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def call(self, name: str, data: dict):
        self.calls.append(name)
        if name == "analyze_model":
            return SimpleNamespace(data={"categories": {f: {"accuracy": 0.25} for f in curriculum.FAMILIES},
                                         "skills": {}, "mean_accuracy": 0.25})
        return SimpleNamespace(data={})


def round_lines(topic: str | None) -> list[str]:
    said: list[str] = []
    asyncio.run(OfflineTeacher().teach(FakeTools(), TeachRequest(topic=topic, rounds=1), said.append))
    return [line.strip() for line in said if line.startswith("Round")]


@pytest.mark.parametrize("topic", [None, "words", "capitals", "leap"])
def test_round_lines_read_as_sentences(topic):
    (line,) = round_lines(topic)
    assert "no skills" not in line and "nothing" not in line and "_" not in line
    bare = " ".join(re.sub(r"\([^)]*\)", "", line).split())
    assert not re.search(r"\b(\w+) (?:\S+ )*and \1\b", bare), line  # "words (…) and words"
    assert line.count("(") == line.count(")") and ") (" not in line


def test_a_round_that_teaches_only_a_family_names_only_it():
    (line,) = round_lines("capitals")
    assert line == f"Round 1: teaching the capitals of {len(curriculum.CAPITALS)} countries (25% accuracy so far)."
