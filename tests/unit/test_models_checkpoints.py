"""Checkpoints: exact round trip, atomic writes, clear errors on bad files."""

from __future__ import annotations

import os

import pytest
import torch

from shammah_tui.models import checkpoints as ck
from shammah_tui.models.checkpoints import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from shammah_tui.models.classifier import ClassifierConfig, TextClassifier
from shammah_tui.models.generator import Generator, GeneratorConfig, generate


pytestmark = pytest.mark.usefixtures("one_torch_thread")


CFG = GeneratorConfig(vocab_size=300, n_embd=32, n_layer=2, n_head=2, block_size=48)


def build_gen(d: dict) -> Generator:
    return Generator(GeneratorConfig.from_dict(d))


def build_clf(d: dict) -> TextClassifier:
    return TextClassifier(ClassifierConfig.from_dict(d))


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = Generator(CFG).eval()
    path = tmp_path / "generator.safetensors"
    save_checkpoint(path, model, CFG.to_dict(), "tokv1", {"step": "10"}, kind="generator")
    return model, path


def test_generator_round_trip_is_exact(saved):
    model, path = saved
    loaded, info = load_checkpoint(path, build_gen, "tokv1", expected_kind="generator")
    loaded.eval()
    assert info == {"kind": "generator", "config": CFG.to_dict(), "tokenizer_version": "tokv1",
                    "extra": {"step": "10"}}
    assert loaded.lm_head.weight is loaded.wte.weight  # the tie survives
    idx = torch.randint(0, 300, (2, 20))
    assert torch.equal(model(idx)[0], loaded(idx)[0])
    assert (generate(model, [1, 2, 3], 20, eos_id=None).token_ids
            == generate(loaded, [1, 2, 3], 20, eos_id=None).token_ids)
    assert sorted(p.name for p in path.parent.iterdir()) == ["generator.safetensors"]  # no tmp left
    assert read_metadata(path)["kind"] == "generator"


def test_classifier_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    cfg = ClassifierConfig.validator(300)
    model = TextClassifier(cfg).eval()
    path = tmp_path / "validator.safetensors"
    save_checkpoint(path, model, cfg.to_dict(), "tokv1", kind="validator")
    loaded, info = load_checkpoint(path, build_clf, "tokv1", expected_kind="validator")
    ids = torch.randint(0, 300, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.bool)
    feats = torch.rand(3, cfg.n_features)
    assert torch.equal(model(ids, mask, feats, ids, mask)[0], loaded(ids, mask, feats, ids, mask)[0])
    assert info["config"] == cfg.to_dict() and info["extra"] == {}


def test_default_kind_is_class_name(tmp_path):
    model = TextClassifier(ClassifierConfig.router(300))
    path = tmp_path / "r.safetensors"
    save_checkpoint(path, model, model.config.to_dict(), "v", None)
    assert load_checkpoint(path, build_clf, None)[1]["kind"] == "TextClassifier"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors", build_gen, None)


@pytest.mark.parametrize("keep", [0, 7, 100, 0.5, -1])
def test_truncated_file(saved, keep):
    _, path = saved
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (len(data) + keep if keep < 0 else keep)
    path.write_bytes(data[:n])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, build_gen, "tokv1")
    assert "\n" not in str(e.value)


def test_garbage_file(tmp_path):
    path = tmp_path / "g.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        load_checkpoint(path, build_gen, None)
    # valid safetensors, but not ours
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not a shammah checkpoint"):
        load_checkpoint(path, build_gen, None)


def test_corrupted_weights(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-64:] = b"\xff" * 64  # NaNs in the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(path, build_gen, "tokv1")


def test_tokenizer_version_mismatch(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_checkpoint(path, build_gen, "tokv2")
    load_checkpoint(path, build_gen, None)  # None: don't check


def test_wrong_kind(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match="router"):
        load_checkpoint(path, build_gen, "tokv1", expected_kind="router")


def test_shape_mismatch(saved):
    _, path = saved
    bigger = GeneratorConfig(vocab_size=300, n_embd=64, n_layer=2, n_head=2, block_size=48)
    with pytest.raises(CheckpointError, match="size mismatch"):
        load_checkpoint(path, lambda d: Generator(bigger), "tokv1")
    with pytest.raises(CheckpointError):  # a classifier can't take generator weights
        load_checkpoint(path, lambda d: TextClassifier(ClassifierConfig.router(300)), "tokv1")
    with pytest.raises(CheckpointError, match="config"):
        load_checkpoint(path, lambda d: Generator(GeneratorConfig(n_embd=30, n_head=4)), "tokv1")


def test_failed_save_keeps_old_file(saved, monkeypatch):
    model, path = saved
    before = path.read_bytes()

    def broken(model, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_model", broken)
    with pytest.raises(OSError):
        save_checkpoint(path, model, CFG.to_dict(), "tokv1")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["generator.safetensors"]
