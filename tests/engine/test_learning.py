"""Learning for real: the curriculum stream, forwarded novelties, stored losses, repeats, context."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shammah_tui.core.ask import Question
from shammah_tui.engine import Engine
from shammah_tui.settings import Settings
from shammah_tui.core.teaching import TeachSummary, TeacherReply, Turn
from shammah_tui.teachers.base import Teacher
from shammah_tui.teachers.offline import OfflineTeacher
from shammah_tui.core.runs import improvement_pct
from shammah_tui.benchmark.learning_stream import StreamOutcome, local_accuracy, local_share, run_stream

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> StreamOutcome:
    """The 500-query stream, run once for the module (about 40 s on 2 cores)."""
    # Batches of 24: the stream's 67 forwards less the exam's quarter make two runs.
    outcome = asyncio.run(run_stream(tmp_path_factory.mktemp("stream"), batch_size=24))
    curve = [f"{local_share(outcome, i, i + 50):.0%}" for i in range(0, 500, 50)]
    print(f"\nlocal share per 50 queries: {curve}; local accuracy {local_accuracy(outcome):.1%}; "
          f"by source {outcome.stats.by_source}; {outcome.seconds:.0f} s")
    return outcome


def test_local_share_climbs_from_zero(stream):
    assert stream.sources[0] == "forward"
    assert local_share(stream, 0, 20) < local_share(stream, 400, 500)
    assert local_share(stream, 400, 500) > 0.8


def test_local_answers_agree_with_the_teacher(stream):
    assert local_accuracy(stream) >= 0.95
    assert local_accuracy(stream, 400, 500) >= 0.95


def test_the_cheap_tiers_serve_and_training_runs(stream):
    # Cheapest tier first: on this stream of repeats and rewordings the learned store and the
    # templates answer everything the generator could, so the neural tier earns no credit here.
    used = {s for s in stream.sources if s}
    assert {"learned", "template", "forward"} <= used
    assert stream.stats.training_runs >= 2


def test_generator_loss_on_its_data_falls_by_half(stream):
    before, after = stream.first_examples_loss_before, stream.first_examples_loss_after
    assert before > 0 and after < 0.5 * before, (before, after)


def test_novel_questions_are_forwarded(stream):
    assert stream.novel_total >= 100
    assert stream.novel_local / stream.novel_total <= 0.05


def test_stored_losses_are_the_computed_ones(stream):
    done = [r for r in stream.stored_runs if r.status == "done"]
    assert len(done) == len(stream.runs) >= 2
    for stored, reported in zip(done, stream.runs):
        for model, loss in reported.losses.items():
            row = stored.losses[model]
            assert row.old_loss == pytest.approx(loss.old_loss)
            assert row.new_loss == pytest.approx(loss.new_loss)
            assert row.improvement_pct == pytest.approx(improvement_pct(loss.old_loss, loss.new_loss))
    generator_old = [r.losses["generator"].old_loss for r in done]
    assert len(set(round(x, 6) for x in generator_old)) == len(generator_old)  # not a constant
    assert all(r.losses["generator"].new_loss < r.losses["generator"].old_loss for r in done)


async def test_exact_repeat_is_served_locally_without_training(tmp_path):
    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    try:
        first = await engine.ask(Question("What is the capital of Peru?"))
        second = await engine.ask(Question("what is the capital of peru"))
        assert (first.source, first.answer) == ("forward", "Lima")
        assert (second.source, second.answer) == ("learned", "Lima")
        assert await engine.store.run_count() == 0
    finally:
        await engine.close()


class ContextTeacher(Teacher):
    """Answers a follow-up from the conversation it follows."""

    kind = "test"
    label = "context teacher"

    async def answer(self, query: str, history: Sequence[Turn] = (), on_text=None) -> TeacherReply:
        topic = history[0].text if history else ""
        return TeacherReply(f"{query} / {topic}")

    async def teach(self, tools, request, on_text=None) -> TeachSummary:
        return TeachSummary()


async def test_follow_up_is_keyed_on_its_conversation(tmp_path):
    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False), ContextTeacher())
    try:
        history_a = [("user", "Say hello in Spanish"), ("assistant", "Hola")]
        history_b = [("user", "Say goodbye in Spanish"), ("assistant", "Adiós")]
        a1 = await engine.ask(Question("and in French?", history=history_a))
        b1 = await engine.ask(Question("and in French?", history=history_b))
        a2 = await engine.ask(Question("and in French?", history=history_a))
        assert a1.source == b1.source == "forward"
        assert b1.answer != a1.answer
        assert (a2.source, a2.answer) == ("learned", a1.answer)
    finally:
        await engine.close()


async def test_a_pair_the_acceptance_model_was_fitted_on_never_calibrates(tmp_path):
    from shammah_tui.pipeline.pair_features import pair_features
    from shammah_tui.core.records import PairLabel

    def label(i: int, origin: str = "forward", fitted: bool = False) -> PairLabel:
        features = [float(x) for x in pair_features(f"question {i}?", f"stored {i}?", 0.9)]
        return PairLabel(f"question {i}?", f"stored {i}?", i % 2, features, origin, fitted=fitted)

    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    try:
        coordinator = engine.coordinator
        await coordinator.add_pair_label(label(1))
        await coordinator.add_pair_label(label(2, fitted=True))
        await coordinator.add_pair_label(label(3, origin="paraphrase"))  # the teacher's own groups
        assert [p.query for p in coordinator.pair_labels] == ["question 1?"]
        stored = await engine.store.pair_labels(("forward", "spot_check"), limit=100)
        await engine.store.mark_pair_labels_fitted([p.id for p in stored if p.query == "question 1?"])
    finally:
        await engine.close()
    # Reopened: what a model has since been fitted on is gone from the calibration set.
    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    try:
        assert engine.coordinator.pair_labels == []
    finally:
        await engine.close()


async def test_labels_kept_under_an_older_feature_version_are_recomputed_once_at_open(tmp_path):
    """Weights name the feature version they were fitted on; a label stored under another one is
    recomputed from its texts (its cosine and margin kept), so every calibration point is scored
    on the features the weights know."""
    from shammah_tui.engine.training import FEATURE_VERSION_KEY
    from shammah_tui.pipeline.pair_features import FEATURE_VERSION, pair_features
    from shammah_tui.core.records import PairLabel

    query, stored = "How many iPods does Emmy have?", "What is the number of iPods Emmy has?"
    now = [float(x) for x in pair_features(query, stored, 0.93, other_cosine=0.5)]
    stale = [0.93, 0.43] + [9.0] * (len(now) - 2)
    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    try:
        await engine.store.add_pair_labels([PairLabel(query, stored, 1, stale, "forward")])
        await engine.store.set_value(FEATURE_VERSION_KEY, str(FEATURE_VERSION - 1))
    finally:
        await engine.close()
    engine = await Engine.open(tmp_path, Settings(teacher="offline", auto_train=False), OfflineTeacher())
    try:
        assert engine.coordinator.pair_labels[0].features == pytest.approx(now)
        kept = await engine.store.pair_labels(("forward",), limit=10)
        assert kept[0].features == pytest.approx(now)
        assert await engine.store.get_value(FEATURE_VERSION_KEY) == str(FEATURE_VERSION)
    finally:
        await engine.close()
