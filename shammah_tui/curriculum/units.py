"""unit_conversion: the template tier's unit pairs, answered by its own converter."""

from __future__ import annotations

import random
from fractions import Fraction

from shammah_tui.curriculum.base import Family, Question, Solution
from shammah_tui.pipeline.templates import CONVERSIONS, convert_units, exact_number_text

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
