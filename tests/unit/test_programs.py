"""Programs the pre-trained model writes instead of computing in its head: which program a teacher's
answer reveals, and what a program computes, safely, whatever the model writes."""

from __future__ import annotations

import pytest

from shammah_tui.models import programs
from shammah_tui.models.programs import ProgramError, find, run


@pytest.mark.parametrize(("query", "answer", "program"), [
    ("What is the sum of 647 and 271?", "918", "647 + 271"),
    ("Subtract 12 from 999.", "987", "999 - 12"),
    ("What is 20% of 580?", "116", "20 * 580 / 100"),
    ("What is 647 in binary?", "1010000111", "bin(647)"),
    ("How many minutes are in 7 hours?", "420", "7 * 60"),
    ("How many days are in 3 weeks?", "21", "3 * 7"),
    ("Uppercase the word meadow.", "MEADOW", 'upper("meadow")'),
    ("Reverse the word garden.", "nedrag", 'reverse("garden")'),
    ("How many letters are in 'banana'?", "6.", 'len("banana")'),
    ("How many legs does a spider have?", "8", None),
    ("How many letters are in banana?", "6", None),  # one character from an unquoted word: chance
    ("Compute 0 multiplied by 6.", "0", "0 * 6"),
    ("How many days are in 1 weeks?", "7", None),  # one character from a conversion: chance
    ("How many letters are in 'strawberry'?", "10", 'len("strawberry")'),
    ("Calculate 15 plus 5 times 7.", "50", "15 + 5 * 7"),
    ("What is the capital of France?", "Paris", None),
    ("Is 2024 a leap year?", "Yes", "leap(2024)"),
    ("Was 1900 a leap year?", "No", "leap(1900)"),
    ("Is 2024 or 2025 the leap year?", "Yes", None),  # two numbers: a yes/no fits one by chance
])
def test_the_teachers_answer_reveals_the_program(query, answer, program):
    assert find(query, answer) == (programs.PREFIX + program if program else None)


def test_a_constant_is_tried_only_when_the_question_has_one_number():
    # 50 = 5 * 10 by chance; with two numbers in the question a conversion is not what was asked.
    assert find("Share 5 sweets among 2 children; how many is 50?", "50") is None


def test_a_transform_that_returns_its_argument_is_no_program():
    assert find("Which is longer, cat or elephant?", "elephant") is None


@pytest.mark.parametrize(("program", "value"), [
    ("calc: 647 + 271", "918"), ("calc: 7 / 2", "3.5"), ("calc: 9 // 2", "4"), ("calc: -3 - 4", "-7"),
    ('calc: reverse("abc")', "cba"), ('calc: len("abc")', "3"), ("calc: bin(0)", "0"),
    ("calc: (1 + 2) * 3", "9"), ("1.5 * 2", "3"), ("calc: leap(2000)", "Yes"), ("calc: leap(2100)", "No"),
])
def test_a_program_computes_its_answer(program, value):
    assert run(program) == value


@pytest.mark.parametrize("program", [
    "calc: __import__('os').system('true')", "calc: (1).__class__", "calc: 9 ** 9 ** 9", "calc: 1 / 0",
    "calc: bin(-1)", "calc: leap(3.5)", 'calc: upper(3)', 'calc: "a" + "b"', "calc: 10 ** 2",
    "calc: 999999999 * 999999999",
    "calc: 1 +", "calc: x", "calc: " + "1 + " * 200 + "1", "calc: True + 1", "calc: len('a', 'b')",
])
def test_what_the_language_lacks_is_an_error_not_an_answer(program):
    with pytest.raises(ProgramError):
        run(program)
