"""The engine: the one object the CLI, the UI and `serve` drive.

A thin front over its parts (docs/ARCHITECTURE.md draws them):

- `ModelHost` loads the local models in a worker thread, once;
- `QueryFlow` answers each query: local decision, forward, spot check, learning;
- `TrainingCoordinator` runs training, one run per data dir at a time, and owns calibration;
- the store (all SQL) and the teacher;
- `EngineTeachingHost` is what the teaching tools call, over the same parts.

Watchers subscribe to `EngineEvent`s. Listeners may be called from a training thread.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shammah_tui.atomic import write_text_atomically
from shammah_tui.engine.model_host import ModelHost
from shammah_tui.engine.query_flow import Forwarder, QueryFlow
from shammah_tui.engine.stats import collect_stats
from shammah_tui.engine.teaching_host import EngineTeachingHost
from shammah_tui.engine.training import TrainingCoordinator
from shammah_tui.core.ask import DEFAULT_POLICY, AskPolicy, Question
from shammah_tui.core.stats import Stats
from shammah_tui.core.events import AskResult, EngineEvent
from shammah_tui.lock import DataDirLock
from shammah_tui.paths import DB_NAME, SETTINGS_NAME, ensure_data_dir
from shammah_tui.pipeline.learned import LearnedIndex
from shammah_tui.pipeline.local import DecisionState, LocalAnswerer
from shammah_tui.pipeline.thresholds import Thresholds
from shammah_tui.pipeline.pair_features import AcceptanceModel
from shammah_tui.pipeline.semantic import SemanticStore
from shammah_tui.settings import Settings, default_settings_toml
from shammah_tui.store import Store
from shammah_tui.core.teaching import TeachSummary, TextCallback
from shammah_tui.teachers.base import Teacher, TeachRequest
from shammah_tui.tools.base import ToolRegistry
from shammah_tui.core.runs import RunReport
from shammah_tui.training.exam import queue_counts

if TYPE_CHECKING:
    from shammah_tui.models.bundle import LocalModels
    from shammah_tui.training.trainer import BatchTrainer

Listener = Callable[[EngineEvent], None]


class Engine:
    """Shammah's headless core."""

    def __init__(self, data_dir: Path, settings: Settings, store: Store, teacher: Teacher,
                 clock: Callable[[], float], rng: random.Random) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.store = store
        self.teacher = teacher
        self.clock = clock
        self._listeners: list[Listener] = []
        self.local = LocalAnswerer(DecisionState(None, LearnedIndex(), Thresholds(), settings.tier_order,
                                                 settings.max_new_tokens, SemanticStore(AcceptanceModel.load())))
        self.host = ModelHost(data_dir, settings, store, self.local, self.emit)
        self.coordinator = TrainingCoordinator(data_dir=data_dir, settings=settings, store=store,
                                               host=self.host, local=self.local, rng=rng, emit=self.emit)
        self.flow = QueryFlow(store=store, teacher=teacher, settings=settings, host=self.host,
                              local=self.local, coordinator=self.coordinator, rng=rng, emit=self.emit)
        self.teaching = EngineTeachingHost(store=store, teacher=teacher, host=self.host, local=self.local,
                                           flow=self.flow, coordinator=self.coordinator, emit=self.emit)
        """What the teaching tools call (`tools.host.TeachingHost`); `tool_registry` binds them to it."""

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def open(cls, data_dir: Path, settings: Settings, teacher: Teacher, *,
                   clock: Callable[[], float] = time.time, seed: int | None = None,
                   use_models: bool = True) -> Engine:
        """Create the data dir if needed, open the store and the learned index (no torch yet).

        `use_models=False` never loads torch: the template and learned tiers answer (by wording),
        the rest is forwarded, nothing trains."""
        # Nothing but the directory itself is created until the store has opened: a database
        # from a newer Shammah (or an unusable one) leaves the data dir as it was.
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = await Store.open(data_dir / DB_NAME, clock=clock)
        try:
            ensure_data_dir(data_dir)
            settings_file = data_dir / SETTINGS_NAME
            if not settings_file.exists():  # atomically: another process may be reading it
                write_text_atomically(settings_file, default_settings_toml())
            with DataDirLock(data_dir) as free:  # a run that another process is doing is not stale
                if free:
                    await store.close_stale_runs()
            engine = cls(data_dir, settings, store, teacher, clock,
                         random.Random(settings.seed if seed is None else seed))
            engine.host.enabled = use_models
            engine.local.publish(index=LearnedIndex(await store.learned_answers()),
                                 thresholds=Thresholds.from_json(await store.get_value(Thresholds.STORE_KEY)))
            await engine.coordinator.load_pair_labels()
        except BaseException:
            await store.close()  # an open connection's thread would hold up interpreter exit
            raise
        return engine

    async def close(self) -> None:
        """Let spot checks finish (a moment), cancel training, close the teacher and the store."""
        await self.flow.close()
        await self.coordinator.close()
        await self.host.close()
        await self.teacher.close()
        await self.store.close()

    def apply_settings(self, settings: Settings) -> None:
        """Take changed settings at once (the UI's palette edits them): the tier order, spot-check
        rate, error bound, auto-training and run sizes apply from the next query or run. Model
        shapes apply at the next start (the checkpoints hold them)."""
        self.settings = settings
        for part in (self.flow, self.coordinator, self.host):
            part.settings = settings
        self.local.publish(tier_order=settings.tier_order, max_new_tokens=settings.max_new_tokens)
        if self.host.trainer is not None:
            self.host.trainer.config = settings.train_config()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # --------------------------------------------------------------------- models
    @property
    def models(self) -> LocalModels | None:
        return self.host.models

    @property
    def trainer(self) -> BatchTrainer | None:
        return self.host.trainer

    @property
    def models_ready(self) -> bool:
        return self.host.ready

    async def load_models(self) -> list[str]:
        """Load or create the models in a worker thread; safe to call more than once."""
        return await self.host.load()

    # ------------------------------------------------------------------ queries
    async def ask(self, question: Question, policy: AskPolicy = DEFAULT_POLICY, *,
                  on_text: TextCallback | None = None, forward: Forwarder | None = None,
                  check: Forwarder | None = None) -> AskResult:
        """Answer one question through the pipeline; never raises for bad input or a teacher fault.

        `policy` says what asking may set off (a training run, a spot check: `core.ask`).
        `forward` answers what the local side does not (default: the teacher; it raises
        TeacherError when it cannot, and what it returns is learned); `check` asks for a spot check
        (default: the teacher). `on_text` receives a forwarded answer as it streams.
        """
        result, later = await self.flow.ask(question, spot_check=policy.spot_check, on_text=on_text,
                                            forward=forward, check=check)
        if policy.auto_train != "off" and self.settings.auto_train:
            await self.coordinator.maybe_auto_train(wait=policy.auto_train == "wait")
        if later is not None:  # last, so its verdict never arrives before the answer it judges
            self.flow.check_in_background(later)
        return result

    async def queue_counts(self) -> dict[str, int]:
        """Examples queued for training, trained, and held out as the exam (exam.py)."""
        return await queue_counts(self.store)

    # ------------------------------------------------------------------- training
    @property
    def training(self) -> bool:
        return self.coordinator.running

    def start_training(self, trigger: str = "manual") -> asyncio.Task[RunReport | None] | None:
        """Start a run in the background (None if one is already running)."""
        return self.coordinator.start(trigger)

    async def train(self, trigger: str = "manual") -> RunReport | None:
        """Train now and wait for the run (joins a run already going)."""
        return await self.coordinator.train(trigger)

    def cancel_training(self) -> bool:
        return self.coordinator.cancel()

    async def reset_adapter(self) -> str:
        """Back to the pre-trained base model (see TrainingCoordinator.reset_adapter)."""
        return await self.coordinator.reset_adapter()

    # ------------------------------------------------------------------- teaching
    def tool_registry(self) -> ToolRegistry:
        """The five teaching tools bound to this engine, persisting and emitting each call."""
        return self.teaching.registry()

    async def teach(self, rounds: int = 1, topic: str | None = None,
                    on_text: TextCallback | None = None) -> TeachSummary:
        """Active teaching: the teacher drives the tool loop."""
        await self.load_models()
        request = TeachRequest(topic=topic, rounds=rounds, max_iterations=self.settings.tool_iterations)
        return await self.teacher.teach(self.tool_registry(), request, on_text)

    # ---------------------------------------------------------------------- stats
    async def stats(self) -> Stats:
        """What is measured so far (`Stats.to_json()` is the `stats --json` object)."""
        return await collect_stats(self.store, self.settings, self.local.thresholds,
                                   self.host.describe_encoder())
