"""An engine that answers with the pre-trained model (answer_model = smollm2): its adapter trains in
the ordinary runs, is saved beside the checkpoints, loads again, resets; without a base model the
engine says so and answers with the from-scratch generator. A tiny random llama stands in."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from shammah_tui.engine import Engine
from shammah_tui.models.answer_model import ScratchLM
from shammah_tui.models.base_model import GGUF_ENV
from shammah_tui.models.pretrained import ADAPTER_FILE, PretrainedLM
from shammah_tui.paths import MODELS_DIR
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher
from tests.datadirs import seed_data_dir
from tests.llama_numpy import converted_tiny

TAUGHT = [("hello the world", "12"), ("the hello", "world"), ("world hello", "the")]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return converted_tiny(tmp_path_factory)


def taught_loss(lm: PretrainedLM) -> float:
    from shammah_tui.training.trainer import _pad_pairs

    x, y = _pad_pairs([lm.encode_example(q, "", a) for q, a in TAUGHT], lm.pad_id, "cpu")
    with torch.no_grad():
        return float(lm.answer_loss(x, y))


def settings(base: str) -> Settings:
    return dataclasses.replace(Settings(teacher="offline"), answer_model="smollm2", base_model_dir=base,
                               adapter_max_steps_per_run=30, adapter_train_passes=1000.0,
                               adapter_learning_rate=3e-2, max_new_tokens=4, auto_train=False, spot_check_rate=0.0)


async def test_the_adapter_trains_in_runs_is_saved_and_reset(tmp_path, models_seed, base_dir) -> None:
    data = seed_data_dir(tmp_path / "data", models_seed)
    engine = await Engine.open(data, settings(str(base_dir)), OfflineTeacher(seed=0))
    try:
        assert await engine.load_models() == []
        lm = engine.models.lm
        assert isinstance(lm, PretrainedLM)
        assert engine.models.info()["answer_model"]["trainable_params"] < engine.models.info()["answer_model"]["params"]
        assert await engine.teaching.learn_pairs(TAUGHT * 4, "tool")
        before = taught_loss(lm)
        report = await engine.train("test")
        assert report is not None and report.status == "done"
        assert "adapter" in report.losses and "generator" not in report.losses
        assert (data / MODELS_DIR / ADAPTER_FILE).is_file()
        assert taught_loss(lm) < before / 2  # the run trained the adapter on the taught answers
        learned = [engine.models.answer(q, max_new_tokens=4).token_ids for q, _ in TAUGHT]
    finally:
        await engine.close()

    engine = await Engine.open(data, settings(str(base_dir)), OfflineTeacher(seed=0))
    try:
        await engine.load_models()
        assert [engine.models.answer(q, max_new_tokens=4).token_ids for q, _ in TAUGHT] == learned
        runs_before = await engine.store.run_count()
        said = await engine.reset_adapter()
        assert "reset" in said
        assert await engine.store.run_count() == runs_before + 1  # no older answer calibrates the reset model
        assert not engine.local.thresholds.open_regions and not engine.local.thresholds.neural_calibrated
        lm = engine.models.lm
        assert isinstance(lm, PretrainedLM)
        assert all(float(a.lora_b.detach().abs().sum()) == 0 for a in lm.adapters)
    finally:
        await engine.close()


async def test_without_a_base_model_the_engine_says_so_and_uses_the_generator(tmp_path, models_seed,
                                                                              monkeypatch) -> None:
    monkeypatch.setenv(GGUF_ENV, str(tmp_path / "missing.gguf"))  # not even the installed package's file
    data = seed_data_dir(tmp_path / "data", models_seed)
    engine = await Engine.open(data, settings(str(tmp_path / "nowhere")), OfflineTeacher(seed=0))
    try:
        warnings = await engine.load_models()
        assert any("pre-trained model is unavailable" in w for w in warnings)
        assert isinstance(engine.models.lm, ScratchLM)
        assert "adapter" in await engine.reset_adapter() and not (data / MODELS_DIR / ADAPTER_FILE).exists()
    finally:
        await engine.close()


async def test_a_torn_adapter_is_moved_aside_and_a_fresh_one_starts(tmp_path, models_seed, base_dir) -> None:
    data = seed_data_dir(tmp_path / "data", models_seed)
    (data / MODELS_DIR / ADAPTER_FILE).write_bytes(b"\x00" * 64)  # a save killed half-way, say
    engine = await Engine.open(data, settings(str(base_dir)), OfflineTeacher(seed=0))
    try:
        warnings = await engine.load_models()
        assert any("unreadable adapter" in w and "adapter starts fresh" in w for w in warnings), warnings
        assert isinstance(engine.models.lm, PretrainedLM)
        assert not (data / MODELS_DIR / ADAPTER_FILE).exists()
        assert len(list((data / MODELS_DIR).glob(ADAPTER_FILE + ".bad-*"))) == 1
    finally:
        await engine.close()
