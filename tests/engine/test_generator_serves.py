"""The generator learns a small skill and serves it through the bound, and serves nothing of a
pattern that has no evidence of its own (the neural tier end to end, on a real engine)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.engine import Engine
from shammah_tui.pipeline.regions import pattern_of
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher
from tests.datadirs import seed_data_dir

#: Enough steps for the generator to copy a short word (measured: 60 steps open no region).
SETTINGS = dataclasses.replace(Settings(teacher="offline"), steps_per_run=120, max_new_tokens=12,
                               spot_check_rate=0.0, auto_train=False, tier_order=("learned", "neural"))
NO_SIDE_EFFECTS = AskPolicy(auto_train="off", spot_check="off")


def word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 5)))


@pytest.mark.slow
async def test_the_generator_learns_to_copy_a_word_and_serves_only_that_pattern(tmp_path, models_seed) -> None:
    engine = await Engine.open(seed_data_dir(tmp_path / "data", models_seed), SETTINGS, OfflineTeacher(seed=0))
    try:
        await engine.load_models()
        rng = random.Random(0)
        taught = sorted({word(rng) for _ in range(400)})  # sorted: a set's order changes with the hash seed
        assert await engine.teaching.learn_pairs([(f"Repeat the word '{w}'.", w) for w in taught], "tool")
        report = await engine.train("test")
        assert report is not None and report.status == "done"

        thresholds = engine.local.thresholds
        print(f"\nregions after one run: {thresholds.neural_regions}")
        copy = pattern_of("Repeat the word 'abc'.")
        assert copy in thresholds.open_regions  # opened by its own out-of-sample evidence
        served = wrong = 0
        for w in [w for w in (word(rng) for _ in range(200)) if w not in taught][:30]:
            result = await engine.ask(Question(f"Repeat the word '{w}'."), NO_SIDE_EFFECTS)
            if result.source == "neural":
                served += 1
                wrong += result.answer != w
        assert served >= 5 and wrong <= served // 10, (served, wrong)

        # A new pattern with no evidence, where the copying generator is confidently wrong ("abc"
        # for "cba"): drafts the threshold alone would serve are held back by their region.
        held_back = 0
        for w in [w for w in (word(rng) for _ in range(200)) if w not in taught][:30]:
            question = f"Repeat the word '{w}' backwards."
            decision = await engine.teaching.local_only(question)
            assert decision.source != "neural", decision
            held_back += decision.note.startswith("region closed")
        print(f"new-pattern drafts past the threshold, held back by their region: {held_back} of 30")
        assert held_back >= 5
        assert pattern_of("Repeat the word 'abc' backwards.") not in thresholds.open_regions
    finally:
        await engine.close()
