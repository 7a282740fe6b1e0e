"""The engine's teaching side: what the teaching tools call (`tools.host.TeachingHost`).

The engine owns one and hands it to the tools; the CLI, the UI and `serve` never call it. It
works on the engine's own parts, so what a tool does shows in the engine at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shammah_tui.core.events import EngineEvent, ToolCalled
from shammah_tui.core.records import Label, PairLabel
from shammah_tui.store import Store
from shammah_tui.core.teaching import TeacherError
from shammah_tui.teachers.base import Teacher
from shammah_tui.core.tool_calls import ToolCallEvent
from shammah_tui.tools.base import ToolRegistry
from shammah_tui.tools.host import TeacherUnavailable
from shammah_tui.training.exam import queue_counts

if TYPE_CHECKING:
    from shammah_tui.engine.model_host import ModelHost
    from shammah_tui.engine.query_flow import QueryFlow
    from shammah_tui.engine.training import TrainingCoordinator
    from shammah_tui.pipeline.local import LocalAnswerer, LocalDecision
    from shammah_tui.core.runs import RunReport


class EngineTeachingHost:
    """`TeachingHost` over the engine's store, teacher, models, query flow and training."""

    def __init__(self, *, store: Store, teacher: Teacher, host: ModelHost, local: LocalAnswerer,
                 flow: QueryFlow, coordinator: TrainingCoordinator,
                 emit: Callable[[EngineEvent], None]) -> None:
        self._store = store
        self._teacher = teacher
        self._host = host
        self._local = local
        self._flow = flow
        self._coordinator = coordinator
        self._emit = emit

    def registry(self) -> ToolRegistry:
        """The teaching tools bound to this host, persisting and emitting each call."""
        from shammah_tui.tools.registry import build_registry

        async def record(event: ToolCallEvent) -> None:
            await self._store.record_tool_call(
                call_id=event.call_id, name=event.name, input=event.input, status=event.status,
                duration_ms=event.duration_ms, summary=event.summary, result_text=event.result_text)

        return build_registry(self, on_event=lambda e: self._emit(ToolCalled(e)), record=record)

    # ------------------------------------------------------------------ queries
    async def local_only(self, raw_query: str) -> LocalDecision:
        """The local pipeline's decision for a standalone query; nothing is logged or learned."""
        return await self._flow.local_only(raw_query)

    async def ask_teacher(self, query: str) -> str:
        """The teacher's answer to a standalone query (raises TeacherUnavailable)."""
        try:
            return (await self._teacher.answer(query)).text
        except TeacherError as exc:
            raise TeacherUnavailable(exc.message) from exc

    # ------------------------------------------------------------------ learning
    async def learn_pairs(self, pairs: Sequence[tuple[str, str]], origin: str) -> int:
        """Queue teacher-written (query, answer) pairs as examples and learned answers."""
        return await self._flow.learn_pairs(pairs, origin)

    async def add_labels(self, labels: Sequence[Label]) -> None:
        await self._store.add_labels(labels)

    async def add_paraphrases(self, groups: Sequence[Sequence[str]]) -> None:
        """Phrasings the teacher grouped as one question: positive pairs (each against the first),
        with their features when the encoder is there (labels to fit on, never to calibrate)."""
        from shammah_tui.pipeline.pair_features import pair_features

        encoder = self._host.encoder
        labels = []
        for group in groups:
            first, others = group[0], list(group[1:])
            if encoder is not None:
                vectors = await asyncio.to_thread(encoder.embed, [first, *others])
                cosines = [float(vectors[0] @ v) for v in vectors[1:]]
            else:
                cosines = [0.0] * len(others)
            labels += [PairLabel(other, first, 1, [float(x) for x in pair_features(other, first, cos)], "paraphrase")
                       for other, cos in zip(others, cosines)]
        await self._store.add_pair_labels(labels)

    # ------------------------------------------------------------------ training
    @property
    def training(self) -> bool:
        return self._coordinator.running

    async def queue_counts(self) -> dict[str, int]:
        return await queue_counts(self._store)

    def start_training(self, trigger: str = "manual") -> asyncio.Task[RunReport | None] | None:
        """Start a run in the background (None if one is already running)."""
        return self._coordinator.start(trigger)

    async def train(self, trigger: str = "manual") -> RunReport | None:
        """Train now and wait for the run (joins a run already going)."""
        return await self._coordinator.train(trigger)

    async def skill_report(self) -> dict[str, dict[str, Any]]:
        """The generator on each skill's held-out set, now (`TeachingHost.skill_report`)."""
        from shammah_tui.training.held_out import answer_held_out, held_out_items
        from shammah_tui.training.job import SKILL_ANSWER_TOKENS

        await self._host.load()
        models = self._host.models
        assert models is not None
        answers = await asyncio.to_thread(answer_held_out, models, held_out_items(),
                                          min(self._local.state.max_new_tokens, SKILL_ANSWER_TOKENS))
        thresholds = self._local.thresholds
        report: dict[str, dict[str, Any]] = {}
        for answer in answers:
            row = report.setdefault(answer.item.skill, {"right": 0, "served": 0, "samples": 0, "groups": {}})
            row["samples"] += 1
            row["right"] += answer.right
            row["served"] += thresholds.serves(answer.item.query, answer.validator_p, answer.confidence)
            group = row["groups"].setdefault(answer.item.group, [0, 0])
            group[0] += answer.right
            group[1] += 1
        return {name: {"accuracy": round(row["right"] / row["samples"], 3),
                       "served": round(row["served"] / row["samples"], 3), "samples": row["samples"],
                       "groups": {g: round(r / n, 3) for g, (r, n) in row["groups"].items()}}
                for name, row in report.items()}
