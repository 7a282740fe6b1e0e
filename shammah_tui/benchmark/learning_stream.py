"""Run the curriculum stream through a fresh engine and record what happened (tests and bench share it).

The stream is `curriculum.stream(500, seed=0)` (tests/fixtures/stream_500.jsonl holds the same
items, pinned by the tests); the novel queries beside this file are questions the offline
teacher cannot answer and no template touches.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from shammah_tui.core.stats import Stats
from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui import curriculum
from shammah_tui.engine.open import open_engine
from shammah_tui.core.events import TrainingFinished
from shammah_tui.pipeline.agreement import agreement
from shammah_tui.settings import Settings
from shammah_tui.training.exam import exam
from shammah_tui.teachers.offline import OfflineTeacher

NOVEL_QUERIES = Path(__file__).parent / "novel_queries.txt"


@dataclass
class StreamOutcome:
    sources: list[str | None] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    answers: list[str | None] = field(default_factory=list)
    runs: list = field(default_factory=list)
    stored_runs: list = field(default_factory=list)
    first_examples_loss_before: float = 0.0
    first_examples_loss_after: float = 0.0
    novel_local: int = 0
    novel_total: int = 0
    stats: Stats = field(default_factory=Stats)
    seconds: float = 0.0


def load_stream() -> list[dict]:
    """The 500-query curriculum stream as {"query", "answer", "family", "key"} dicts."""
    return [asdict(item) for item in curriculum.stream(500, seed=0)]


def novel_queries() -> list[str]:
    return [q for q in NOVEL_QUERIES.read_text(encoding="utf-8").splitlines() if q.strip()]


async def run_stream(data_dir: Path | None = None, **overrides) -> StreamOutcome:
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="shammah-stream-"))
    settings = replace(Settings(teacher="offline"), **overrides)
    engine = await open_engine(data_dir, settings, OfflineTeacher(seed=settings.seed))
    out = StreamOutcome()
    engine.subscribe(lambda e: out.runs.append(e.report) if isinstance(e, TrainingFinished) else None)
    started = time.perf_counter()
    first_examples = None
    try:
        for item in load_stream():
            result = await engine.ask(Question(item["query"]), AskPolicy(auto_train="wait"))
            if first_examples is None and not out.runs:
                queued = await engine.store.examples("queued")
                held = {e.id for e in exam(queued)}  # never trained on: not "its data"
                trainable = [e for e in queued if e.id not in held]
                if len(trainable) >= settings.batch_size - 1:
                    first_examples = trainable
                    assert engine.trainer is not None
                    out.first_examples_loss_before = engine.trainer.generator_loss(first_examples)
            out.sources.append(result.source)
            out.answers.append(result.answer)
            out.correct.append(result.answer is not None and agreement(result.answer, item["answer"]).agrees)
        if first_examples and engine.trainer is not None:
            out.first_examples_loss_after = engine.trainer.generator_loss(first_examples)
        novel = novel_queries()
        for query in novel:
            decision = await engine.teaching.local_only(query)
            out.novel_local += decision.answer is not None
        out.novel_total = len(novel)
        out.stats = await engine.stats()
        out.stored_runs = await engine.store.runs(100)
    finally:
        out.seconds = time.perf_counter() - started
        await engine.close()
    return out


def local_share(outcome: StreamOutcome, start: int, end: int) -> float:
    window = outcome.sources[start:end]
    return sum(s not in ("forward", None) for s in window) / len(window)


def local_accuracy(outcome: StreamOutcome, start: int = 0, end: int | None = None) -> float:
    pairs = [(s, ok) for s, ok in zip(outcome.sources[start:end], outcome.correct[start:end])
             if s not in ("forward", None)]
    return sum(ok for _, ok in pairs) / max(len(pairs), 1)
