"""The offline teacher's curriculum: exact, phrasing-independent, deterministic."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from shammah_tui.benchmark.learning_stream import NOVEL_QUERIES
from shammah_tui.pipeline.templates import template_answer
from shammah_tui import curriculum
from shammah_tui.curriculum import (
    CAPITALS,
    FAMILIES,
    IDIOMS,
    WORDS,
    CurriculumItem,
    held_out_items,
    is_leap_year,
    sample_items,
    solve,
    stream,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLES_PER_FAMILY = 500


def test_families() -> None:
    assert set(FAMILIES) == {"arithmetic", "unit_conversion", "words", "calendar", "capitals",
                             "programming"}
    assert len(CAPITALS) >= 80
    assert len(IDIOMS) >= 40
    assert {tool for tool, _ in IDIOMS} == {"python", "git", "shell"}
    assert 140 <= len(WORDS) == len(set(WORDS))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_sample_solves_back(name: str) -> None:
    family = FAMILIES[name]
    rng = random.Random(name)
    for _ in range(SAMPLES_PER_FAMILY):
        item = family.sample(rng)
        solution = solve(item.query)
        assert solution is not None, item.query
        assert (solution.family, solution.answer, solution.key) == (name, item.answer, item.key)
        assert family.solve(item.query) == item.answer


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_phrasing_solves_back(name: str) -> None:
    family = FAMILIES[name]
    rng = random.Random(f"phrasings:{name}")
    questions = family.questions() or [family.sample_question(rng) for _ in range(60)]
    for question in rng.sample(questions, min(60, len(questions))):
        assert len(question.phrasings) >= 3, question
        for query in question.phrasings:
            solution = solve(query)
            assert solution is not None, query
            assert (solution.family, solution.answer, solution.key) == (name, question.answer, question.key)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_templates_per_question_type(name: str) -> None:
    for kind in getattr(FAMILIES[name], "kinds", []):
        assert len(kind.templates) >= 3, kind.name


def _variants(query: str) -> list[str]:
    out = [query.upper(), query.lower(), query.rstrip("?.!"), query.rstrip("?.!") + "!!",
           "  " + "   ".join(query.split()) + "  ", "Please " + query, query.replace("?", " ?")]
    if "'s" not in query:
        out.append(query.replace("'", '"'))
        out.append(query.replace("'", "\u2019"))
    return out


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_case_punctuation_and_whitespace_variants(name: str) -> None:
    rng = random.Random(f"variants:{name}")
    for _ in range(40):
        item = FAMILIES[name].sample(rng)
        for variant in _variants(item.query):
            solution = solve(variant)
            assert solution is not None, variant
            assert (solution.answer, solution.key) == (item.answer, item.key), variant


def test_same_key_same_answer_across_phrasings() -> None:
    answers: dict[str, set[str]] = defaultdict(set)
    phrasings: dict[str, set[str]] = defaultdict(set)
    for item in sample_items(4000, seed=11):
        answers[item.key].add(item.answer)
        phrasings[item.key].add(item.query)
    assert all(len(a) == 1 for a in answers.values())
    assert sum(len(p) > 1 for p in phrasings.values()) > 100  # keys really seen in several phrasings


def test_finite_families_have_unique_keys() -> None:
    for name in ("words", "calendar", "capitals", "programming"):
        questions = FAMILIES[name].questions()
        assert questions is not None
        keys = [q.key for q in questions]
        assert len(keys) == len(set(keys)), name
        assert all(k.startswith(name + ":") for k in keys)


@pytest.mark.parametrize("query, answer, key", [
    ("What is the capital of France?", "Paris", "capitals:france"),
    ("capital of the netherlands", "Amsterdam", "capitals:netherlands"),
    ("What's the capital city of the USA?", "Washington, D.C.", "capitals:united-states"),
    ("How many letters are in the word 'banana'?", "6", "words:letters:banana"),
    ("Reverse the word 'xylophone'.", "enohpolyx", "words:reverse:xylophone"),
    ("How many vowels are in 'queue'?", "4", "words:vowels:queue"),
    ("What day comes after Sunday?", "Monday", "calendar:after:sunday"),
    ("What is the day before Monday?", "Sunday", "calendar:before:monday"),
    ("How many days are in February?", curriculum.FEBRUARY_DAYS, "calendar:days_in:february"),
    ("What is the 2nd month?", "February", "calendar:month_name:2"),
    ("Is 1900 a leap year?", "No", "calendar:leap:1900"),
    ("Is 2000 a leap year?", "Yes", "calendar:leap:2000"),
    ("How do I reverse a list in Python?", "Use my_list[::-1] or my_list.reverse().",
     "programming:python:reverse-a-list"),
    ("How do I undo the last commit in the terminal?", None, None),
    ("what is 17 times 23", "391", "arithmetic:17*23"),
    ("how many miles is 10 km?", "10 km = 6.21 miles", "unit_conversion:km->miles:10"),
])
def test_known_questions(query: str, answer: str | None, key: str | None) -> None:
    solution = solve(query)
    if answer is None:
        assert solution is None
    else:
        assert solution is not None and (solution.answer, solution.key) == (answer, key)


@pytest.mark.parametrize("query", [
    "What is the capital of Atlantis?",
    "How do I reverse a list in Haskell?",
    "Which month is month number 13?",
    "What is the 3th month?",
    "Is 0 a leap year?",
    "What day comes after Funday?",
    "How many letters are in the word 'Straße'?",
    "What is the capital of France and why?",
    "x" * 10_000,
    "",
])
def test_unknown_questions(query: str) -> None:
    assert solve(query) is None


def test_leap_year_rule() -> None:
    assert [is_leap_year(y) for y in (1900, 2000, 2023, 2024, 2100)] == [False, True, False, True, False]


def test_sample_items_deterministic_and_filtered() -> None:
    assert sample_items(50, seed=4) == sample_items(50, seed=4)
    assert sample_items(50, seed=4) != sample_items(50, seed=5)
    assert {i.family for i in sample_items(100, seed=1, families=["words", "capitals"])} == {"words", "capitals"}
    with pytest.raises(KeyError):
        sample_items(1, seed=0, families=["astrology"])


def test_held_out_items_deterministic() -> None:
    for name in FAMILIES:
        first = held_out_items(name, 30, seed=0)
        assert first == held_out_items(name, 30, seed=0)
        assert len(first) == 30 and all(i.family == name for i in first)
        assert first != held_out_items(name, 30, seed=1)
        assert all(solve(i.query) is not None and solve(i.query).answer == i.answer for i in first)
    words = held_out_items("words", 100, seed=0)
    assert len({i.key for i in words}) == 100  # distinct questions where the family allows


def test_corpus_texts_deterministic() -> None:
    lines = list(curriculum.corpus_texts())
    assert lines == list(curriculum.corpus_texts())
    assert 3000 <= len(lines) <= 10000
    assert all(isinstance(line, str) and line for line in lines)
    assert "Paris" in lines and "Use my_list[::-1] or my_list.reverse()." in lines


def _stream_stats(items: list[CurriculumItem]) -> tuple[int, float, float, float]:
    """(distinct keys, exact-repeat share, paraphrase share, new-key share in the second half)."""
    queries: set[str] = set()
    keys: set[str] = set()
    repeats = paraphrases = late_new = 0
    for i, item in enumerate(items):
        if item.query in queries:
            repeats += 1
        elif item.key in keys:
            paraphrases += 1
        elif i >= len(items) // 2:
            late_new += 1
        queries.add(item.query)
        keys.add(item.key)
    n = len(items)
    return len(keys), repeats / n, paraphrases / n, late_new / (n - n // 2)


def test_stream_has_repeats_and_paraphrases() -> None:
    items = stream(500, seed=0)
    assert items == stream(500, seed=0)
    assert len(items) == 500
    distinct, repeats, paraphrases, late_new = _stream_stats(items)
    # Measured for seed 0: 96 distinct keys, 47.8% exact repeats, 33.0% paraphrases,
    # 11.6% new keys in the second half.
    assert 0.1 <= distinct / 500 <= 0.35
    assert repeats >= 0.3
    assert paraphrases >= 0.2
    assert late_new <= 0.2
    assert {i.family for i in items} == set(FAMILIES)
    for seed in (1, 2):
        distinct, repeats, paraphrases, late_new = _stream_stats(stream(500, seed=seed))
        assert 0.1 <= distinct / 500 <= 0.35 and repeats >= 0.25 and paraphrases >= 0.15


def test_stream_parameters_change_the_mix() -> None:
    no_repeats = _stream_stats(stream(400, seed=0, repeat_rate=0.0, paraphrase_rate=0.0,
                                      pool_size_per_family=200, zipf_exponent=0.0))
    assert no_repeats[0] > 250
    assert _stream_stats(stream(400, seed=0, repeat_rate=0.6))[1] > 0.55


def test_stream_fixture_is_current() -> None:
    lines = (FIXTURES / "stream_500.jsonl").read_text(encoding="utf-8").splitlines()
    items = [CurriculumItem(**json.loads(line)) for line in lines]
    assert items == stream(500, seed=0), "regenerate with tests/fixtures/make_fixtures.py"
    for item in items:
        solution = solve(item.query)
        assert solution is not None and (solution.answer, solution.key) == (item.answer, item.key)


def test_novel_queries_are_not_answered() -> None:
    queries = NOVEL_QUERIES.read_text(encoding="utf-8").splitlines()
    assert len(queries) >= 180 and len(set(queries)) == len(queries)
    for query in queries:
        assert solve(query) is None, query
        assert template_answer(query) is None, query
