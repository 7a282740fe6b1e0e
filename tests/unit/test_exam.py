"""The exam: which forwarded questions no run trains on."""

from __future__ import annotations

from shammah_tui.core.records import TrainingExample
from shammah_tui.training.exam import EXAM_SIZE, exam, in_exam_share


def example(i: int, query: str, origin: str = "forward") -> TrainingExample:
    return TrainingExample(i, query, "", "", "answer", origin, "queued")


def test_a_quarter_of_the_traffic_and_nothing_taught_on_purpose():
    queued = [example(i, f"What is {i} in binary?") for i in range(2000)]
    share = len(exam(queued[:EXAM_SIZE])) / EXAM_SIZE
    assert 0.18 < share < 0.32
    taught = [example(i, e.query, "tool") for i, e in enumerate(queued[:400])]
    assert exam(taught) == []


def test_a_rewording_falls_on_the_same_side():
    # Commuted operands and quoting are one question (canonical keys): training on one wording
    # while the exam holds the other would make the exam in-sample.
    pairs = [(f"What is {a} + {b}?", f"What is {b} + {a}?") for a in range(10, 60) for b in range(60, 70)]
    assert all(in_exam_share(x) == in_exam_share(y) for x, y in pairs)
    assert any(in_exam_share(x) for x, _ in pairs) and not all(in_exam_share(x) for x, _ in pairs)


def test_only_the_newest_are_held_and_older_ones_are_trained_again():
    queued = [example(i, f"How many days are in {i} weeks?") for i in range(5000)]
    held = exam(queued)
    assert len(held) == EXAM_SIZE
    newest_in_share = [e for e in queued if in_exam_share(e.query)][-EXAM_SIZE:]
    assert held == newest_in_share
