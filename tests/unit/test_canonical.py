"""One key per question: held-out sets, calibration exclusion and the refusal to train a held-out
question compare canonical keys, so no wording of a held-out question reaches training."""

from __future__ import annotations

import random

import pytest

from shammah_tui.curriculum.skills import SKILLS, held_out_canonical_keys, is_held_out_question
from shammah_tui.pipeline.canonical import canonical_key


@pytest.mark.parametrize("a, b", [
    ("What is 12*34?", "What's 34 times 12?"),
    ("What is the sum of 647 and 271?", "Compute 271 + 647."),
    ("What is the product of 9 and 8?", "Calculate 8 multiplied by 9."),
    ("Reverse the word 'carrot'.", 'What is "carrot" spelled backwards?'),
    ("Uppercase the word pkdzb.", "Convert \"pkdzb\" to uppercase."),
    ("How many letters are in the word 'reversible'?", "What is the length of the word 'reversible'?"),
    ("Is 1996 a leap year?", "Tell me whether 1996 is a leap year."),
    ("Who wrote Hamlet?", "who wrote 'Hamlet'"),
])
def test_wordings_of_one_question_share_a_key(a: str, b: str) -> None:
    assert canonical_key(a) == canonical_key(b)


@pytest.mark.parametrize("a, b", [
    ("What is 34 - 12?", "What is 12 - 34?"),  # subtraction does not commute
    ("What is 12*34?", "What is 12+34?"),
    ("Reverse the word 'carrot'.", "Uppercase the word 'carrot'."),
    ("Is 1996 a leap year?", "Is 1997 a leap year?"),
    ("What is 2+3*4?", "What is 3*4+2?"),  # not one binary operation: keyed on the wording
])
def test_different_questions_keep_different_keys(a: str, b: str) -> None:
    assert canonical_key(a) != canonical_key(b)


def test_every_phrasing_of_every_skill_instance_maps_to_its_key() -> None:
    rng = random.Random(0)
    for skill in SKILLS.values():
        for item in skill.held_out()[:30]:
            phrasings = {skill.instance(_key_of(item.key), rng).query for _ in range(12)}
            assert {canonical_key(q) for q in phrasings} == {canonical_key(item.query)}, item


def test_no_wording_of_a_held_out_question_is_ever_a_training_instance() -> None:
    held = held_out_canonical_keys()
    for skill in SKILLS.values():
        assert not any(canonical_key(i.query) in held for i in skill.training(2000, "leak-check"))
    a, op, b = _key_of(SKILLS["arithmetic"].held_out()[0].key)
    twin = f"What is {b} {op} {a}?" if op in "+*" else f"What is {a} {op} {b}?"
    assert is_held_out_question(twin)


def _key_of(key: str) -> tuple:
    """A skill key back as the tuple the skill samples."""
    skill, rest = key.split(":", 1)
    if skill == "arithmetic":
        for op in "+-*":
            left, sep, right = rest.rpartition(op)
            if sep and left.lstrip("-").isdigit() and right.isdigit():
                return int(left), op, int(right)
    if skill == "words":
        kind, word = rest.split(":")
        return kind, word
    return (int(rest),)
