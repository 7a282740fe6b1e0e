"""Drawing questions: random items, fixed held-out sets, the tokenizer corpus, a realistic stream."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from shammah_tui.curriculum.base import CurriculumItem, Family, Question, phrase
from shammah_tui.curriculum.registry import FAMILIES


def _families(names: Iterable[str] | None) -> list[Family]:
    chosen = list(FAMILIES) if names is None else list(names)
    unknown = [n for n in chosen if n not in FAMILIES]
    if unknown:
        raise KeyError(f"unknown curriculum families: {unknown}")
    return [FAMILIES[n] for n in chosen]


def sample_items(n: int, seed: int, families: Iterable[str] | None = None) -> list[CurriculumItem]:
    """`n` random items over `families` (all by default), deterministic for a seed."""
    rng = random.Random(seed)
    pool = _families(families)
    return [rng.choice(pool).sample(rng) for _ in range(n)]


def _distinct_questions(family: Family, count: int, rng: random.Random) -> list[Question]:
    """Up to `count` questions with distinct keys (fewer when the family is smaller)."""
    seen: dict[str, Question] = {}
    attempts = 0
    while len(seen) < count and attempts < count * 20:
        attempts += 1
        question = family.sample_question(rng)
        seen.setdefault(question.key, question)
    return list(seen.values())


def held_out_items(family: str, n: int, seed: int) -> list[CurriculumItem]:
    """`n` items of one family for evaluation: deterministic, distinct keys where the
    family has enough, each in a random phrasing. Uses its own random stream, so it
    does not follow `sample_items` or `stream` for the same seed."""
    source = _families([family])[0]
    rng = random.Random(f"held-out:{family}:{seed}")
    distinct = _distinct_questions(source, n, rng)
    questions = list(distinct)
    while distinct and len(questions) < n:  # a small family: reuse keys in other phrasings
        questions.append(rng.choice(distinct))
    return [phrase(q, rng) for q in questions[:n]]


#: Sampled questions per family in `corpus_texts`, on top of every finite question.
CORPUS_SAMPLES_PER_FAMILY = 250


def corpus_texts() -> Iterator[str]:
    """Questions and answers across all families, one text per line, deterministic.

    Every question of the finite families once (in a random phrasing), then
    `CORPUS_SAMPLES_PER_FAMILY` sampled items per family, each as query then
    answer: about five thousand lines to build a tokenizer from.
    """
    for name, family in FAMILIES.items():
        rng = random.Random(f"corpus:{name}")
        for question in family.questions() or []:
            item = phrase(question, rng)
            yield item.query
            yield item.answer
        for _ in range(CORPUS_SAMPLES_PER_FAMILY):
            item = family.sample(rng)
            yield item.query
            yield item.answer


def stream(
    n: int = 500,
    seed: int = 0,
    pool_size_per_family: int = 25,
    repeat_rate: float = 0.2,
    paraphrase_rate: float = 0.3,
    zipf_exponent: float = 0.8,
    families: Iterable[str] | None = None,
) -> list[CurriculumItem]:
    """A realistic query stream over a limited pool of underlying questions.

    The pool holds up to `pool_size_per_family` distinct questions per family,
    shuffled into one popularity ranking (weight 1 / rank^zipf_exponent). Each
    query is, with probability `repeat_rate`, an exact repeat of an earlier query;
    with probability `paraphrase_rate`, an earlier question in a phrasing not used
    yet (when one is left); otherwise a fresh draw from the pool by popularity
    (which may itself hit an earlier question). Earlier questions are picked by
    popularity too. Deterministic for a seed.
    """
    rng = random.Random(seed)
    pool = [q for family in _families(families)
            for q in _distinct_questions(family, pool_size_per_family, rng)]
    rng.shuffle(pool)
    weights = [1.0 / (rank + 1) ** zipf_exponent for rank in range(len(pool))]
    used: dict[int, list[str]] = {}  # pool index → phrasings emitted so far
    items: list[CurriculumItem] = []
    for _ in range(n):
        u = rng.random()
        seen = sorted(used)
        if seen and u < repeat_rate + paraphrase_rate:
            index = rng.choices(seen, [weights[i] for i in seen])[0]
            question = pool[index]
            fresh = [p for p in question.phrasings if p not in used[index]]
            if u < repeat_rate or not fresh:
                query = rng.choice(used[index])
            else:
                query = rng.choice(fresh)
        else:
            index = rng.choices(range(len(pool)), weights)[0]
            question = pool[index]
            query = rng.choice(question.phrasings)
        if query not in used.setdefault(index, []):
            used[index].append(query)
        items.append(CurriculumItem(query, question.answer, question.family, question.key))
    return items
