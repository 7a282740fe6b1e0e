"""The five teaching tools through `engine.tool_registry()`, on a real engine with the offline teacher.

Every happy path returns text the model can read and structured data; every bad input is an
`is_error` result that changes nothing but the tool-call log; calls are persisted and emitted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import Any

import pytest

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.engine import Engine
from shammah_tui.core.events import ToolCalled
from shammah_tui.paths import DB_NAME
from shammah_tui.settings import Settings
from shammah_tui import curriculum
from shammah_tui.teachers.offline import OfflineTeacher
from shammah_tui.tools.analyze_model import HELD_OUT_SEED
from shammah_tui.tools.limits import MAX_EXAMPLES, MAX_TEXT
from tests.datadirs import seed_data_dir
from tests.fake_models import FakeModels

#: Short runs: a handful of optimizer steps, short generations in the run's evaluations.
SETTINGS = dataclasses.replace(Settings(teacher="offline"), steps_per_run=6, max_new_tokens=16,
                               spot_check_rate=0.0)


@pytest.fixture
async def engine(tmp_path, models_seed):
    eng = await Engine.open(seed_data_dir(tmp_path / "data", models_seed), SETTINGS, OfflineTeacher(seed=0))
    await eng.load_models()
    try:
        yield eng
    finally:
        await eng.close()


async def state(engine: Engine) -> dict[str, Any]:
    """Everything a tool call could change, apart from the tool-call log."""
    store = engine.store
    return {
        "examples": await store.example_counts(),
        "learned": [(a.norm_query, a.context_key, a.answer, a.origin) for a in await store.learned_answers()],
        "runs": [(r.id, r.status) for r in await store.runs()],
        "labels": len(await store.labels()),
        "queries": len(await store.queries()),
        "thresholds": await store.get_value("thresholds"),
        "index": len(engine.local.index),
        "training": engine.training,
    }


def pairs(items) -> list[dict[str, str]]:
    return [{"query": i.query, "answer": i.answer} for i in items]


def stored_runs(engine: Engine) -> dict[int, dict[str, Any]]:
    """training_runs + run_losses straight from the database file (not through the Store)."""
    con = sqlite3.connect(engine.data_dir / DB_NAME)
    try:
        runs: dict[int, dict[str, Any]] = {}
        for run_id, status, steps, trigger in con.execute(
                "SELECT id, status, steps, trigger FROM training_runs ORDER BY id"):
            runs[run_id] = {"status": status, "steps": steps, "trigger": trigger, "losses": {}}
        for run_id, model, old, new, pct in con.execute(
                "SELECT run_id, model, old_loss, new_loss, improvement_pct FROM run_losses"):
            runs[run_id]["losses"][model] = (old, new, pct)
        return runs
    finally:
        con.close()


# --- happy paths -------------------------------------------------------------------------


async def test_query_local_model_answers_and_reports(engine: Engine) -> None:
    reg = engine.tool_registry()
    assert sorted(reg.names) == sorted(["query_local_model", "generate_training_data", "train",
                                        "compare_responses", "analyze_model"])
    before = await state(engine)
    result = await reg.call("query_local_model", {"query": "What is 2+3?"})
    assert not result.is_error
    assert result.data["answer"] == "5" and result.data["source"] == "template"
    assert result.data["latency_ms"] >= 0
    assert "Local answer from template: 5" in result.text and "latency=" in result.text

    # Valid JSON text is accepted like an object (the model sometimes sends strings).
    again = await reg.call("query_local_model", '{"query": "Convert 3 m to feet."}')
    assert not again.is_error and again.data["answer"] == "3 meters = 9.84 feet", again.text

    unknown = await reg.call("query_local_model", {"query": "Who wrote Hamlet?"})
    assert not unknown.is_error
    assert unknown.data["answer"] is None and unknown.data["source"] is None
    assert "would forward" in unknown.text
    # Asking the local models logs nothing and learns nothing.
    assert await state(engine) == before


async def test_exact_answers_are_served_even_when_the_trained_router_would_forward(engine: Engine) -> None:
    """The router gates the generator, whose answers may be wrong; an exact rule's answer and the
    teacher's own answer to the same question are never among them.

    (A router trained only on forwarded questions never sees a template query: it used to send
    arithmetic to the teacher after the first teaching round, and analyze_model's accuracy fell.)
    """
    reg = engine.tool_registry()
    await reg.call("generate_training_data", {"examples": [{"query": "Who wrote Hamlet?", "answer": "Shakespeare"}]})
    engine.local.update_thresholds(router_trained=True, generator_trained=True, validator_trained=True,
                                   validator=0.0,  # the generator's answers would be accepted, if the router let it try
                                   router=1.01)  # no router probability reaches it: the generator is never tried
    stored = await reg.call("query_local_model", {"query": "Who wrote Hamlet?"})
    assert (stored.data["source"], stored.data["answer"]) == ("learned", "Shakespeare")
    exact = await reg.call("query_local_model", {"query": "What is 17*3?"})
    assert (exact.data["source"], exact.data["answer"]) == ("template", "51")
    gated = await reg.call("query_local_model", {"query": "Who painted the Mona Lisa?"})
    assert gated.data["answer"] is None and gated.data["router_p"] is not None
    assert "router: forward" in gated.text and gated.data["neural_answer"] is None


async def test_generate_training_data_queues_the_good_and_rejects_the_rest_with_reasons(engine: Engine) -> None:
    reg = engine.tool_registry()
    result = await reg.call("generate_training_data", {"topic": "mixed", "examples": [
        {"query": "What is the capital of Peru?", "answer": "Lima"},
        {"query": "what is the capital of peru", "answer": "Lima"},       # duplicate once normalized
        {"query": "Who wrote Hamlet?", "answer": "   "},                  # empty answer
        {"query": "\x1b[2J\x07", "answer": "x"},                         # nothing left of the query
        {"query": "Who wrote Hamlet?", "answer": "William Shakespeare"},
        {"query": "Spell 'cat' backwards.", "answer": "\x1b[31m\x1b[0m"},  # answer only escapes
    ]})
    assert not result.is_error, result.text
    assert result.data["queued"] == 2 and result.data["queue_size"] == 2
    reasons = {r["index"]: r["reason"] for r in result.data["rejected"]}
    assert set(reasons) == {1, 2, 3, 5}
    assert "duplicate" in reasons[1]
    assert reasons[2] == "answer is empty" and reasons[5] == "answer is empty"
    assert reasons[3].startswith("query:") and "empty" in reasons[3]
    assert result.text.startswith("Queued 2 example(s); rejected 4. Queue now holds 2.")
    assert "example 1: duplicate" in result.text and "example 2: answer is empty" in result.text

    assert await engine.store.example_counts() == {"queued": 2, "trained": 0}
    learned = {a.query: (a.answer, a.origin) for a in await engine.store.learned_answers()}
    assert learned == {"What is the capital of Peru?": ("Lima", "tool"),
                       "Who wrote Hamlet?": ("William Shakespeare", "tool")}
    # Served at once on an exact repeat.
    hit = await reg.call("query_local_model", {"query": "who wrote hamlet"})
    assert (hit.data["source"], hit.data["answer"]) == ("learned", "William Shakespeare")

    # A call where every example is bad is an error and queues nothing.
    before = await state(engine)
    bad = await reg.call("generate_training_data", {"examples": [{"query": "q?", "answer": ""},
                                                                 {"query": " ", "answer": "a"}]})
    assert bad.is_error and bad.data["queued"] == 0 and len(bad.data["rejected"]) == 2
    assert await state(engine) == before


async def test_train_wait_returns_the_losses_the_store_holds(engine: Engine) -> None:
    reg = engine.tool_registry()
    reports = []
    for round_no in range(2):
        items = curriculum.sample_items(40, 100 + round_no, families=["capitals", "calendar"])
        queued = await reg.call("generate_training_data", {"examples": pairs(items)})
        assert not queued.is_error
        result = await reg.call("train", {"wait": True})
        assert not result.is_error, result.text
        assert result.data["status"] == "done"
        reports.append(result)

        runs = stored_runs(engine)
        run_id = max(runs)
        row = runs[run_id]
        assert row["status"] == "done" and row["trigger"] == "tool"
        assert row["steps"] == result.data["steps"] > 0
        assert set(result.data["losses"]) == set(row["losses"]) == {"generator", "router", "validator"}
        for model, got in result.data["losses"].items():
            old, new, pct = row["losses"][model]
            assert got == {"old_loss": round(old, 4), "new_loss": round(new, 4),
                           "improvement_pct": round(pct, 1), "measured_on": got["measured_on"]}, model
            assert got["measured_on"].startswith("held-out" if model == "generator" else "training batch")
            assert f"- {model}: loss {round(old, 4)} → {round(new, 4)}" in result.text
        gen_old, gen_new, _ = row["losses"]["generator"]
        assert gen_new < gen_old  # a few steps on fresh weights do lower the generator's loss
    assert len(stored_runs(engine)) == 2
    first, second = (r.data["losses"] for r in reports)
    # Measured, not constants: the second run starts from the weights the first left.
    assert first != second
    assert second["generator"]["old_loss"] < first["generator"]["old_loss"]
    assert (await engine.store.example_counts())["trained"] > 0


async def test_train_without_wait_starts_a_background_run(engine: Engine) -> None:
    reg = engine.tool_registry()
    # Nothing queued and nothing trained: refused, no run recorded, nothing started.
    empty = await reg.call("train", {"wait": False})
    assert empty.is_error and "Nothing to train on" in empty.text
    assert not engine.training and stored_runs(engine) == {}

    await reg.call("generate_training_data", {"examples": pairs(curriculum.sample_items(24, 5, ["capitals"]))})
    started = await reg.call("train", {"wait": False})
    assert not started.is_error and started.data == {"started": True}
    assert "background" in started.text
    assert engine.training  # the call returned while the run goes on
    busy = await reg.call("train", {"wait": False})
    assert not busy.is_error and busy.data == {"started": False} and "already in progress" in busy.text

    report = await engine.train()  # joins the background run, does not start another
    assert report is not None and report.status == "done"
    runs = stored_runs(engine)
    assert len(runs) == 1
    (row,) = runs.values()
    assert row["status"] == "done" and row["trigger"] == "tool" and row["losses"]


async def test_analyze_model_reports_accuracy_per_category(engine: Engine) -> None:
    reg = engine.tool_registry()
    result = await reg.call("analyze_model", {})
    assert not result.is_error
    per = result.data["categories"]
    assert list(per) == list(curriculum.FAMILIES)
    for family, row in per.items():
        assert set(row) == {"accuracy", "coverage", "neural_accuracy", "samples"}
        assert row["samples"] == 8 and 0.0 <= row["accuracy"] <= row["coverage"] <= 1.0
        assert f"- {family}: accuracy" in result.text
    # Fresh models: exact rules answer arithmetic and conversions; nothing else is known yet.
    assert per["arithmetic"]["accuracy"] == per["unit_conversion"]["accuracy"] == 1.0
    assert per["capitals"]["accuracy"] == per["words"]["accuracy"] == 0.0
    assert result.data["mean_accuracy"] == pytest.approx(sum(r["accuracy"] for r in per.values()) / len(per),
                                                         abs=1e-4)
    assert len(result.data["weakest"]) == 2 and all(per[f]["accuracy"] == 0.0 for f in result.data["weakest"])
    assert result.data["recommendations"] and "Teach more" in result.data["recommendations"][0]

    # A subset with its own sample count; teaching those very questions moves the number.
    sub = await reg.call("analyze_model", {"categories": ["capitals", "arithmetic"], "samples_per_category": 4})
    assert list(sub.data["categories"]) == ["capitals", "arithmetic"]
    assert sub.data["categories"]["capitals"] == {"accuracy": 0.0, "coverage": 0.0, "neural_accuracy": 0.0,
                                                  "samples": 4}
    held = curriculum.held_out_items("capitals", 4, HELD_OUT_SEED)[:2]  # two of the four it asks
    await reg.call("generate_training_data", {"examples": pairs(held)})
    after = await reg.call("analyze_model", {"categories": ["capitals"], "samples_per_category": 4})
    assert after.data["categories"]["capitals"]["accuracy"] == 0.5
    assert after.data["mean_accuracy"] == 0.5


async def test_compare_responses_gives_a_verdict_and_stores_a_label(engine: Engine) -> None:
    reg = engine.tool_registry()
    agree = await reg.call("compare_responses", {"query": "What is 2+3?", "teacher_answer": "The answer is 5."})
    assert not agree.is_error, agree.text
    assert agree.data["agrees"] is True and agree.data["local_answer"] == "5"
    assert agree.data["local_source"] == "template" and agree.data["score"] == 1.0
    assert "AGREE" in agree.text and "Teacher: 'The answer is 5.'" in agree.text

    disagree = await reg.call("compare_responses", {"query": "What is 2+3?", "teacher_answer": "7"})
    assert disagree.data["agrees"] is False and "DISAGREE" in disagree.text

    # Without a teacher answer the teacher is asked (the offline curriculum knows this one).
    asked = await reg.call("compare_responses", {"query": "What is 12 times 3?"})
    assert asked.data["teacher_answer"] == "36" and asked.data["agrees"] is True

    labels = await engine.store.labels()
    assert [(l.query, l.label, l.origin, l.source) for l in labels] == [
        ("What is 2+3?", 1, "compare", "template"),
        ("What is 2+3?", 0, "compare", "template"),
        ("What is 12 times 3?", 1, "compare", "template"),
    ]

    # The teacher cannot answer: an error result, and no label.
    before = await state(engine)
    cannot = await reg.call("compare_responses", {"query": "Who wrote Hamlet?"})
    assert cannot.is_error and "teacher could not answer" in cannot.text
    assert await state(engine) == before


# --- bad input ---------------------------------------------------------------------------

_ONE = {"query": "What is the capital of Chile?", "answer": "Santiago"}
_BIG = "x" * (MAX_TEXT + 1)

BAD_CALLS: list[tuple[str, Any, str]] = [
    # wrong types
    ("query_local_model", {"query": 5}, "input.query must be a string, got int"),
    ("query_local_model", {"query": ["What is 2+3?"]}, "must be a string, got array"),
    ("generate_training_data", {"examples": "What is 2+2? 4"}, "input.examples must be an array"),
    ("generate_training_data", {"examples": [{"query": 1, "answer": "2"}]}, "input.examples[0].query must be a string"),
    ("generate_training_data", {"examples": [_ONE, "Q: A"]}, "input.examples[1] must be an object"),
    ("train", {"wait": "yes"}, "input.wait must be true or false"),
    ("train", {"wait": 1}, "input.wait must be true or false"),
    ("analyze_model", {"samples_per_category": "8"}, "must be an integer"),
    ("analyze_model", {"samples_per_category": True}, "must be an integer, got boolean"),
    ("analyze_model", {"samples_per_category": 0}, "must be ≥ 1"),
    ("analyze_model", {"samples_per_category": 10_000}, "must be ≤ 50"),
    ("analyze_model", {"categories": "words"}, "must be an array"),
    ("analyze_model", {"categories": ["astrology"]}, "must be one of"),
    ("compare_responses", {"query": "What is 2+3?", "teacher_answer": None}, "must be a string, got null"),
    # missing fields
    ("query_local_model", {}, "input.query is required"),
    ("compare_responses", {"teacher_answer": "5"}, "input.query is required"),
    ("generate_training_data", {}, "input.examples is required"),
    ("generate_training_data", {"examples": []}, "needs at least 1 item"),
    ("generate_training_data", {"examples": [{"query": "What is 2+2?"}]}, "input.examples[0].answer is required"),
    # unknown fields
    ("query_local_model", {"query": "What is 2+3?", "verbose": True}, "unknown field(s): verbose"),
    ("train", {"wait": True, "model": "generator"}, "unknown field(s): model"),
    ("generate_training_data", {"examples": [{**_ONE, "source": "me"}]}, "unknown field(s): source"),
    ("generate_training_data", {"examples": [_ONE], "priority": 1}, "unknown field(s): priority"),
    # too many examples: 10,000 (over the byte limit first) and one over the item limit
    ("generate_training_data", {"examples": [{"query": f"What is {i} plus {i}?", "answer": str(2 * i)}
                                             for i in range(10_000)]}, "bytes; at most 262144 allowed"),
    ("generate_training_data", {"examples": [{"query": f"q{i}?", "answer": "a"} for i in range(MAX_EXAMPLES + 1)]},
     f"has {MAX_EXAMPLES + 1} items; at most {MAX_EXAMPLES} allowed"),
    # oversized text (> 8 KB), also in multi-byte characters, and inside a batch with a good example
    ("query_local_model", {"query": _BIG}, f"larger than {MAX_TEXT} bytes"),
    ("query_local_model", {"query": "é" * (MAX_TEXT // 2 + 1)}, f"larger than {MAX_TEXT} bytes"),
    ("compare_responses", {"query": "What is 2+3?", "teacher_answer": _BIG}, "teacher_answer is larger than"),
    ("generate_training_data", {"examples": [_ONE, {"query": "Big?", "answer": _BIG}]},
     "input.examples[1].answer is larger than"),
    # empty or whitespace query
    ("query_local_model", {"query": ""}, "input.query must not be empty"),
    ("query_local_model", {"query": " \t\n "}, "input.query must not be empty"),
    ("query_local_model", {"query": "\x1b[31m\x07"}, "empty query"),
    ("compare_responses", {"query": "   ", "teacher_answer": "5"}, "input.query must not be empty"),
    # not JSON at all, JSON null, JSON that is not an object
    ("query_local_model", "query: what is 2+3", "input is not valid JSON"),
    ("generate_training_data", '{"examples": [', "input is not valid JSON"),
    ("query_local_model", None, "input must be an object, got null"),
    ("train", "null", "input must be an object, got null"),
    ("analyze_model", [], "input must be an object, got array"),
    ("train", 42, "input must be an object, got int"),
    # unknown tools
    ("delete_everything", {}, "unknown tool 'delete_everything'; available: query_local_model"),
    ("", {"query": "x"}, "unknown tool ''"),
]


async def test_bad_inputs_are_error_results_that_change_nothing(engine: Engine) -> None:
    reg = engine.tool_registry()
    # Some state to protect: a learned answer and a queued example.
    seeded = await reg.call("generate_training_data", {"examples": [{"query": "What is the capital of Chile?",
                                                                      "answer": "Santiago"}]})
    assert not seeded.is_error
    before = await state(engine)
    logged_before = len(await engine.store.tool_calls())
    for name, raw, expected in BAD_CALLS:
        result = await reg.call(name, raw)
        assert result.is_error, (name, raw if len(repr(raw)) < 200 else "<big>", result.text)
        assert expected in result.text, (name, result.text)
        assert result.text.startswith(f"Invalid input for {name}:"), result.text
        assert await state(engine) == before, (name, result.text)
    calls = (await engine.store.tool_calls(limit=1000))[logged_before:]
    assert len(calls) == len(BAD_CALLS) and {c.status for c in calls} == {"error"}
    # The learned answer was not overwritten by the rejected batches that repeated it.
    assert (await engine.store.learned_answers())[0].answer == "Santiago"


async def test_train_with_nothing_to_train_is_an_error_and_records_no_run(engine: Engine) -> None:
    result = await engine.tool_registry().call("train", {})
    assert result.is_error and "Nothing to train on" in result.text
    assert stored_runs(engine) == {}


# --- log and events ----------------------------------------------------------------------


async def test_tool_calls_are_persisted_and_emitted_running_then_done(engine: Engine) -> None:
    events: list[ToolCalled] = []
    unsubscribe = engine.subscribe(lambda e: events.append(e) if isinstance(e, ToolCalled) else None)
    reg = engine.tool_registry()
    ok = await reg.call("query_local_model", {"query": "What is 6*7?"})
    bad = await reg.call("query_local_model", "not json")
    unknown = await reg.call("no_such_tool", {"a": 1})
    unsubscribe()
    assert not ok.is_error and bad.is_error and unknown.is_error

    seen = [(e.event.call_id, e.event.name, e.event.status) for e in events]
    assert seen == [
        ("call-1", "query_local_model", "running"), ("call-1", "query_local_model", "ok"),
        ("call-2", "query_local_model", "running"), ("call-2", "query_local_model", "error"),
        ("call-3", "no_such_tool", "running"), ("call-3", "no_such_tool", "error"),
    ]
    done = [e.event for e in events if e.event.status != "running"]
    assert done[0].result_text == ok.text and done[0].data["answer"] == "42"
    assert done[0].summary == "template: 42"
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in done)
    assert all(e.duration_ms is None for e in (x.event for x in events) if e.status == "running")

    rows = await engine.store.tool_calls()
    assert [(r.call_id, r.name, r.status) for r in rows] == [
        ("call-1", "query_local_model", "ok"), ("call-2", "query_local_model", "error"),
        ("call-3", "no_such_tool", "error")]
    assert rows[0].input == {"query": "What is 6*7?"} and rows[0].result_text == ok.text
    assert rows[0].summary == "template: 42"
    assert rows[1].input == {"_raw": "not json"} and rows[1].result_text == bad.text
    assert rows[1].summary.startswith("Invalid input for query_local_model: input is not valid JSON")
    assert all(r.duration_ms is not None and r.duration_ms >= 0 for r in rows)


async def test_stopping_the_loop_that_waits_for_a_run_leaves_the_run_going_then_cancel_ends_it(engine):
    """A teaching session stopped while its `train` call waits: the call ends as cancelled, the run
    goes on (it is not abandoned mid-thread), and cancelling the run ends it with its own report."""
    from shammah_tui.core.events import TrainingFinished, TrainingStep

    await engine.teaching.learn_pairs([(i.query, i.answer) for i in curriculum.sample_items(40, seed=5)], "test")
    events: list = []
    engine.subscribe(events.append)
    registry = engine.tool_registry()
    waiter = asyncio.ensure_future(registry.call("train", {"wait": True}))
    while not any(isinstance(e, TrainingStep) for e in events):
        await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    ended = [e.event for e in events if isinstance(e, ToolCalled) and e.event.status != "running"]
    assert [(e.name, e.status, e.summary) for e in ended] == [("train", "error", "cancelled")]
    assert engine.training  # the run was not cancelled with its waiter
    assert engine.cancel_training()
    while engine.training:
        await asyncio.sleep(0.01)
    finished = [e for e in events if isinstance(e, TrainingFinished)]
    assert [f.report.status for f in finished] == ["cancelled"]
    (run,) = await engine.store.runs()
    assert run.status == "cancelled" and run.finished_at is not None
    calls = await engine.store.tool_calls()
    assert [(c.name, c.status, c.summary) for c in calls] == [("train", "error", "cancelled")]


async def test_a_spot_checked_answer_from_the_quick_path_labels_the_router_usably(engine: Engine) -> None:
    """A template or exact stored answer comes without the models; its spot check still gives the
    router a full feature row, so the next run trains on it (it failed on an empty row)."""
    engine.apply_settings(dataclasses.replace(engine.settings, spot_check_rate=1.0))
    await engine.teaching.learn_pairs([(i.query, i.answer) for i in curriculum.sample_items(40, seed=5)], "test")
    asked = await engine.ask(Question("What is 12 * 12?"), AskPolicy(auto_train="off"))
    assert asked.source == "template" and asked.verified is True
    router = [label for label in await engine.store.labels() if label.source == "router"]
    assert router and all(len(label.features) == 4 for label in router)
    report = await engine.train("test")
    assert report is not None and report.status == "done", report


async def test_a_trained_question_never_calibrates_the_validator(engine: Engine) -> None:
    """The neural threshold is calibrated only on answers to questions the generator never trained on."""
    from shammah_tui.core.records import CalibrationPoint

    right = [CalibrationPoint(f"What is {i} plus 1000?", str(i + 1000), [0.99, 1.0, 0.0], True, "held_out:test")
             for i in range(60)]
    wrong = [CalibrationPoint(f"What is {i} minus 1000?", "7", [0.2, 1.0, 0.0], False, "held_out:test")
             for i in range(10)]
    await engine.store.add_calibration_points("validator", right + wrong)
    coordinator = engine.coordinator
    await coordinator.calibrate_validator()
    assert coordinator.validator_points == 70
    thresholds = engine.local.thresholds
    # 60 right answers above 10 wrong ones: one of the two scores separates them within δ = 2%.
    assert thresholds.validator < 1.0 and thresholds.estimated_error is not None
    assert thresholds.estimated_error <= engine.settings.error_bound
    assert thresholds.accepts(0.0 if thresholds.neural_score == "confidence" else 1.0, 0.99 if
                              thresholds.neural_score == "confidence" else 0.0)

    reg = engine.tool_registry()
    taught = [{"query": p.query, "answer": p.answer} for p in right[:5] + wrong[:3]]
    assert not (await reg.call("generate_training_data", {"examples": taught})).is_error
    assert (await reg.call("train", {"wait": True})).data["status"] == "done"
    trained = set(await engine.store.trained_queries())
    assert trained & {p.query for p in right + wrong}
    await coordinator.calibrate_validator()
    # Every point whose question was trained on is left out, and so is every answer of the
    # generator before this run: only the run's own out-of-sample answers calibrate it.
    stored = await engine.store.calibration_points("validator", 10_000)
    assert len(stored) > 70  # the run added its held-out answers
    run = await engine.store.generator_run()
    assert run is not None and {p.generator_run for p in stored} == {None, run}
    assert coordinator.validator_points == len([p for p in stored if p.generator_run == run
                                                and p.query not in trained]) > 0


async def test_a_run_never_calibrates_on_the_questions_it_just_trained_on(engine: Engine) -> None:
    """The threshold a run leaves in force is calibrated without this run's own training questions
    (they were marked trained only after calibration)."""
    from shammah_tui.core.records import CalibrationPoint

    # Answers of the generator the run is about to leave in use (a fresh data dir's first run is #1).
    points = [CalibrationPoint(f"What is {i} plus 1000?", str(i + 1000), [0.99, 1.0, 0.0], True, "spot_check",
                               generator_run=1) for i in range(40)]
    await engine.store.add_calibration_points("validator", points)
    reg = engine.tool_registry()
    taught = [{"query": p.query, "answer": p.answer} for p in points[:10]]
    assert not (await reg.call("generate_training_data", {"examples": taught})).is_error
    assert (await reg.call("train", {"wait": True})).data["status"] == "done"
    trained = set(await engine.store.trained_queries())
    assert trained & {p.query for p in points}
    assert await engine.store.generator_run() == 1
    stored = await engine.store.calibration_points("validator", 10_000)
    assert engine.coordinator.validator_points == len([p for p in stored if p.query not in trained]) > 30


async def test_no_wording_of_a_held_out_question_is_trained_from_any_source(engine: Engine) -> None:
    """The teacher's tool refuses a held-out question in another wording (commuted operands); a
    user who asks one gets the teacher's answer, stored, but it never joins the training queue."""
    from shammah_tui.curriculum.skills import SKILLS

    item = next(i for i in SKILLS["arithmetic"].held_out() if i.group in "+*")
    a, b = item.key.split(":")[1].split(item.group)
    twin = f"What is {b} {item.group} {a}?"
    reg = engine.tool_registry()
    refused = await reg.call("generate_training_data", {"examples": [{"query": twin, "answer": item.answer}]})
    assert refused.is_error and "held-out" in refused.data["rejected"][0]["reason"]
    engine.apply_settings(dataclasses.replace(engine.settings, tier_order=("learned", "neural")))  # no calculator
    before = (await engine.store.example_counts())["queued"]
    question = Question(f"Compute {a} {item.group} {b}.")
    asked = await engine.ask(question, AskPolicy(auto_train="off", spot_check="off"))
    assert asked.source == "forward" and asked.answer
    assert (await engine.store.example_counts())["queued"] == before
    assert (await engine.ask(question, AskPolicy(auto_train="off"))).source == "learned"


async def test_a_forward_compares_the_draft_it_did_not_serve_as_evidence_for_its_region(engine: Engine) -> None:
    """A new pattern is opened by exploration: the generator's draft of a question whose region is
    closed is not served, and the forward's answer judges it (a calibration point of the generator
    in use)."""
    engine.apply_settings(dataclasses.replace(engine.settings, tier_order=("learned", "neural")))
    engine.local.update_thresholds(generator_trained=True, validator_trained=True, validator=0.0)
    for country, draft, right in (("France", "Lyon", False), ("Italy", "Rome", True)):
        engine.local.publish(models=FakeModels(draft, p=0.99, confidence=0.99))  # sure of itself
        asked = await engine.ask(Question(f"What is the capital of {country}?"),
                                 AskPolicy(auto_train="off", spot_check="off"))
        assert asked.source == "forward" and asked.answer
        point = (await engine.store.calibration_points("validator", 1))[0]
        assert (point.query, point.answer, point.agreed, point.origin) == (asked.query, draft, right, "forward")
