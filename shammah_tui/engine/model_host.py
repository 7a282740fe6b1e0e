"""The engine's local models: loaded once in a worker thread, typed, and reloaded when another
process on the same data dir saved newer checkpoints. The sentence encoder loads with them and
fills the semantic store with the stored questions' vectors (kept in the store, so a restart
embeds only what is new).

Nothing here imports torch at import time: the headless answers that need no model (an exact
stored answer, a template) and the TUI's first frame come before torch loads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shammah_tui.core.events import EngineEvent, ModelsLoaded, Notice
from shammah_tui.paths import MODELS_DIR
from shammah_tui.pipeline.local import LocalAnswerer
from shammah_tui.pipeline.semantic import Embedder, from_blob, to_blob
from shammah_tui.settings import Settings
from shammah_tui.core.records import LearnedAnswer
from shammah_tui.store import Store

if TYPE_CHECKING:
    from shammah_tui.models.bundle import LocalModels
    from shammah_tui.training.trainer import BatchTrainer

Emit = Callable[[EngineEvent], None]
#: Stored questions embedded per batch when the store holds some without a vector.
EMBED_BATCH = 64


class ModelHost:
    """Owns the `LocalModels` and their `BatchTrainer` once loaded, and hands the models to the
    local answerer."""

    def __init__(self, data_dir: Path, settings: Settings, store: Store, local: LocalAnswerer,
                 emit: Emit) -> None:
        self.model_dir = data_dir / MODELS_DIR
        self.settings = settings
        self.store = store
        self.local = local
        self._emit = emit
        self.encoder: Embedder | None = None
        """The sentence encoder, once loaded (None: none found, or not loaded yet)."""
        self.encoder_status = ""
        """What became of loading the encoder: its name, or why there is none ("" before trying)."""
        self.enabled = True
        """False: this engine never loads the models (it answers from templates and the store)."""
        self.models: LocalModels | None = None
        self.trainer: BatchTrainer | None = None
        self.warnings: list[str] = []
        """Problems met while loading (a bad checkpoint replaced by fresh weights …)."""
        self.failed: str | None = None
        """Why loading failed, once it has (the engine then answers without the models)."""
        self._loading: asyncio.Future[list[str]] | None = None
        self._backfill: asyncio.Future[None] | None = None
        self._stamp: tuple[int, int] | None = None

    @property
    def ready(self) -> bool:
        return self.models is not None

    async def load(self) -> list[str]:
        """Load or create the models in a worker thread; safe to call more than once, and at once."""
        if self.models is not None or not self.enabled:
            return self.warnings
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load_all())
        return await self._loading

    async def _load_all(self) -> list[str]:
        warnings = await asyncio.to_thread(self._load_sync)
        await self._attach_encoder()
        return warnings

    async def load_or_go_on(self) -> bool:
        """Load the models; if that fails, say so once and go on without them. True when loaded."""
        if self.failed is not None or not self.enabled:
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
        from shammah_tui.curriculum.corpus import tokenizer_corpus
        from shammah_tui.models.device import pick_device
        from shammah_tui.training.trainer import BatchTrainer

        s = self.settings
        torch.set_num_threads(s.torch_threads)
        torch.manual_seed(s.seed)
        device = pick_device(s.device)
        models, warnings = LocalModels.load_or_create(self.model_dir, tokenizer_corpus, s.generator_config(),
                                                      s.vocab_size, s.seed, device)
        if s.answer_model == "smollm2":
            warnings += self._attach_pretrained(models, device)
        trainer = BatchTrainer(models, s.train_config())
        # Building the first optimizer imports torch._dynamo with the GIL held (~1 s):
        # do it now, while loading, rather than in the middle of the first run.
        for name in ("generator", "router", "validator"):
            trainer.optimizer(name)
        self.models, self.trainer = models, trainer
        self.local.publish(models=models)
        self.warnings = warnings
        self._stamp = self._checkpoint_stamp()
        self._emit(ModelsLoaded(models.info(), warnings))
        for warning in warnings:
            self._emit(Notice("warning", warning))
        return warnings

    def _attach_pretrained(self, models: LocalModels, device: object) -> list[str]:
        """Answer with the pre-trained model and its adapter (converting its GGUF file on first use);
        the warnings say why not when it is unavailable."""
        from shammah_tui.models.bundle import load_pretrained
        from shammah_tui.models.lora import LoRAConfig

        s = self.settings
        self._emit(Notice("information", "Loading the pre-trained model (the first start converts its file)…"))
        lm, warnings = load_pretrained(self.model_dir, LoRAConfig(rank=s.lora_rank, top_layers=s.lora_top_layers),
                                       s.seed, s.adapter_recipe(), device,  # type: ignore[arg-type]
                                       Path(s.base_model_dir).expanduser() if s.base_model_dir else None)
        if lm is not None:
            models.use(lm)
        return warnings

    def reset_adapter(self) -> bool:
        """Back to the base model: the adapter's update is zeroed and its optimizer forgotten (then
        saved by the caller). False when the models do not answer with an adapter."""
        from shammah_tui.models.pretrained import PretrainedLM

        models = self.models
        if models is None or not isinstance(models.lm, PretrainedLM):
            return False
        with models.lock:
            models.lm.reset_adapter()
        if self.trainer is not None:
            self.trainer.forget_optimizer("generator")
        return True

    # ---------------------------------------------------------------- the encoder
    def describe_encoder(self) -> str:
        """The sentence encoder in use, or the one that would load, or why there is none."""
        if self.encoder_status:
            return self.encoder_status
        from shammah_tui.models.encoder_files import locate_encoder

        folder = locate_encoder(self.settings.encoder_path or None, os.environ)
        if folder is None:
            return "none found"
        name = next((part.split("--")[-1] for part in reversed(folder.parts) if part.startswith("models--")),
                    folder.name)
        return f"{name} (not loaded yet)"

    def _load_encoder_sync(self) -> Embedder | None:
        """The sentence encoder from the configured folder or the Hugging Face cache (or the hub,
        when the settings allow it); None, said once, when there is none."""
        from shammah_tui.models.encoder import DEFAULT_REPO, EncoderError, SentenceEncoder, locate_encoder
        from shammah_tui.models.encoder_files import hf_hub_cache

        folder = locate_encoder(self.settings.encoder_path or None, os.environ)
        if folder is None and self.settings.encoder_download:
            folder = _download_encoder(DEFAULT_REPO)
        if folder is None:
            self.encoder_status = "none found"
            where = self.settings.encoder_path or f"the Hugging Face cache ({hf_hub_cache(os.environ)})"
            self._emit(Notice("information", (
                f"No sentence encoder in {where}: the learned tier matches questions by their wording "
                "only. To match by meaning, put all-MiniLM-L6-v2 there (or name its folder in "
                "encoder_path), or set encoder_download = true in settings.toml to fetch it once; "
                "then restart.")))
            return None
        try:
            encoder = SentenceEncoder.load(folder)
        except EncoderError as exc:
            self.encoder_status = "unusable"
            self._emit(Notice("warning", f"The sentence encoder could not be loaded ({exc}); the learned "
                                         "tier matches questions by their wording only."))
            return None
        self.encoder_status = encoder.name
        return encoder

    async def _attach_encoder(self) -> None:
        """Load the encoder and give the semantic store every stored question's vector: those the
        store kept for this encoder at once, the others embedded batch by batch (and kept)."""
        semantic = self.local.semantic
        if semantic is None or self.encoder is not None:
            return
        encoder = await asyncio.to_thread(self._load_encoder_sync)
        if encoder is None:
            return
        self.encoder = encoder
        semantic.attach(encoder, [])
        missing = await self.sync_semantic(await self.store.learned_answers(), embed=False)
        if missing:  # in the background: the tiers answer meanwhile, with what is embedded
            self._backfill = asyncio.ensure_future(self.embed_and_keep(missing))

    async def sync_semantic(self, rows: list[LearnedAnswer], *, embed: bool = True) -> list[LearnedAnswer]:
        """Give the semantic store the vectors of `rows` it lacks: those the store kept for this
        encoder (another process may have embedded them), then, with `embed`, the others.
        Returns the rows still without a vector."""
        semantic, encoder = self.local.semantic, self.encoder
        if semantic is None or encoder is None:
            return []
        absent = [row for row in rows if not semantic.has(row.id)]
        if not absent:
            return []
        kept = dict(await self.store.learned_embeddings(encoder.fingerprint))
        for row in absent:
            if row.id in kept:
                semantic.add(row, from_blob(kept[row.id]))
        missing = [row for row in absent if row.id not in kept]
        if embed:
            await self.embed_and_keep(missing)
            return []
        return missing

    async def close(self) -> None:
        """Stop embedding stored questions (what is done is kept)."""
        if self._backfill is not None and not self._backfill.done():
            self._backfill.cancel()
            await asyncio.gather(self._backfill, return_exceptions=True)

    async def embed_and_keep(self, rows: list[LearnedAnswer],
                             vectors: np.ndarray | None = None) -> None:
        """Add stored questions to the semantic store (embedding them unless `vectors` are given) and
        keep their vectors in the store."""
        semantic, encoder = self.local.semantic, self.encoder
        if semantic is None or encoder is None or not rows:
            return
        for start in range(0, len(rows), EMBED_BATCH):
            batch = rows[start:start + EMBED_BATCH]
            if vectors is not None:
                found = vectors[start:start + EMBED_BATCH]
            else:
                found = await asyncio.to_thread(encoder.embed, [row.query for row in batch])
            for row, vector in zip(batch, found):
                semantic.add(row, vector)
            await self.store.set_embeddings([(row.id, to_blob(v)) for row, v in zip(batch, found)],
                                            encoder.fingerprint)

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


def _download_encoder(repo: str) -> Path | None:
    """Fetch the encoder's files into the Hugging Face cache (only when the settings allow it)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, allow_patterns=["*.json", "model.safetensors", "1_Pooling/*"]))
    except Exception:  # offline, or no hub package: go on without one, as with none on disk
        return None
