"""The engine's local models: loaded once in a worker thread, typed, and reloaded when another
process on the same data dir saved newer checkpoints.

Nothing here imports torch at import time: the headless answers that need no model (an exact
stored answer, a template) and the TUI's first frame come before torch loads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shammah_tui.events import EngineEvent, ModelsLoaded, Notice
from shammah_tui.paths import MODELS_DIR
from shammah_tui.pipeline.local import LocalAnswerer
from shammah_tui.settings import Settings

if TYPE_CHECKING:
    from shammah_tui.models.bundle import LocalModels
    from shammah_tui.training.trainer import BatchTrainer

Emit = Callable[[EngineEvent], None]


class ModelHost:
    """Owns the `LocalModels` and their `BatchTrainer` once loaded, and hands the models to the
    local answerer."""

    def __init__(self, data_dir: Path, settings: Settings, local: LocalAnswerer, emit: Emit) -> None:
        self.model_dir = data_dir / MODELS_DIR
        self.settings = settings
        self.local = local
        self._emit = emit
        self.models: LocalModels | None = None
        self.trainer: BatchTrainer | None = None
        self.warnings: list[str] = []
        """Problems met while loading (a bad checkpoint replaced by fresh weights …)."""
        self.failed: str | None = None
        """Why loading failed, once it has (the engine then answers without the models)."""
        self._loading: asyncio.Future[list[str]] | None = None
        self._stamp: tuple[int, int] | None = None

    @property
    def ready(self) -> bool:
        return self.models is not None

    async def load(self) -> list[str]:
        """Load or create the models in a worker thread; safe to call more than once, and at once."""
        if self.models is not None:
            return self.warnings
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load_sync))
        return await self._loading

    async def load_or_go_on(self) -> bool:
        """Load the models; if that fails, say so once and go on without them. True when loaded."""
        if self.failed is not None:
            return False
        try:
            await self.load()
        except Exception as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            self._emit(Notice("error", f"Local models unavailable ({self.failed}); "
                                       "answering from templates, learned answers and the teacher."))
            return False
        return True

    def _load_sync(self) -> list[str]:
        import torch

        from shammah_tui.models.bundle import LocalModels
        from shammah_tui.models.corpus import tokenizer_corpus
        from shammah_tui.models.device import pick_device
        from shammah_tui.training.trainer import BatchTrainer

        s = self.settings
        torch.manual_seed(s.seed)
        models, warnings = LocalModels.load_or_create(self.model_dir, tokenizer_corpus, s.generator_config(),
                                                      s.vocab_size, s.seed, pick_device(s.device))
        trainer = BatchTrainer(models, s.train_config())
        # Building the first optimizer imports torch._dynamo with the GIL held (~1 s):
        # do it now, while loading, rather than in the middle of the first run.
        for name in ("generator", "router", "validator"):
            trainer.optimizer(name)
        self.models, self.trainer = models, trainer
        self.local.models = models
        self.warnings = warnings
        self._stamp = self._checkpoint_stamp()
        self._emit(ModelsLoaded(models.info(), warnings))
        for warning in warnings:
            self._emit(Notice("warning", warning))
        return warnings

    def _checkpoint_stamp(self) -> tuple[int, int] | None:
        """(mtime, size) of the generator checkpoint: how this process tells another one saved."""
        from shammah_tui.models.bundle import GENERATOR_FILE

        try:
            st = (self.model_dir / GENERATOR_FILE).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    async def reload_if_saved_elsewhere(self) -> None:
        """Take in checkpoints another process saved since these were loaded (else the next save
        would overwrite them)."""
        stamp = self._checkpoint_stamp()
        if stamp is not None and stamp != self._stamp:
            self._emit(Notice("information", "Another process saved newer models; loading them first."))
            await asyncio.to_thread(self._load_sync)

    async def save(self) -> None:
        """Write the checkpoints (atomically); raises what the disk raises."""
        assert self.models is not None
        await asyncio.to_thread(self.models.save, self.model_dir)
        self._stamp = self._checkpoint_stamp()
