"""Replay keeps what was taught: a run's replayed examples give each taught skill its share however
much traffic the store was flooded with, and never a held-out question (a real engine and run)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from shammah_tui.curriculum.skills import SKILLS
from shammah_tui.engine import Engine
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher
from shammah_tui.training.replay import MAX_TRAFFIC_SHARE, ReplayPool, stratum_of, stratum_shares
from tests.datadirs import seed_data_dir

#: A short run: what is checked is what its batches replay, not what it learns.
SETTINGS = dataclasses.replace(Settings(teacher="offline"), steps_per_run=40, max_new_tokens=4,
                               spot_check_rate=0.0, auto_train=False)
TRAFFIC = 3000


async def _mark_trained(engine: Engine) -> None:
    queued = await engine.store.examples("queued")
    run_id = await engine.store.start_run("test", "cpu")
    await engine.store.finish_run(run_id, status="done", examples=len(queued), steps=0, examples_per_s=None,
                                  losses={}, trained_ids=[e.id for e in queued])


async def test_a_run_replays_each_taught_skill_by_its_share_in_a_store_flooded_with_traffic(
        tmp_path, models_seed, monkeypatch) -> None:
    engine = await Engine.open(seed_data_dir(tmp_path / "data", models_seed), SETTINGS, OfflineTeacher(seed=0))
    try:
        await engine.load_models()
        taught = {name: SKILLS[name].training(n, seed="replay-test")
                  for name, n in (("arithmetic", 60), ("words", 20), ("leap", 20))}
        await engine.teaching.learn_pairs([(i.query, i.answer) for items in taught.values() for i in items], "tool")
        # A held-out question that reached the store as trained (the queue refuses one; an older
        # data dir or a direct insert need not have): it must never be replayed.
        held = SKILLS["arithmetic"].held_out()[0]
        await engine.store.learn_many([{"query": held.query, "norm_query": held.query.lower(), "context": "",
                                        "context_key": "", "answer": held.answer}], "forward")
        await _mark_trained(engine)
        # The flood: thousands of forwarded questions of patterns no skill has, all trained.
        await engine.teaching.learn_pairs([(f"What is {n} in base 7?", str(n)) for n in range(TRAFFIC)], "forward")
        await _mark_trained(engine)
        await engine.teaching.learn_pairs([(f"What is {n} in base 5?", str(n)) for n in range(16)], "forward")

        replayed: list = []
        draw = ReplayPool.draw

        def spy(self: ReplayPool, n, rng):
            out = draw(self, n, rng)
            replayed.extend(out)
            return out

        monkeypatch.setattr(ReplayPool, "draw", spy)
        report = await engine.train("test")
        assert report is not None and report.status == "done"
    finally:
        await engine.close()

    strata = Counter(stratum_of(e.query, e.origin) for e in replayed)
    share = {name: n / len(replayed) for name, n in strata.items()}
    print(f"\nreplayed {len(replayed)}: {dict(strata)}")
    # A dozen new examples next to thousands trained: three quarters of each of the 40 batches replayed.
    assert SETTINGS.step_batch_size == 64 and len(replayed) == 40 * 48
    assert held.query not in {e.query for e in replayed} and None not in strata
    # Uniform over the store, arithmetic would be 60 of ~3,100 (2%); the taught mix keeps it at
    # 60 of the 100 taught, of the half the traffic may take at most.
    expected = stratum_shares({"arithmetic": 60, "words": 20, "leap": 20, "traffic": TRAFFIC})
    assert expected["traffic"] == MAX_TRAFFIC_SHARE
    for name in taught:
        assert share.get(name, 0.0) >= 0.8 * expected[name], (name, share)
    assert share["traffic"] <= MAX_TRAFFIC_SHARE + 0.05


def test_shares_keep_the_taught_mix_and_a_floor_for_each_stratum() -> None:
    # Little traffic: every stratum by its size.
    small = stratum_shares({"arithmetic": 600, "words": 200, "leap": 100, "taught": 100, "traffic": 0})
    assert small == pytest.approx({"arithmetic": 0.6, "words": 0.2, "leap": 0.1, "taught": 0.1})
    # A flood: traffic capped, the rest in the taught proportions, a small stratum at its floor.
    flooded = stratum_shares({"arithmetic": 800, "words": 190, "leap": 10, "traffic": 100_000}, floor=0.05)
    assert flooded["traffic"] == MAX_TRAFFIC_SHARE
    assert flooded["leap"] == 0.05
    assert sum(flooded.values()) == pytest.approx(1)
    assert flooded["arithmetic"] / flooded["words"] == pytest.approx(800 / 190)
