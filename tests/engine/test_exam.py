"""The exam end to end: forwarded questions held out of every run, answered by each new model,
are the out-of-sample evidence that run's calibration starts from."""

from __future__ import annotations

import dataclasses

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.curriculum import sample_items
from shammah_tui.engine import Engine
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher
from shammah_tui.training.exam import exam
from tests.datadirs import seed_data_dir

SETTINGS = dataclasses.replace(Settings(teacher="offline"), steps_per_run=8, auto_train=False, spot_check_rate=0.0)


async def test_exam_questions_are_never_trained_and_each_run_answers_them_anew(tmp_path, models_seed) -> None:
    engine = await Engine.open(seed_data_dir(tmp_path / "data", models_seed), SETTINGS, OfflineTeacher(seed=0))
    try:
        await engine.load_models()
        for item in sample_items(60, seed=5):
            await engine.ask(Question(item.query), AskPolicy(auto_train="off", spot_check="off"))
        held = exam(await engine.store.examples("queued"))
        assert len(held) >= 5
        held_queries = {e.query for e in held}
        for _ in range(2):
            report = await engine.train("test")
            assert report is not None and report.status == "done"
            assert not {e.id for e in held} & set(report.trained_ids)
            run_id = await engine.store.generator_run()
            points = await engine.store.calibration_points("validator", 5000)
            answered = {p.query for p in points if p.generator_run == run_id and p.origin == "held_new"}
            assert answered and answered <= held_queries  # every exam question with a draft, and only those
        assert not held_queries & set(await engine.store.trained_queries())
        assert {e.id for e in held} <= {e.id for e in await engine.store.examples("queued")}
        assert await engine.coordinator.trainable_queued() == 0
    finally:
        await engine.close()
