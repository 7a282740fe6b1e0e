"""The sentence encoder, on a tiny BERT written in the real model's file layout (no real weights)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import Tokenizer

from shammah_tui.models.encoder import EncoderError, SentenceEncoder, hf_hub_cache, locate_encoder
from tests.tiny_encoder import HIDDEN, MAX_SEQ_LENGTH, make_tiny_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = [
    "How do I convert kilometres to miles?",
    "",
    "and in French?",
    "What is the capital of France? " * 5,  # longer than MAX_SEQ_LENGTH tokens: truncated
    "naïve café 東京",
    "x",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("enc") / "tiny-bert")


@pytest.fixture(scope="module")
def encoder(tiny_dir) -> SentenceEncoder:
    return SentenceEncoder.load(tiny_dir)


def copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.rglob("*"):
        if f.is_file():
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.relative_to(src)).write_bytes(f.read_bytes())
    return dst


# ----------------------------------------------------------------------------- embeddings


def test_shape_dtype_and_unit_rows(encoder):
    e = encoder.embed(TEXTS)
    assert e.shape == (len(TEXTS), HIDDEN) and e.dtype == np.float32
    assert encoder.dim == HIDDEN
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    assert encoder.embed([]).shape == (0, HIDDEN)


def test_deterministic_and_batch_equals_single(encoder):
    batch = encoder.embed(TEXTS, batch_size=3)  # several batches, each padded differently
    singles = np.stack([encoder.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    np.testing.assert_array_equal(encoder.embed(TEXTS, batch_size=3), batch)
    assert not np.allclose(batch[0], batch[2])  # different texts, different vectors


def test_matches_a_naive_bert_written_from_the_hf_tensors(encoder, tiny_dir):
    """Guards the renaming and q/k/v fusing: the same maths, written plainly per text."""
    with safe_open(str(tiny_dir / "model.safetensors"), framework="pt") as f:
        w = {k: f.get_tensor(k) for k in f.keys()}
    tok = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_SEQ_LENGTH)

    def ln(x, p):
        return torch.nn.functional.layer_norm(x, (HIDDEN,), w[p + ".weight"], w[p + ".bias"], eps=1e-12)

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    def embed_one(text: str) -> np.ndarray:
        ids = torch.tensor(tok.encode(text).ids)
        T, H, hd = len(ids), 2, HIDDEN // 2
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = ln(x, "embeddings.LayerNorm")
        for i in range(2):
            p = f"encoder.layer.{i}."
            heads = []
            for h in range(H):
                sl = slice(h * hd, (h + 1) * hd)
                q, k, v = (lin(x, p + f"attention.self.{n}")[:, sl] for n in ("query", "key", "value"))
                heads.append(torch.softmax(q @ k.T / math.sqrt(hd), dim=-1) @ v)
            x = ln(x + lin(torch.cat(heads, dim=1), p + "attention.output.dense"), p + "attention.output.LayerNorm")
            mlp = lin(torch.nn.functional.gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
            x = ln(x + mlp, p + "output.LayerNorm")
        v = x.mean(0)
        return (v / v.norm()).numpy()

    np.testing.assert_allclose(encoder.embed(TEXTS), np.stack([embed_one(t) for t in TEXTS]), atol=1e-5)


def test_empty_odd_and_huge_inputs(encoder):
    e = encoder.embed(["", " ", "\x00\x07", "bad \ud800 surrogate", "🙂" * 100])
    assert np.isfinite(e).all()
    huge = "word " * 200_000  # 1 MB
    # Truncated to MAX_SEQ_LENGTH tokens: the same vector as any prefix that long.
    np.testing.assert_allclose(encoder.embed([huge])[0], encoder.embed(["word " * 100])[0], atol=1e-6)
    assert np.isfinite(encoder.embed(["a" * 1_000_000])).all()
    with pytest.raises(TypeError):
        encoder.embed("one string, not a list")


WORDS = ["a", "word", "naïve", "東京", "?", "x" * 120, "kilometres", ",", "é", "hello", "日"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from([" ", "", "  \n", "\t"])),
                min_size=0, max_size=600))
def test_long_text_cut_keeps_exactly_the_tokens_of_the_whole_text(encoder, parts):
    text = "".join(w + sep for w, sep in parts)
    whole = encoder._tok.encode(text).ids
    assert encoder._tok.encode(encoder._prepare(text)).ids == whole


def test_concurrent_threads_get_the_sequential_result(encoder):
    want = encoder.embed(TEXTS)
    got, errors = [], []

    def work():
        try:
            for _ in range(5):
                got.append(encoder.embed(TEXTS))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 20
    for g in got:
        np.testing.assert_allclose(g, want, atol=1e-6)


# ----------------------------------------------------------------------------- identity


def test_name_and_fingerprint(encoder, tiny_dir, tmp_path):
    assert encoder.name == "tiny-bert"
    again = SentenceEncoder.load(copy_model(tiny_dir, tmp_path / "copy" / "tiny-bert"))
    assert again.fingerprint == encoder.fingerprint  # a copy is the same encoder
    other_weights = SentenceEncoder.load(make_tiny_encoder(tmp_path / "seed1", seed=1))
    assert other_weights.fingerprint != encoder.fingerprint
    longer = copy_model(tiny_dir, tmp_path / "longer")
    (longer / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    assert SentenceEncoder.load(longer).fingerprint != encoder.fingerprint


def test_name_of_a_hub_snapshot(tiny_dir, tmp_path):
    snap = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / "abc"
    copy_model(tiny_dir, snap)
    assert SentenceEncoder.load(snap).name == "all-MiniLM-L6-v2"


# ----------------------------------------------------------------------------- finding the folder


def hub_snapshot(hub: Path, tiny_dir: Path, rev: str, main: str | None = None) -> Path:
    repo = hub / "models--sentence-transformers--all-MiniLM-L6-v2"
    snap = copy_model(tiny_dir, repo / "snapshots" / rev)
    if main is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(main)
    return snap


def test_hub_cache_resolution():
    assert hf_hub_cache({"HOME": "/h"}) == Path("/h/.cache/huggingface/hub")
    assert hf_hub_cache({"HOME": "/h", "XDG_CACHE_HOME": "/x"}) == Path("/x/huggingface/hub")
    assert hf_hub_cache({"HOME": "/h", "XDG_CACHE_HOME": "/x", "HF_HOME": "~/hf"}) == Path("/h/hf/hub")
    assert hf_hub_cache({"HF_HOME": "/hf", "HF_HUB_CACHE": "/cache"}) == Path("/cache")


def test_locate_prefers_the_configured_folder(tiny_dir, tmp_path):
    hub_snapshot(tmp_path / "hf" / "hub", tiny_dir, "r1", main="r1")
    env = {"HF_HOME": str(tmp_path / "hf")}
    assert locate_encoder(tiny_dir, env) == tiny_dir
    # A configured folder that is not a model falls through to the cache.
    assert locate_encoder(tmp_path / "nowhere", env).name == "r1"


def test_locate_follows_refs_main_then_any_snapshot(tiny_dir, tmp_path):
    hub = tmp_path / "hf" / "hub"
    hub_snapshot(hub, tiny_dir, "old")
    hub_snapshot(hub, tiny_dir, "new", main="new")
    env = {"HF_HOME": str(tmp_path / "hf")}
    assert locate_encoder(None, env).name == "new"
    (hub / "models--sentence-transformers--all-MiniLM-L6-v2" / "refs" / "main").write_text("gone")
    assert locate_encoder(None, env).name in ("old", "new")
    assert locate_encoder(None, {"HF_HUB_CACHE": str(hub)}) is not None
    assert locate_encoder(None, {"XDG_CACHE_HOME": str(tmp_path / "x"), "HOME": str(tmp_path)}) is None


def test_locate_ignores_incomplete_snapshots(tiny_dir, tmp_path):
    snap = hub_snapshot(tmp_path / "hub", tiny_dir, "r1", main="r1")
    (snap / "model.safetensors").unlink()
    assert locate_encoder(None, {"HF_HUB_CACHE": str(tmp_path / "hub")}) is None
    assert locate_encoder(snap, {}) is None


# ----------------------------------------------------------------------------- bad folders


def broken(tiny_dir: Path, tmp_path: Path, name: str, content: bytes | None) -> Path:
    folder = copy_model(tiny_dir, tmp_path / "bad")
    if content is None:
        (folder / name).unlink()
    else:
        (folder / name).write_bytes(content)
    return folder


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("model.safetensors", None, "lacks model.safetensors"),
        ("tokenizer.json", None, "lacks tokenizer.json"),
        ("config.json", b"{not json", "bad JSON"),
        ("config.json", b'{"model_type": "bert"}', "lacks 'vocab_size'"),
        ("config.json", b'{"model_type": "gpt2"}', "not bert"),
        ("config.json", b"[1, 2]", "expected an object"),
        ("tokenizer.json", b'{"version": "1.0"}', "bad tokenizer"),
        ("modules.json", b'[{"type": "Transformer"}, {"type": "Pooling"}, {"type": "Dense"}]', "unsupported module"),
        ("1_Pooling/config.json", b'{"pooling_mode_mean_sqrt_len_tokens": true}', "unsupported pooling"),
        ("sentence_bert_config.json", b'{"max_seq_length": 100000}', "max_seq_length"),
        ("model.safetensors", b"\x00" * 7, "unreadable weights"),
    ],
)
def test_bad_files_raise_encoder_error(tiny_dir, tmp_path, name, content, message):
    with pytest.raises(EncoderError, match=message):
        SentenceEncoder.load(broken(tiny_dir, tmp_path, name, content))


def test_pooling_configs(tiny_dir, tmp_path, encoder):
    folder = copy_model(tiny_dir, tmp_path / "newer")  # sentence-transformers 5 writes one string
    (folder / "1_Pooling" / "config.json").write_text('{"embedding_dimension": 32, "pooling_mode": "mean"}')
    np.testing.assert_allclose(SentenceEncoder.load(folder).embed(TEXTS), encoder.embed(TEXTS), atol=1e-6)
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    cls = SentenceEncoder.load(folder)
    assert cls.config.pooling == "cls" and cls.fingerprint != encoder.fingerprint
    assert np.isfinite(cls.embed(TEXTS)).all()


def test_missing_folder(tmp_path):
    with pytest.raises(EncoderError, match="not found"):
        SentenceEncoder.load(tmp_path / "absent")


def test_truncated_weights(tiny_dir, tmp_path):
    data = (tiny_dir / "model.safetensors").read_bytes()
    with pytest.raises(EncoderError, match="unreadable weights"):
        SentenceEncoder.load(broken(tiny_dir, tmp_path, "model.safetensors", data[: len(data) // 2]))


def test_weights_that_do_not_fit_the_config(tiny_dir, tmp_path):
    folder = copy_model(tiny_dir, tmp_path / "wide")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 128
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(EncoderError, match="intermediate.dense.weight|fc.weight"):
        SentenceEncoder.load(folder)


def test_missing_and_non_finite_tensors(tiny_dir, tmp_path):
    with safe_open(str(tiny_dir / "model.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    folder = copy_model(tiny_dir, tmp_path / "nan")
    bad = dict(tensors)
    bad["encoder.layer.1.output.dense.bias"] = torch.full_like(bad["encoder.layer.1.output.dense.bias"], math.nan)
    save_file(bad, str(folder / "model.safetensors"))
    with pytest.raises(EncoderError, match="non-finite"):
        SentenceEncoder.load(folder)
    del bad["encoder.layer.1.output.dense.bias"]
    save_file(bad, str(folder / "model.safetensors"))
    with pytest.raises(EncoderError, match="lack tensor 'encoder.layer.1.output.dense.bias'"):
        SentenceEncoder.load(folder)


def test_without_an_encoder_the_notice_says_where_it_looked_and_how_to_enable_one(tmp_path, monkeypatch):
    from shammah_tui.engine.model_host import ModelHost
    from shammah_tui.settings import Settings

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    said: list = []
    host = ModelHost(tmp_path, Settings(), store=None, local=None, emit=said.append)  # type: ignore[arg-type]
    assert host._load_encoder_sync() is None
    (notice,) = said
    assert str(tmp_path / "hf" / "hub") in notice.text and "$HF_HOME" not in notice.text
    assert "all-MiniLM-L6-v2" in notice.text and "encoder_download = true" in notice.text
