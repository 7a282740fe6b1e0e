"""Rule-based answers that are exact: greetings, thanks, arithmetic, unit conversions.

`template_answer(query)` returns a `TemplateAnswer` only when it is sure; anything
else (a question about the world, numbers mixed with unknown words, a division by
zero, an input too long or numbers too large) gives None and the query goes on to
the next tier. Nothing here ever calls `eval`: arithmetic goes through a small
tokenizer and a recursive-descent parser over exact fractions.

One canonical answer text per rule:

- ``greeting``: ``GREETING_REPLY`` ("Hello! How can I help you today?").
- ``thanks``: ``THANKS_REPLY`` ("You're welcome!").
- ``arithmetic``: the value alone, as `format_number` writes it: "82", "-3.5", "0.33".
- ``unit_conversion``: "<value> <unit> = <result> <unit>", e.g. "10 km = 6.21 miles",
  "100 °F = 37.78 °C", "1 mile = 1.61 km". The given value is echoed exactly as
  typed (canonical digits), the result through `format_number`; a unit takes its
  singular label when its number reads exactly "1".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Literal

from shammah_tui.core.kinds import MAX_RULE_QUERY_CHARS

Rule = Literal["greeting", "thanks", "arithmetic", "unit_conversion"]

#: At most this many tokens in an arithmetic expression.
MAX_TOKENS = 96
#: At most this many nested parentheses / unary signs.
MAX_NESTING = 24
#: Literal numbers: at most this many digits before and after the point.
MAX_INTEGER_DIGITS = 15
MAX_FRACTION_DIGITS = 10
#: Results beyond this magnitude are refused ("huge results"), as are
#: intermediate values beyond MAX_INTERMEDIATE and denominators beyond it.
MAX_RESULT = 10**15
MAX_INTERMEDIATE = 10**30
#: Unit conversions accept values up to this magnitude.
MAX_CONVERSION_VALUE = 10**12

GREETING_REPLY = "Hello! How can I help you today?"
THANKS_REPLY = "You're welcome!"


@dataclass(frozen=True)
class TemplateAnswer:
    """An exact rule-based answer and the rule that produced it."""

    answer: str
    rule: Rule


@dataclass(frozen=True)
class ArithmeticResult:
    """An evaluated expression: exact value, canonical expression text, answer text."""

    value: Fraction
    expression: str
    answer: str


@dataclass(frozen=True)
class Conversion:
    """A unit conversion: `value` `source` → `result` `target` (canonical unit names)."""

    value: Fraction
    source: str
    target: str
    result: Fraction
    answer: str


# ---------------------------------------------------------------------------
# Numbers


def format_number(value: int | float | Fraction | Decimal) -> str:
    """The one way numbers are written in answers.

    Integers (and values that are whole) have no ".0"; anything else is rounded
    half away from zero to 2 decimals with trailing zeros stripped:
    82 → "82", 6.0 → "6", 6.2137 → "6.21", 2.5 → "2.5", -0.001 → "0".
    """
    if isinstance(value, bool):
        raise TypeError("format_number takes a number, not a bool")
    exact = _to_decimal(value)
    if not exact.is_finite():
        raise ValueError(f"cannot format {value!r}")
    if exact == exact.to_integral_value():
        return str(int(exact))
    digits = len(str(int(abs(exact)))) + 10
    with localcontext() as ctx:
        ctx.prec = max(digits, 28)
        rounded = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = format(rounded, "f").rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


def exact_number_text(value: Fraction) -> str:
    """A terminating decimal written in full ("3.125", "10", "-0.5"); for echoing inputs."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:  # not a terminating decimal: fall back to the rounded form
        return format_number(value)
    with localcontext() as ctx:
        ctx.prec = len(str(abs(value.numerator))) + len(str(value.denominator)) + 5
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _to_decimal(value: int | float | Fraction | Decimal) -> Decimal:
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return Decimal(value.numerator)
        with localcontext() as ctx:
            ctx.prec = len(str(abs(value.numerator) // value.denominator)) + 30
            return Decimal(value.numerator) / Decimal(value.denominator)
    return Decimal(value)


def _parse_literal(text: str) -> Fraction | None:
    """A decimal literal as an exact fraction; None when it is out of bounds."""
    text = text.replace(",", "")
    whole, _, frac = text.partition(".")
    if len(whole) > MAX_INTEGER_DIGITS or len(frac) > MAX_FRACTION_DIGITS:
        return None
    # Leading zeros ("007", "2024-01-05") mean an id or a date, not arithmetic.
    if len(whole) > 1 and whole.startswith("0"):
        return None
    return Fraction(text if whole else "0" + text)


# ---------------------------------------------------------------------------
# Query preparation shared by the rules


_HAS_DIGIT = re.compile(r"\d")


def _prepare(query: str) -> str:
    """NFKC, casefold, straight apostrophes, one space, no trailing ?!. or "please"."""
    text = unicodedata.normalize("NFKC", query).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2212", "-")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"[\s?!.]+$", "", text)
    # Politeness is not part of the question: "please convert …", "… please?".
    return re.sub(r"^please,? |,? please$", "", text)


def _plain_words(query: str) -> str:
    """Letters and digits only, single spaces: for matching fixed phrases."""
    text = unicodedata.normalize("NFKC", query).casefold()
    text = text.replace("\u2019", "'")
    text = re.sub(r"'", "", text)
    return " ".join(re.findall(r"[^\W_]+", text))


# ---------------------------------------------------------------------------
# Greetings and thanks

_GREETINGS = frozenset({
    "hi", "hello", "hey", "hiya", "howdy", "greetings", "yo", "heya",
    "hi there", "hello there", "hey there", "hello again", "hi again",
    "good morning", "good afternoon", "good evening", "good day",
})
_THANKS = frozenset({
    "thanks", "thank you", "thanks a lot", "thanks so much", "thank you so much",
    "thank you very much", "thanks very much", "many thanks", "thx", "ty", "tysm",
    "thanks a bunch", "thanks a million", "much appreciated", "cheers", "thank u",
    "thanks again", "thank you again", "great thanks", "ok thanks", "okay thanks",
    "ok thank you", "okay thank you", "perfect thanks", "awesome thanks",
})
_ADDRESSEE = re.compile(r"^(?:oh )?(.*?)(?: (?:shammah|friend|buddy|mate|all|everyone))?$")


def _fixed_phrase_rule(query: str) -> TemplateAnswer | None:
    plain = _plain_words(query)
    if not plain:
        return None
    match = _ADDRESSEE.match(plain)
    core = match.group(1) if match else plain
    if core in _GREETINGS:
        return TemplateAnswer(GREETING_REPLY, "greeting")
    if core in _THANKS:
        return TemplateAnswer(THANKS_REPLY, "thanks")
    return None


# ---------------------------------------------------------------------------
# Arithmetic: tokenizer, recursive-descent parser, exact evaluation


class _Rejected(Exception):
    """The text is not an arithmetic expression we are sure about."""


_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"|(?P<op>[-+*/()×÷])"
    r"|(?P<word>[a-z]+))"
)
_WORD_OPS = {"plus": "+", "minus": "-", "times": "*", "x": "*"}
# Words that are operators only when followed by "by".
_BY_OPS = {"multiplied": "*", "divided": "/"}
_SYMBOL_OPS = {"×": "*", "÷": "/"}

_ARITHMETIC_QUERY = re.compile(
    r"(?:(?:what is|what's|whats|what does|how much is|compute|calculate|evaluate|solve|work out)"
    r"(?: the value of)?:? )?"
    r"(?P<expr>.+?)"
    r"(?: ?= ?\??| equals?| equal to)?"
)

_Node = tuple  # ("num", Fraction) | ("paren", node) | ("neg", node) | ("bin", op, left, right)


def _tokenize(expr: str) -> list[tuple[str, object]]:
    tokens: list[tuple[str, object]] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None or match.end() == pos:
            raise _Rejected
        pos = match.end()
        if match.group("number") is not None:
            literal = _parse_literal(match.group("number"))
            if literal is None:
                raise _Rejected
            tokens.append(("num", literal))
        elif match.group("op") is not None:
            op = match.group("op")
            tokens.append(("op", _SYMBOL_OPS.get(op, op)))
        else:
            word = match.group("word")
            if word in _WORD_OPS:
                tokens.append(("op", _WORD_OPS[word]))
            elif word in _BY_OPS:
                follow = _TOKEN.match(expr, pos)
                if follow is None or follow.group("word") != "by":
                    raise _Rejected
                pos = follow.end()
                tokens.append(("op", _BY_OPS[word]))
            else:
                raise _Rejected
        if len(tokens) > MAX_TOKENS:
            raise _Rejected
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ;
    unary := ('-'|'+') unary | primary ; primary := NUMBER | '(' expr ')'."""

    def __init__(self, tokens: list[tuple[str, object]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.binary_ops = 0

    def parse(self) -> _Node:
        node = self._expr()
        if self.pos != len(self.tokens):
            raise _Rejected
        return node

    def _peek(self) -> tuple[str, object] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _expr(self) -> _Node:
        node = self._term()
        while (tok := self._peek()) in (("op", "+"), ("op", "-")):
            self.pos += 1
            self.binary_ops += 1
            node = ("bin", tok[1], node, self._term())
        return node

    def _term(self) -> _Node:
        node = self._unary()
        while (tok := self._peek()) in (("op", "*"), ("op", "/")):
            self.pos += 1
            self.binary_ops += 1
            node = ("bin", tok[1], node, self._unary())
        return node

    def _unary(self) -> _Node:
        tok = self._peek()
        if tok in (("op", "-"), ("op", "+")):
            self.pos += 1
            with self._nested():
                inner = self._unary()
            return ("neg", inner) if tok[1] == "-" else inner
        return self._primary()

    def _primary(self) -> _Node:
        tok = self._peek()
        if tok is None:
            raise _Rejected
        self.pos += 1
        if tok[0] == "num":
            return ("num", tok[1])
        if tok == ("op", "("):
            with self._nested():
                node = self._expr()
            if self._peek() != ("op", ")"):
                raise _Rejected
            self.pos += 1
            return ("paren", node)
        raise _Rejected

    def _nested(self) -> _Depth:
        return _Depth(self)


class _Depth:
    """Context manager counting nesting so deep inputs are refused, not recursed into."""

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > MAX_NESTING:
            raise _Rejected

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


def _bounded(value: Fraction) -> Fraction:
    if abs(value) > MAX_INTERMEDIATE or value.denominator > MAX_INTERMEDIATE:
        raise _Rejected
    return value


_APPLY: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


def _evaluate(node: _Node) -> Fraction:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "paren":
        return _evaluate(node[1])
    if kind == "neg":
        return -_evaluate(node[1])
    _, op, left, right = node
    a, b = _evaluate(left), _evaluate(right)
    if op == "/":
        if b == 0:
            raise _Rejected  # division by zero is not a template answer
        return _bounded(a / b)
    return _bounded(_APPLY[op](a, b))


def _render(node: _Node) -> str:
    """Canonical text of an expression: symbols, no spaces, the parentheses as given."""
    kind = node[0]
    if kind == "num":
        return exact_number_text(node[1])
    if kind == "paren":
        return "(" + _render(node[1]) + ")"
    if kind == "neg":
        return "-" + _render(node[1])
    _, op, left, right = node
    return _render(left) + op + _render(right)


def evaluate_arithmetic(query: str) -> ArithmeticResult | None:
    """Evaluate an arithmetic question on explicit numbers, or None when unsure.

    Accepts "what is 3 + 4?", "compute 12*7", "calculate (2+3)*4",
    "what's 17 times 23", "7 divided by 2", a bare "3+4=". Requires at least one
    binary operator; rejects unknown words, division by zero, implicit
    multiplication, leading-zero literals and anything beyond the module bounds.
    """
    if len(query) > MAX_RULE_QUERY_CHARS or not _HAS_DIGIT.search(query):
        return None
    text = _prepare(query)
    match = _ARITHMETIC_QUERY.fullmatch(text)
    if match is None:
        return None
    try:
        parser = _Parser(_tokenize(match.group("expr")))
        tree = parser.parse()
        if parser.binary_ops == 0:
            return None
        value = _evaluate(tree)
    except _Rejected:
        return None
    if abs(value) > MAX_RESULT:
        return None
    return ArithmeticResult(value, _render(tree), format_number(value))


# ---------------------------------------------------------------------------
# Unit conversions


@dataclass(frozen=True)
class Unit:
    """A unit: canonical name, labels for answers, aliases accepted in queries."""

    name: str
    singular: str
    plural: str
    aliases: tuple[str, ...]

    def label(self, number_text: str) -> str:
        return self.singular if number_text == "1" else self.plural


UNITS: dict[str, Unit] = {u.name: u for u in (
    Unit("km", "km", "km", ("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres")),
    Unit("miles", "mile", "miles", ("mile", "miles", "mi")),
    Unit("kg", "kg", "kg", ("kg", "kgs", "kilogram", "kilograms", "kilogramme", "kilogrammes",
                            "kilo", "kilos")),
    Unit("pounds", "pound", "pounds", ("pound", "pounds", "lb", "lbs")),
    Unit("celsius", "°C", "°C", ("celsius", "degrees celsius", "degree celsius", "degrees c",
                                 "deg c", "centigrade", "degrees centigrade", "°c", "° c", "c")),
    Unit("fahrenheit", "°F", "°F", ("fahrenheit", "degrees fahrenheit", "degree fahrenheit",
                                    "degrees f", "deg f", "°f", "° f", "f")),
    Unit("meters", "meter", "meters", ("meter", "meters", "metre", "metres", "m")),
    Unit("feet", "foot", "feet", ("foot", "feet", "ft")),
    Unit("liters", "liter", "liters", ("liter", "liters", "litre", "litres", "l")),
    Unit("gallons", "gallon", "gallons", ("gallon", "gallons", "us gallon", "us gallons",
                                          "gal", "gals")),
    Unit("cm", "cm", "cm", ("cm", "centimeter", "centimeters", "centimetre", "centimetres")),
    Unit("inches", "inch", "inches", ("inch", "inches")),
)}

#: Every accepted spelling → canonical unit name.
UNIT_ALIASES: dict[str, str] = {alias: u.name for u in UNITS.values() for alias in u.aliases}

_MILE_KM = Fraction("1.609344")
_POUND_KG = Fraction("0.45359237")
_FOOT_M = Fraction("0.3048")
_GALLON_L = Fraction("3.785411784")
_INCH_CM = Fraction("2.54")

#: The supported pairs, both ways, with exact definitions.
CONVERSIONS: dict[tuple[str, str], Callable[[Fraction], Fraction]] = {
    ("km", "miles"): lambda v: v / _MILE_KM,
    ("miles", "km"): lambda v: v * _MILE_KM,
    ("kg", "pounds"): lambda v: v / _POUND_KG,
    ("pounds", "kg"): lambda v: v * _POUND_KG,
    ("meters", "feet"): lambda v: v / _FOOT_M,
    ("feet", "meters"): lambda v: v * _FOOT_M,
    ("liters", "gallons"): lambda v: v / _GALLON_L,
    ("gallons", "liters"): lambda v: v * _GALLON_L,
    ("cm", "inches"): lambda v: v / _INCH_CM,
    ("inches", "cm"): lambda v: v * _INCH_CM,
    ("celsius", "fahrenheit"): lambda v: v * Fraction(9, 5) + 32,
    ("fahrenheit", "celsius"): lambda v: (v - 32) * Fraction(5, 9),
}

_NUM = r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
_UNIT = "(?:" + "|".join(re.escape(a) for a in sorted(UNIT_ALIASES, key=len, reverse=True)) + ")"
_V = rf"(?P<value>{_NUM}) ?(?P<source>{_UNIT})"
_T = rf"(?P<target>{_UNIT})"
_CONVERSION_QUERIES = [re.compile(p) for p in (
    rf"(?:convert|change|turn) {_V} (?:to|into|in) {_T}",
    rf"(?:what is|what are|how much is|how many is) {_V} (?:in|to|into|as|in terms of) {_T}",
    rf"{_V} (?:in|to|into|as) {_T}",
    rf"{_V} ?(?:->|=) ?{_T}",
    rf"how (?:many|much) {_T} (?:is|are|in|make|makes|equals?|is in|are in|are there in|is there in) {_V}",
    rf"{_V} (?:is|are|equals?|makes?) how (?:many|much) {_T}",
)]


def convert_units(query: str) -> Conversion | None:
    """Parse and compute a unit conversion question, or None when unsure.

    Accepts "convert 5 km to miles", "how many miles is 10 km?", "what is 100
    fahrenheit in celsius", "5 kg in pounds", "3 m -> feet" and the like, for the
    pairs in `CONVERSIONS` only.
    """
    if len(query) > MAX_RULE_QUERY_CHARS or not _HAS_DIGIT.search(query):
        return None
    text = _prepare(query)
    for pattern in _CONVERSION_QUERIES:
        match = pattern.fullmatch(text)
        if match is not None:
            break
    else:
        return None
    source = UNIT_ALIASES[match.group("source")]
    target = UNIT_ALIASES[match.group("target")]
    convert = CONVERSIONS.get((source, target))
    literal = match.group("value")
    sign = -1 if literal.startswith("-") else 1
    value = _parse_literal(literal.lstrip("+-"))
    if convert is None or value is None or value > MAX_CONVERSION_VALUE:
        return None
    value *= sign
    result = convert(value)
    value_text, result_text = exact_number_text(value), format_number(result)
    answer = (f"{value_text} {UNITS[source].label(value_text)} = "
              f"{result_text} {UNITS[target].label(result_text)}")
    return Conversion(value, source, target, result, answer)


# ---------------------------------------------------------------------------
# The tier


def template_answer(query: str) -> TemplateAnswer | None:
    """An exact rule-based answer to `query`, or None when no rule is sure.

    Rules are tried in order: greeting, thanks, arithmetic, unit conversion.
    Never raises on any string input.
    """
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_RULE_QUERY_CHARS:
        return None
    fixed = _fixed_phrase_rule(query)
    if fixed is not None:
        return fixed
    arithmetic = evaluate_arithmetic(query)
    if arithmetic is not None:
        return TemplateAnswer(arithmetic.answer, "arithmetic")
    conversion = convert_units(query)
    if conversion is not None:
        return TemplateAnswer(conversion.answer, "unit_conversion")
    return None
