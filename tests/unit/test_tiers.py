"""The tiers as plug-ins over one frozen decision state: one loop, no hidden veto, no torn read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from shammah_tui.pipeline.learned import LearnedIndex
from shammah_tui.pipeline.local import DecisionState, LocalAnswerer
from shammah_tui.pipeline.regions import MIN_REGION_LABELS, neural_regions, pattern_of
from shammah_tui.core.text import normalize_query
from shammah_tui.pipeline.thresholds import Thresholds
from shammah_tui.pipeline.tiers import TIER_PLUGINS
from shammah_tui.core.records import LearnedAnswer
from tests.fake_models import FakeModels

OPEN = Thresholds(router=0.0, validator=0.5, router_trained=True, validator_trained=True,
                  generator_trained=True, estimated_error=0.01,
                  open_regions=frozenset({pattern_of("Who painted the Mona Lisa?"), pattern_of("What is 12*7?")}))


def answerer(models: FakeModels | None, order: tuple, thresholds: Thresholds = OPEN,
             rows: list[LearnedAnswer] | None = None) -> LocalAnswerer:
    return LocalAnswerer(DecisionState(models, LearnedIndex(rows), thresholds, order))  # type: ignore[arg-type]


def decide(local: LocalAnswerer, query: str):
    return local.decide(query, normalize_query(query), "", "")


def test_every_tier_name_has_one_plug_in_ranked_by_cost() -> None:
    assert [TIER_PLUGINS[t].cost for t in ("template", "learned", "neural")] == [0, 1, 2]
    assert all(name == plugin.name for name, plugin in TIER_PLUGINS.items())


def test_a_tier_outside_the_order_takes_no_part_in_the_decision() -> None:
    """With the template tier off, its calculator neither answers nor vetoes the generator."""
    wrong = FakeModels("85")
    off = decide(answerer(wrong, ("learned", "neural")), "What is 12*7?")
    assert (off.source, off.answer) == ("neural", "85")
    assert off.router_features[2] == 0.0  # the router is not told a template matches either
    on = decide(answerer(wrong, ("learned", "neural", "template")), "What is 12*7?")
    assert on.answer is None or on.source == "template"  # in the order, the rule may contradict
    assert on.note == "neural answer contradicts an exact answer"


def test_the_quick_and_threaded_passes_run_the_same_loop() -> None:
    row = LearnedAnswer(7, normalize_query("Who wrote Hamlet?"), "", "Who wrote Hamlet?", "Shakespeare", "forward")
    local = answerer(None, ("template", "learned", "neural"), rows=[row])
    for query, source in (("What is 12*7?", "template"), ("Who wrote Hamlet?", "learned")):
        quick = local.decide_without_models(query, normalize_query(query), "")
        full = decide(local, query)
        assert quick is not None and (quick.source, quick.answer, quick.credited) == (
            full.source, full.answer, full.credited) and quick.source == source
    assert local.decide_without_models("Who painted it?", normalize_query("Who painted it?"), "") is None


def test_credit_goes_only_to_what_no_cheaper_tier_would_have_given() -> None:
    local = answerer(FakeModels("84"), ("neural", "template"))
    decision = decide(local, "What is 12*7?")
    assert (decision.source, decision.credited) == ("neural", False)
    assert decide(local, "Who painted the Mona Lisa?").credited


def test_a_decision_sees_the_whole_old_state_or_the_whole_new_one() -> None:
    """Calibration publishes while a decision is mid-way (the generator is decoding): the decision
    keeps the state it started with; one started after sees the new state whole."""
    models = FakeModels("Leonardo", p=0.9, confidence=0.3)
    local = answerer(models, ("neural",), OPEN)
    alone_old = decide(local, "Who painted the Mona Lisa?")
    assert alone_old.source == "neural"  # old: validator p 0.9 >= 0.5

    models.resume.clear()
    models.started.clear()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(decide, local, "Who painted the Mona Lisa?")
        assert models.started.wait(10)
        # New calibration, field by field in meaning: the other score, a higher threshold.
        local.update_thresholds(neural_score="confidence", validator=0.6, estimated_error=0.02)
        models.resume.set()
        mid = running.result(10)
    assert (mid.source, mid.answer, mid.thresholds) == (alone_old.source, alone_old.answer, OPEN)
    after = decide(local, "Who painted the Mona Lisa?")
    assert after.answer is None  # new: confidence 0.3 < 0.6
    assert after.thresholds == Thresholds(**{**OPEN.__dict__, "neural_score": "confidence", "validator": 0.6,
                                            "estimated_error": 0.02})


def test_concurrent_publishers_lose_no_change() -> None:
    local = answerer(None, ("template",))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: local.update_thresholds(router=0.1) if i % 2 else
                      local.update_thresholds(acceptance=0.7), range(200)))
    assert (local.thresholds.router, local.thresholds.acceptance) == (0.1, 0.7)


def test_the_validator_is_never_fitted_on_a_label_that_calibrates_it() -> None:
    """Spot-checked and held-back answers are calibration evidence: kept out of the fit, so the
    points the threshold is calibrated on were never fitted on (validator fit ∩ calibration = ∅)."""
    from shammah_tui.core.records import Label
    from shammah_tui.training.job import CALIBRATING_ORIGINS, fit_labels

    labels = [Label(f"q{i}", "a", source, 1, origin, "", 0.9, [0.9, 1.0, 0.0])
              for i, (source, origin) in enumerate(
                  (s, o) for s in ("neural", "router") for o in ("pre_eval", "self_eval", "held_out", "spot_check"))]
    fitted = fit_labels(labels[:4], labels[4:])
    calibrating = {l.query for l in labels if l.source == "neural" and l.origin in CALIBRATING_ORIGINS}
    assert calibrating and not calibrating & {l.query for l in fitted}
    assert {l.origin for l in fitted if l.source == "router"} >= CALIBRATING_ORIGINS  # the router may learn from them


def test_the_generator_serves_only_in_a_region_whose_own_evidence_opened_it() -> None:
    """Past the pooled threshold is not enough: "What is 20% of 580?" is a pattern with no evidence,
    so its draft is kept (for the forward to compare) and not served."""
    local = answerer(FakeModels("500", p=0.99, confidence=0.99), ("neural",))
    new = decide(local, "What is 20% of 580?")
    assert new.answer is None and new.neural_answer == "500" and "region closed" in new.note
    assert decide(local, "Who painted the Mona Lisa?").source == "neural"


def test_a_region_opens_on_enough_right_answers_and_not_on_pooled_evidence() -> None:
    taught = [f"What is {i}*{i + 1}?" for i in range(40)]
    new = [f"What is {i}% of {i * 10}?" for i in range(12)]
    queries = taught + new
    served = [True] * len(queries)
    agreed = [True] * len(taught) + [i % 3 != 0 for i in range(len(new))]  # a third of the new one wrong
    regions, open_regions = neural_regions(queries, served, agreed, 0.02)
    assert open_regions == {pattern_of(taught[0])}
    assert regions[pattern_of(new[0])][:2] == [12.0, 4.0]
    few, opened = neural_regions(taught[: MIN_REGION_LABELS - 1], [True] * (MIN_REGION_LABELS - 1),
                                 [True] * (MIN_REGION_LABELS - 1), 0.02)
    assert not opened  # all right, but too few to bound the error
    unserved, opened = neural_regions(taught, [False] * len(taught), [True] * len(taught), 0.02)
    assert not opened and not unserved  # answers below the threshold are no evidence for what it serves
