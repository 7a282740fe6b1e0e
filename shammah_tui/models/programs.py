"""Programs: how the pre-trained model answers what it would otherwise have to compute in its head.

A 135M model copies numbers and words from a question well and adds 3-digit numbers badly. So
where a teacher's answer is what a one-step program over the question's own numbers and words
computes ("What is 20% of 580?" → "116" is ``20 * 580 / 100``), the model is trained to write the
program, ``calc: 20 * 580 / 100``, and ``run`` computes the answer exactly. The program is found
from the teacher's answer alone (``find``): every candidate over the question's arguments is run,
and the first, in a fixed order of preference, whose result is the answer is the target. Nothing
about a pattern is written here: which program a wording means is what the model learns.

The language is a small, safe subset of Python expressions: numbers, strings, + - * / // %, and
the functions bin, upper, lower, reverse, len and leap (whether a year is a leap year: "Yes"/"No").
``run`` evaluates a parsed tree, never ``eval``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from fractions import Fraction

PREFIX = "calc: "
#: Multipliers a unit conversion may apply (minutes in an hour, days in a week, metres in a km …).
CONSTANTS = (60, 24, 7, 12, 1000, 100, 10, 3600, 365, 52, 1024)
#: Arguments a search considers: the first numbers and the last words of a question.
MAX_NUMBERS, MAX_WORDS = 4, 12
#: A result this short matches a conversion or a transform of any word by chance too often to be
#: evidence of it ("8"); from two numbers of the question, or the length of a quoted word, it is.
MIN_RESULT_CHARS = 2
#: Bounds that keep a program's evaluation cheap whatever the model writes.
MAX_PROGRAM_CHARS, MAX_MAGNITUDE, MAX_STRING = 200, 10**15, 200

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w)")
_QUOTED = re.compile(r"""['"“”‘’]([A-Za-z]{1,40})['"“”‘’]""")
_WORD = re.compile(r"[A-Za-z]{2,40}")

Value = Fraction | str
_FUNCTIONS: dict[str, Callable[[Value], Value]] = {
    "bin": lambda v: bin(_natural(v))[2:],
    "upper": lambda v: _text(v).upper(),
    "lower": lambda v: _text(v).lower(),
    "reverse": lambda v: _text(v)[::-1],
    "len": lambda v: Fraction(len(_text(v))),
    "leap": lambda v: "Yes" if _is_leap(_natural(v)) else "No",
}


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class ProgramError(ValueError):
    """A program that does not parse, uses what the language lacks, or fails to run."""


def _natural(v: Value) -> int:
    if not isinstance(v, Fraction) or v.denominator != 1 or v < 0:
        raise ProgramError("expected a whole number ≥ 0")
    return int(v)


def _text(v: Value) -> str:
    if not isinstance(v, str):
        raise ProgramError("expected a string")
    return v


def show(value: Value) -> str:
    """A value as an answer: whole numbers plainly, others as a short decimal."""
    if isinstance(value, str):
        return value
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10g}"


# ---------------------------------------------------------------------- running


def is_program(text: str) -> bool:
    return text.lstrip().startswith(PREFIX)


def run(text: str) -> str:
    """The answer a program computes; raises ProgramError."""
    source = text.strip()
    if source.startswith(PREFIX):
        source = source[len(PREFIX):]
    if len(source) > MAX_PROGRAM_CHARS:
        raise ProgramError("program too long")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        raise ProgramError(f"not a program: {e.msg}") from None
    return show(_evaluate(tree.body))


def _evaluate(node: ast.AST) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) <= MAX_STRING:
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _checked(Fraction(str(node.value)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _evaluate(node.operand)
        if isinstance(v, str):
            raise ProgramError("cannot negate a string")
        return -v
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left), _evaluate(node.right)
        if isinstance(a, str) or isinstance(b, str):
            raise ProgramError("arithmetic on a string")
        return _checked(_arithmetic(node.op, a, b))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and len(node.args) == 1 and not node.keywords):
        return _FUNCTIONS[node.func.id](_evaluate(node.args[0]))
    raise ProgramError(f"not in the language: {ast.dump(node)[:60]}")


def _arithmetic(op: ast.operator, a: Fraction, b: Fraction) -> Fraction:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)):
        if b == 0:
            raise ProgramError("division by zero")
        return a / b if isinstance(op, ast.Div) else Fraction(a // b) if isinstance(op, ast.FloorDiv) else a % b
    raise ProgramError("operator not in the language")


def _checked(v: Fraction) -> Fraction:
    if abs(v) > MAX_MAGNITUDE:
        raise ProgramError("number too large")
    return v


# ---------------------------------------------------------------------- finding


def find(query: str, answer: str) -> str | None:
    """The program (with its prefix) whose result is ``answer``, over ``query``'s own numbers and
    words; None when no candidate computes it or the answer is too short to tell."""
    target = answer.strip().rstrip(".").strip()
    if not target or len(target) > MAX_STRING:
        return None
    for program in candidates(query, short=len(target) < MIN_RESULT_CHARS):
        try:
            if run(program) == target:
                return PREFIX + program
        except ProgramError:
            continue
    return None


def candidates(query: str, short: bool = False) -> Iterator[str]:
    """Every program over the query's arguments, most plausible first: three numbers combined in
    their order, then two, one number converted, then a word transformed (a quoted word before the
    others, the last word first). ``short``: only those a short result is evidence of."""
    numbers = [m.group() for m in _NUMBER.finditer(query)][:MAX_NUMBERS]
    if len(numbers) >= 3:
        a, b, c = numbers[:3]
        yield from (f"{a} + {b} + {c}", f"{a} + {b} * {c}", f"{a} * {b} + {c}", f"{a} - {b} * {c}",
                    f"{a} * {b} - {c}", f"({a} + {b}) * {c}", f"{a} - {b} - {c}", f"{a} * {b} * {c}")
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            yield from (f"{a} + {b}", f"{a} - {b}", f"{b} - {a}", f"{a} * {b}", f"{a} / {b}", f"{b} / {a}",
                        f"{a} * {b} / 100")
    quoted = [m.group(1) for m in _QUOTED.finditer(query)]
    if short:
        yield from (f'len("{w}")' for w in dict.fromkeys(quoted))
        return
    for a in numbers:
        yield f"bin({a})"
    if len(numbers) == 1:  # with more numbers in the question a constant or a yes/no fits by chance
        yield f"leap({numbers[0]})"
        for k in CONSTANTS:
            yield f"{numbers[0]} * {k}"
            yield f"{numbers[0]} / {k}"
    words = quoted + [w for w in reversed(_WORD.findall(query)) if w not in quoted]
    for w in dict.fromkeys(words[:MAX_WORDS]):
        # A "transform" that returns its argument is a copy, not a program.
        for name in ("upper", "reverse", "lower"):
            if _FUNCTIONS[name](w) != w:
                yield f'{name}("{w}")'
        if w in quoted:
            yield f'len("{w}")'
