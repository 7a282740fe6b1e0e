"""The agreement contract: the documented cases, one by one."""

from __future__ import annotations

import itertools

import pytest

from shammah_tui.pipeline.agreement import OVERLAP_THRESHOLD, Agreement, agreement, normalize_answer
from shammah_tui.pipeline.templates import template_answer
from shammah_tui.curriculum import FAMILIES, sample_items


def test_threshold_constant() -> None:
    assert OVERLAP_THRESHOLD == 0.8


@pytest.mark.parametrize("text, normalized", [
    ("  The Answer\tis 82. ", "the answer is 82"),
    ("«Paris»", "paris"),
    ("ｆｕｌｌ width", "full width"),   # NFKC
    ("...hello...", "hello"),
])
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize("local, teacher", [
    ("Paris", "paris"),
    ("  Paris. ", "Paris"),
    ("10 km = 6.21 miles", "10 km = 6.21 miles."),
    ("Use len(my_list)", "Use len(my_list)."),
    ("ＡＢＣ", "abc"),
])
def test_exact(local: str, teacher: str) -> None:
    assert agreement(local, teacher) == Agreement(1.0, True, "exact")


@pytest.mark.parametrize("local, teacher, agrees", [
    ("The answer is 82.", "82", True),
    ("82", "The answer is 82.", True),
    ("82", "83", False),
    ("82.0", "82", True),
    ("1,000", "1000", True),
    ("0.30000000000000004", "0.3", True),     # within 1e-9 relative
    ("0.3001", "0.3", False),
    ("6.21", "10 km = 6.21 miles", True),    # a bare number matches a value with a unit
    ("6.21 miles", "10 km = 6.21 miles", True),
    ("6.21 mi", "10 km = 6.21 miles", True),  # unit aliases folded
    ("6.21 km", "10 km = 6.21 miles", False),  # a different unit
    ("37.78 °C", "100 °F = 37.78 °C", True),
    ("37.78 °F", "100 °F = 37.78 °C", False),
    ("There are 5 letters", "5", True),
    ("5 vowels", "There are 5 letters", False),
    ("It is 12.", "12", True),
    ("82 is the answer", "82", False),         # the value must come last
    ("-5", "-5", True),
    ("5", "-5", False),
])
def test_exact_value_numbers(local: str, teacher: str, agrees: bool) -> None:
    verdict = agreement(local, teacher)
    assert verdict.method in {"exact", "exact_value"}
    assert verdict.agrees is agrees
    assert verdict.score == (1.0 if agrees else 0.0)


@pytest.mark.parametrize("local, teacher, agrees", [
    ("It is Paris", "Paris", True),
    ("The answer is Paris.", "Paris", True),
    ("The capital is Paris", "Paris", True),
    ("Rome", "Paris", False),
    ("Not Paris", "Paris", False),
    ("Buenos Aires", "Buenos Aires.", True),
    ("Tuesday", "Wednesday", False),
    ("No, 2023 is not a leap year.", "No", True),
    ("Yes", "No", False),
    ("yes it is", "Yes", True),
    ("elppa", "elppa", True),
    ("elpap", "elppa", False),
])
def test_exact_value_short_answers(local: str, teacher: str, agrees: bool) -> None:
    verdict = agreement(local, teacher)
    assert verdict.method in {"exact", "exact_value"}
    assert verdict.agrees is agrees


def test_overlap_for_free_form_answers() -> None:
    teacher = "Use sorted(my_list) for a new list, or my_list.sort() in place."
    close = agreement("Use sorted(my_list) for a new list or my_list.sort() in place please", teacher)
    assert close.method == "overlap" and close.agrees and close.score >= OVERLAP_THRESHOLD
    partial = agreement("Use my_list[::-1]", "Use my_list[::-1] or my_list.reverse().")
    assert partial.method == "overlap" and not partial.agrees
    assert 0.0 < partial.score < OVERLAP_THRESHOLD
    unrelated = agreement("The weather is nice today in the park", teacher)
    assert unrelated.method == "overlap" and not unrelated.agrees and unrelated.score < 0.3


def test_a_long_answer_ending_in_a_number_is_not_a_final_value() -> None:
    verdict = agreement("5", "Run git log -n 5 to see the last five commits in order 5")
    assert verdict.method == "overlap" and not verdict.agrees


@pytest.mark.parametrize("local", ["", "   ", "...", "\n\t"])
def test_empty_local_never_agrees(local: str) -> None:
    assert agreement(local, "82") == Agreement(0.0, False, "empty")
    assert not agreement(local, local).agrees


def test_scores_in_unit_interval_and_symmetric_on_exact() -> None:
    pairs = [("a b c", "a b d e f g"), ("x", "y"), ("1 2 3 4 5 6", "1 2 3 4 5 6 7")]
    for local, teacher in pairs:
        verdict = agreement(local, teacher)
        assert 0.0 <= verdict.score <= 1.0


def test_template_answers_agree_with_curriculum_answers() -> None:
    """The template tier and the offline teacher write arithmetic and conversions identically."""
    for item in sample_items(200, seed=3, families=["arithmetic", "unit_conversion"]):
        local = template_answer(item.query)
        assert local is not None
        assert agreement(local.answer, item.answer) == Agreement(1.0, True, "exact")


def test_curriculum_answers_of_different_keys_disagree() -> None:
    """Distinct answers in the curriculum never count as agreeing: labels stay honest."""
    answers = sorted({q.answer for name in ("calendar", "capitals", "programming")
                      for q in FAMILIES[name].questions() or []})
    for a, b in itertools.combinations(answers, 2):
        assert not agreement(a, b).agrees, (a, b)
    sampled = sorted({item.answer for item in sample_items(600, seed=5)})
    for a, b in zip(sampled, sampled[1:]):
        assert not agreement(a, b).agrees, (a, b)


def test_worked_answers_agree_on_their_final_number_not_their_words():
    """Two long worked answers to problems with other numbers share most words: their final
    values decide (the stated last sentence, or a `#### N` line), not the word overlap."""
    first = "First find the total: 4 + 2 + 1 = 7 stocking stuffers. Then 7 * 3 = 21. The answer is 21."
    reworded = "Each kid gets 7 things, and there are 3 kids, so she buys 21 in total. So the answer is 21."
    other_numbers = "Each kid gets 8 things, and there are 3 kids, so she buys 24 in total. So the answer is 24."
    assert agreement(first, reworded).agrees
    assert not agreement(reworded, other_numbers).agrees
    assert not agreement(other_numbers, first).agrees
    assert agreement("21", first).agrees and not agreement("24", first).agrees
    assert agreement("4 + 2 + 1 = 7; 7 * 3 = 21\n#### 21", "The answer is 21.").agrees
    assert not agreement("4 + 2 + 1 = 7; 7 * 3 = 21\n#### 21", "The answer is 24.").agrees


def _embed_with(cosines: dict[frozenset[str], float]):
    """A stand-in encoder: unit vectors whose cosine for each known pair is the one given."""
    import numpy as np

    def embed(texts: list[str]) -> np.ndarray:
        cos = cosines[frozenset(texts)]
        return np.array([[1.0, 0.0], [cos, (1 - cos * cos) ** 0.5]])

    return embed


def test_free_text_said_in_other_words_agrees_with_an_encoder_and_a_changed_fact_never_does():
    """The teacher never answers twice alike: with a sentence encoder two free-text answers agree
    when they mean the same (cosine >= MEANING_THRESHOLD) and no number, negation, name or piece
    of code differs. The cosines are those all-MiniLM-L6-v2 gives these pairs
    (bench/agreement_pairs.py measures them with the real encoder)."""
    from shammah_tui.pipeline.agreement import MEANING_THRESHOLD

    same = [
        ("Paris is the capital of France.", "France's capital city is Paris.", 0.967),
        ("Use my_list[::-1] to get a reversed copy, or my_list.reverse() to reverse in place.",
         "You can reverse a list in place with my_list.reverse(), or make a reversed copy with slicing: "
         "my_list[::-1].", 0.926),
        ("To undo the last commit but keep the changes, run git reset --soft HEAD~1.",
         "Run git reset --soft HEAD~1: it removes the last commit and keeps your changes staged.", 0.872),
    ]
    different = [
        ("Paris is the capital of France.", "Lyon is the capital of France.", 0.696),  # 5 of 6 words shared
        ("To undo the last commit but keep the changes, run git reset --soft HEAD~1.",
         "To discard the last commit and its changes, run git reset --hard HEAD~1.", 0.929),  # a flag
        ("Water boils at 100 degrees Celsius at sea level.", "Water boils at 90 degrees Celsius at sea level.", 0.98),
        ("The function is thread-safe.", "The function is not thread-safe.", 0.95),
    ]
    embed = _embed_with({frozenset((a, b)): cos for a, b, cos in same + different})
    for a, b, _ in same:
        verdict = agreement(a, b, embed)
        assert verdict.agrees and verdict.method == "meaning" and verdict.score >= MEANING_THRESHOLD, (a, b)
    for a, b, _ in different:
        assert not agreement(a, b, embed).agrees, (a, b)
    # Without an encoder, shared words decide, and a changed name still disagrees.
    assert not agreement("Paris is the capital of France.", "Lyon is the capital of France, of course.").agrees


def test_answers_that_open_and_close_differently_say_the_same():
    """The teacher opens and closes every answer its own way; courtesy sentences made only of
    discourse markers and politeness formulas are set aside, what remains decides."""
    body = "A list comprehension builds the whole list in memory. A generator expression yields one item at a time."
    openings = ["", "Certainly!", "Great question.", "Here's a quick overview:", "Of course."]
    closings = ["", "I hope this helps!", "Let me know if you have any other questions.", "Happy to help."]
    wordings = [f"{o} {body} {c}".strip() for o in openings for c in closings]
    for a in wordings:
        for b in wordings:
            assert agreement(a, b).agrees, (a, b)
    # A short answer or a final value behind a courtesy sentence is still read as one.
    assert agreement("Paris", "Sure! It is Paris. Hope that helps.").agrees
    assert agreement("Sure. The answer is 21.", "21").agrees and not agreement("Sure. The answer is 21.", "24").agrees


def test_a_courtesy_sentence_never_hides_what_an_answer_says():
    """Only sentences made wholly of courtesy words go, and only at the edges: a yes/no, a
    negation, a number or any other word keeps its sentence, and an answer that is nothing but
    courtesy is compared as it is."""
    from shammah_tui.pipeline.agreement import without_courtesy

    assert without_courtesy("Sure. Use a tuple. Hope that helps.") == "Use a tuple."
    for kept in ("No. That is not it.", "Yes, of course.", "Here are 3 of them.", "Good question."):
        assert without_courtesy(kept) == kept
    assert without_courtesy("Here are 3 of them. Good question.") == "Here are 3 of them."
    assert without_courtesy("It is fast. Sure. It is safe.") == "It is fast. Sure. It is safe."
    assert not agreement("No. The function is thread-safe.", "Yes. The function is thread-safe.").agrees
    assert not agreement("Sure! Paris is the capital.", "Sure! Lyon is the capital.").agrees
