"""The learned-answer index: answers the teacher gave before, looked up by similarity.

The store holds the rows; this keeps them in memory with an inverted word index
so a lookup touches only entries that share a word with the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shammah_tui.pipeline.text import SIMILARITY_THRESHOLD, query_similarity
from shammah_tui.core.records import LearnedAnswer

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class LearnedHit:
    """The best stored answer for a query."""

    entry: LearnedAnswer
    similarity: float

    @property
    def exact(self) -> bool:
        return self.similarity >= 1.0


class LearnedIndex:
    """In-memory view of `learned_answers`, kept in step by the engine."""

    def __init__(self, rows: list[LearnedAnswer] | None = None) -> None:
        self._exact: dict[tuple[str, str], LearnedAnswer] = {}
        self._by_word: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in rows or []:
            self.add(row)

    def __len__(self) -> int:
        return len(self._exact)

    def add(self, row: LearnedAnswer) -> None:
        key = (row.norm_query, row.context_key)
        self._exact[key] = row
        for word in set(_WORD.findall(row.norm_query)):
            self._by_word.setdefault((row.context_key, word), set()).add(key)

    def lookup(self, norm_query: str, context_key: str, *, exclude_self: bool = False) -> LearnedHit | None:
        """Exact match first, else the most similar entry in the same context.

        `exclude_self` skips the exact entry (self-evaluation asks "what if this
        question were new?").
        """
        if not exclude_self:
            row = self._exact.get((norm_query, context_key))
            if row is not None:
                return LearnedHit(row, 1.0)
        candidates: set[tuple[str, str]] = set()
        for word in set(_WORD.findall(norm_query)):
            candidates |= self._by_word.get((context_key, word), set())
        candidates.discard((norm_query, context_key))
        best: LearnedHit | None = None
        for key in candidates:
            score = query_similarity(norm_query, key[0])
            if best is None or score > best.similarity:
                best = LearnedHit(self._exact[key], min(score, 0.999))
        return best

    def confident(self, hit: LearnedHit | None) -> bool:
        return hit is not None and hit.similarity >= SIMILARITY_THRESHOLD
