"""What a run replays: earlier examples, drawn by stratum so new traffic cannot crowd out what was taught.

A uniform draw over everything trained before gives each kind of question the share it has in the
store; after a stream of forwarded traffic of other patterns, a skill's few thousand taught
examples become a sliver of the replay and the generator forgets it. Here the trained examples are
split into strata — each skill (by the question's canonical key, whatever its wording), the rest of
what a teacher taught, and the traffic forwarded to the teacher. The traffic's share of the replay
is its share of the store up to MAX_TRAFFIC_SHARE; the other strata split the rest by their sizes
(the mix the teachers taught), each at least MIN_STRATUM_SHARE. A run's batches draw their
replayed part by these shares (`ReplayPool.draw`).

A skill's held-out questions are refused at queueing; one that reached the store anyway (an older
data dir, a direct insert) is still never replayed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence

from shammah_tui.core.records import TrainingExample
from shammah_tui.curriculum.skills import SKILLS, held_out_canonical_keys
from shammah_tui.pipeline.canonical import canonical_key

#: Origin of the examples a teacher wrote on purpose (`generate_training_data`).
TAUGHT_ORIGIN = "tool"
#: The stratum of examples a teacher wrote that are no skill's (the curriculum's families, Claude's
#: topics), and that of everything else: answers forwarded to the teacher, traffic.
TAUGHT, TRAFFIC = "taught", "traffic"
#: Most of the replayed examples the traffic takes, however much of it was trained: the rest keeps
#: the mix the teachers taught (a curriculum weights a weak skill on purpose).
MAX_TRAFFIC_SHARE = 0.5
#: Least share of the replayed examples each other stratum keeps while it has examples, so a skill
#: taught with few examples is never drowned by one taught with many.
MIN_STRATUM_SHARE = 0.05


def stratum_of(query: str, origin: str) -> str | None:
    """The stratum of a trained example: its skill, else taught or traffic by its origin; None for
    a held-out question in any wording (never replayed, whatever put it in the store)."""
    key = canonical_key(query)
    if key in held_out_canonical_keys():
        return None
    kind = key.split(":", 1)[0]
    if kind in SKILLS:
        return kind
    return TAUGHT if origin == TAUGHT_ORIGIN else TRAFFIC


def stratum_shares(sizes: Mapping[str, int], floor: float = MIN_STRATUM_SHARE,
                   traffic_cap: float = MAX_TRAFFIC_SHARE) -> dict[str, float]:
    """Each non-empty stratum's share of the replay.

    The traffic: its share of the examples, at most `traffic_cap`. The others split the rest by
    their sizes, each raised to at least `floor` (what a raised one takes comes off the others in
    proportion)."""
    present = {name: n for name, n in sizes.items() if n > 0}
    total = sum(present.values())
    if not total:
        return {}
    kept = {name: n for name, n in present.items() if name != TRAFFIC}
    if not kept:
        return {TRAFFIC: 1.0}
    shares = {TRAFFIC: min(present[TRAFFIC] / total, traffic_cap)} if TRAFFIC in present else {}
    mass = 1.0 - sum(shares.values())
    floor = min(floor, mass / len(kept))
    raised: set[str] = set()
    # Raising one stratum lowers the others: repeat until none is under the floor.
    while True:
        rest = sum(n for name, n in kept.items() if name not in raised)
        left = mass - floor * len(raised)
        low = {name for name, n in kept.items() if name not in raised and n * left / rest < floor}
        if not low:
            break
        raised |= low
    shares.update({name: floor if name in raised else n * left / rest for name, n in kept.items()})
    return shares


def _allot(shares: Mapping[str, float], n: int, rng: random.Random) -> dict[str, int]:
    """`n` slots by the shares: each its floor, the remainders drawn in proportion (so small batches
    still give a small stratum its share on average)."""
    counts = {name: math.floor(share * n) for name, share in shares.items()}
    left = n - sum(counts.values())
    if left > 0:
        names = list(shares)
        remainders = [shares[name] * n - counts[name] for name in names]
        for name in rng.choices(names, remainders, k=left) if sum(remainders) > 0 else []:
            counts[name] += 1
    return counts


class ReplayPool:
    """Trained examples by stratum, with each stratum's share of a run's replayed examples."""

    def __init__(self, strata: Mapping[str, Sequence[TrainingExample]], shares: Mapping[str, float]) -> None:
        self.strata = {name: list(items) for name, items in strata.items() if items and shares.get(name, 0) > 0}
        total = sum(shares[name] for name in self.strata)
        self.shares = {name: shares[name] / total for name in self.strata}

    @classmethod
    def uniform(cls, examples: Sequence[TrainingExample]) -> ReplayPool:
        """One stratum: every example as likely as any other."""
        return cls({"all": examples}, {"all": 1.0})

    def draw(self, n: int, rng: random.Random) -> list[TrainingExample]:
        """`n` replayed examples, each stratum its share: distinct within a stratum while it has
        enough, else with repeats."""
        out: list[TrainingExample] = []
        for name, k in _allot(self.shares, n, rng).items():
            items = self.strata[name]
            out += rng.sample(items, k) if len(items) >= k else [rng.choice(items) for _ in range(k)]
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self.strata.values())

    def __iter__(self) -> Iterator[TrainingExample]:
        for items in self.strata.values():
            yield from items


def choose_replay(kinds: Sequence[tuple[int, str, str]], limit: int, rng: random.Random,
                  floor: float = MIN_STRATUM_SHARE) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Which trained examples a run loads to replay, by stratum, and each stratum's share.

    `kinds` is (id, query, origin) of every trained example. The shares come from the strata's
    sizes in the whole store; at most about `limit` ids are loaded, each stratum's part of them by
    its share (all of a stratum when it has fewer).
    """
    by: dict[str, list[int]] = {}
    for example_id, query, origin in kinds:
        name = stratum_of(query, origin)
        if name is not None:
            by.setdefault(name, []).append(example_id)
    shares = stratum_shares({name: len(ids) for name, ids in by.items()}, floor)
    chosen = {name: ids if len(ids) <= math.ceil(shares[name] * limit) else
              rng.sample(ids, math.ceil(shares[name] * limit)) for name, ids in by.items()}
    return chosen, shares
