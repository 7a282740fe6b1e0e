"""The exam: forwarded questions kept out of training, asked again after every run.

Every run changes the model, and evidence about the old model says nothing certain about the new
one: a region of traffic (regions.py) opens only on labels of the model in use. Labels of
questions a model trained on are in-sample and never count. So without questions that no model
ever trains on, each run would start every region from nothing, and a region would have to gather
its whole evidence between two runs (with runs every 32 forwards, it never could).

One forwarded question in EXAM_SHARE (chosen by a hash of its canonical form, so a rewording or
a commuted operand falls on the same side) is held out of training while it is among the newest
EXAM_SIZE such questions; after each run the new model answers all of them, out of sample. Older
ones leave the exam and are trained on like any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from shammah_tui.core.records import TrainingExample
from shammah_tui.pipeline.canonical import canonical_key

if TYPE_CHECKING:
    from shammah_tui.store import Store

#: One forwarded question in this many is in the exam's share.
EXAM_SHARE = 4
#: At most this many questions (the newest) are held out at once; each run answers them all.
EXAM_SIZE = 256
#: Only the user's traffic: questions someone taught on purpose are always trained on.
EXAM_ORIGINS = frozenset({"forward"})


@lru_cache(maxsize=65536)  # asked for every queued example after every question
def in_exam_share(query: str) -> bool:
    digest = hashlib.blake2b(canonical_key(query).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % EXAM_SHARE == 0


def exam(queued: Sequence[TrainingExample]) -> list[TrainingExample]:
    """The queued examples held out of this run: the newest EXAM_SIZE of the exam's share."""
    chosen = [e for e in queued if e.origin in EXAM_ORIGINS and in_exam_share(e.query)]
    return sorted(chosen, key=lambda e: e.id)[-EXAM_SIZE:]


async def queue_counts(store: Store) -> dict[str, int]:
    """The store's example counts with the exam apart: "queued" is what a run would train on."""
    counts = await store.example_counts()
    held = len(exam(await store.examples("queued")))
    return {**counts, "queued": counts["queued"] - held, "exam": held}
