"""arithmetic: expressions on small explicit numbers, answered by the template tier's own solver."""

from __future__ import annotations

import random

from shammah_tui.curriculum.base import Family, Question, Solution
from shammah_tui.pipeline.templates import evaluate_arithmetic

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
