"""The template tier: exact answers for greetings, thanks, arithmetic and unit conversions."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shammah_tui.pipeline.templates import (
    GREETING_REPLY,
    MAX_RESULT,
    THANKS_REPLY,
    TemplateAnswer,
    convert_units,
    evaluate_arithmetic,
    format_number,
    template_answer,
)


@pytest.mark.parametrize("value, text", [
    (82, "82"), (6.0, "6"), (Fraction(12, 2), "6"), (6.2137, "6.21"), (2.5, "2.5"),
    (Fraction(1, 3), "0.33"), (Fraction(2, 3), "0.67"), (-0.001, "0"), (0.005, "0.01"),
    (-2.345, "-2.35"), (1e15, "1000000000000000"), (0, "0"), (-7, "-7"), (2.999, "3"),
])
def test_format_number(value: object, text: str) -> None:
    assert format_number(value) == text  # type: ignore[arg-type]


def test_format_number_rejects_bool_and_infinity() -> None:
    with pytest.raises(TypeError):
        format_number(True)
    with pytest.raises(ValueError):
        format_number(float("inf"))


# --- arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize("query, answer", [
    ("what is 3 + 4?", "7"),
    ("What is 3+4", "7"),
    ("compute 12*7", "84"),
    ("Compute 12 * 7.", "84"),
    ("calculate (2+3)*4", "20"),
    ("what's 17 times 23", "391"),
    ("What’s 17 times 23?", "391"),
    ("whats 10 minus 4", "6"),
    ("how much is 6 plus 7?", "13"),
    ("evaluate 9 divided by 3", "3"),
    ("what is 6 multiplied by 7", "42"),
    ("what does 6/4 equal", "1.5"),
    ("3 x 4", "12"),
    ("12 + 7 =", "19"),
    ("12 ÷ 4", "3"),
    ("5 × 5", "25"),
    ("please compute 2 + 2", "4"),
    ("what is 1,000 + 1", "1001"),
    ("WHAT IS 3 + 4 ?", "7"),
])
def test_arithmetic_phrasings(query: str, answer: str) -> None:
    assert template_answer(query) == TemplateAnswer(answer, "arithmetic")


@pytest.mark.parametrize("expression, answer", [
    ("2 + 3 * 4", "14"),       # * before +
    ("2 * 3 + 4", "10"),
    ("10 - 4 - 3", "3"),       # left associative
    ("100 / 10 / 5", "2"),
    ("2 - (3 - 4)", "3"),      # parentheses
    ("(2 + 3) * (4 - 1)", "15"),
    ("((1 + 1))", "2"),
    ("-3 + 5", "2"),           # unary minus
    ("2 * -3", "-6"),
    ("-(2 + 3) * 2", "-10"),
    ("3 - -4", "7"),
    ("1.5 * 4", "6"),          # decimals
    ("0.1 + 0.2", "0.3"),
    (".5 + .25", "0.75"),
    ("7 / 3", "2.33"),
    ("2 / 3", "0.67"),
    ("1 / 8", "0.13"),
])
def test_arithmetic_precedence_parentheses_and_decimals(expression: str, answer: str) -> None:
    result = template_answer(f"what is {expression}?")
    assert result is not None and result.answer == answer


def test_arithmetic_canonical_expression() -> None:
    a = evaluate_arithmetic("What's 17 times 23?")
    b = evaluate_arithmetic("compute 17*23")
    assert a is not None and b is not None
    assert a.expression == b.expression == "17*23"
    assert a.value == 391


@pytest.mark.parametrize("query", ["1/0", "what is 5 / 0", "5/(3-3)", "what is 7 divided by 0"])
def test_division_by_zero_is_not_a_template_answer(query: str) -> None:
    assert template_answer(query) is None


@pytest.mark.parametrize("query", [
    "what is " + "9" * 16 + " + 1",                    # literal too long
    "999999999999999 * 999999999999999",               # result beyond MAX_RESULT
    "2" + " * 2" * 60,                                 # 2^61
    "(" * 30 + "1" + ")" * 30 + " + 1",                # nesting too deep
    "1 + " * 100 + "1",                                # too long / too many tokens
])
def test_huge_inputs_are_rejected(query: str) -> None:
    assert template_answer(query) is None


def test_huge_paste_is_rejected_fast() -> None:
    paste = "1+" * 500_000 + "1"
    start = time.perf_counter()
    assert template_answer(paste) is None
    assert template_answer("(" * 1_000_000) is None
    # A length check, not a parse: backtracking over a megabyte would take minutes, not a second.
    assert time.perf_counter() - start < 2


# --- unit conversions --------------------------------------------------------------


@pytest.mark.parametrize("query, answer", [
    ("convert 5 km to miles", "5 km = 3.11 miles"),
    ("how many km is 10 miles?", "10 miles = 16.09 km"),
    ("convert 10 kg to pounds", "10 kg = 22.05 pounds"),
    ("what is 10 lbs in kg", "10 pounds = 4.54 kg"),
    ("100 celsius to fahrenheit", "100 °C = 212 °F"),
    ("what is 100 fahrenheit in celsius", "100 °F = 37.78 °C"),
    ("convert 3 meters to feet", "3 meters = 9.84 feet"),
    ("how many meters is 10 feet", "10 feet = 3.05 meters"),
    ("convert 2 liters to gallons", "2 liters = 0.53 gallons"),
    ("how many liters are in 5 gallons?", "5 gallons = 18.93 liters"),
    ("convert 10 cm to inches", "10 cm = 3.94 inches"),
    ("how many cm is 12 inches", "12 inches = 30.48 cm"),
])
def test_each_unit_pair_both_ways(query: str, answer: str) -> None:
    assert template_answer(query) == TemplateAnswer(answer, "unit_conversion")


@pytest.mark.parametrize("query, answer", [
    ("how many miles is 10 km?", "10 km = 6.21 miles"),
    ("10 kilometers in miles", "10 km = 6.21 miles"),
    ("10km -> miles", "10 km = 6.21 miles"),
    ("What is 10 km in miles?", "10 km = 6.21 miles"),
    ("10 km is how many miles?", "10 km = 6.21 miles"),
    ("1 mile in km", "1 mile = 1.61 km"),
    ("-40 c to f", "-40 °C = -40 °F"),
    ("Convert 100 °F to °C.", "100 °F = 37.78 °C"),
    ("convert 2.50 kg to lbs", "2.5 kg = 5.51 pounds"),
    ("how many feet are there in 3 m", "3 meters = 9.84 feet"),
])
def test_unit_phrasings(query: str, answer: str) -> None:
    assert template_answer(query) == TemplateAnswer(answer, "unit_conversion")


def test_conversion_fields() -> None:
    conversion = convert_units("convert 5 km to miles")
    assert conversion is not None
    assert (conversion.source, conversion.target, conversion.value) == ("km", "miles", 5)


# --- greetings and thanks -----------------------------------------------------------


@pytest.mark.parametrize("query", ["hi", "Hello", "hello there", "Hey!", "Good morning", "hi shammah",
                                   "  HELLO  ", "howdy"])
def test_greetings(query: str) -> None:
    assert template_answer(query) == TemplateAnswer(GREETING_REPLY, "greeting")


@pytest.mark.parametrize("query", ["thanks!", "Thank you", "thank you so much", "Thanks a lot.",
                                   "thx", "many thanks", "thank you very much!!"])
def test_thanks(query: str) -> None:
    assert template_answer(query) == TemplateAnswer(THANKS_REPLY, "thanks")


# --- near misses --------------------------------------------------------------------

NEAR_MISSES = [
    "what is the capital of France",
    "what is 3 apples plus a banana",
    "what is 5",
    "2024",
    "-7",
    "hi, what is the capital of France?",
    "hello world program in python",
    "thank you for explaining recursion, now tell me about loops",
    "thanks for nothing",
    "what is 2^3",
    "what is 2 ** 3",
    "3 +",
    "(3 + 4",
    "3 + 4)",
    "2(3+4)",
    "1e5 + 1",
    "007 + 1",
    "2024-01-05",
    "what is x + 1",
    "what is 3 + 4 in binary",
    "convert 5 km",
    "how many miles",
    "convert 5 parsecs to km",
    "convert 5 km to pounds",
    "convert 5 km to feet",
    "how many days are in June?",
    "is 2024 a leap year?",
    "12 angry men",
    "5 km",
    "what time is it",
    "what is 3 + 4 and why",
    "",
    "   ",
]


@pytest.mark.parametrize("query", NEAR_MISSES)
def test_near_misses_return_none(query: str) -> None:
    assert template_answer(query) is None


# --- properties ---------------------------------------------------------------------

_LEAVES = st.integers(min_value=-20, max_value=20).map(lambda n: ("num", n))
_TREES = st.recursive(
    _LEAVES,
    lambda children: st.tuples(st.just("bin"), st.sampled_from("+-*/"), children, children),
    max_leaves=8,
)
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _value(tree: tuple) -> Fraction | None:
    """The tree's value by Python's own (exact) arithmetic; None on division by zero."""
    if tree[0] == "num":
        return Fraction(tree[1])
    _, op, left, right = tree
    a, b = _value(left), _value(right)
    if a is None or b is None:
        return None
    if op == "/":
        return None if b == 0 else a / b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def _render(tree: tuple, full_parens: bool) -> str:
    """Text of the tree; with precedence-minimal parentheses unless `full_parens`."""
    if tree[0] == "num":
        return str(tree[1])
    _, op, left, right = tree
    left_text, right_text = _render(left, full_parens), _render(right, full_parens)
    if full_parens:
        return f"({left_text} {op} {right_text})"
    if left[0] == "bin" and _PRECEDENCE[left[1]] < _PRECEDENCE[op]:
        left_text = f"({left_text})"
    if right[0] == "bin" and (_PRECEDENCE[right[1]] < _PRECEDENCE[op]
                              or (_PRECEDENCE[right[1]] == _PRECEDENCE[op] and op in "-/")):
        right_text = f"({right_text})"
    return f"{left_text} {op} {right_text}"


@settings(max_examples=300, deadline=None)
@given(tree=_TREES, full_parens=st.booleans(), prefix=st.sampled_from(["what is ", "compute ", ""]))
def test_arithmetic_matches_python(tree: tuple, full_parens: bool, prefix: str) -> None:
    expected = _value(tree)
    answer = template_answer(prefix + _render(tree, full_parens))
    if tree[0] == "num" or expected is None or abs(expected) > MAX_RESULT:
        assert answer is None or answer.rule != "arithmetic"
    else:
        assert answer == TemplateAnswer(format_number(expected), "arithmetic")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    result = template_answer(text)
    assert result is None or isinstance(result, TemplateAnswer)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-*/(). x,kmilesto", max_size=300))
def test_never_raises_on_expression_like_text(text: str) -> None:
    result = template_answer(text)
    assert result is None or result.rule in {"arithmetic", "unit_conversion"}
