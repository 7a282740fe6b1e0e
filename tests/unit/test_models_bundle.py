"""LocalModels: create, save, load, recover from bad files, thread-safe inference."""

from __future__ import annotations

import threading

import pytest
import torch

from shammah_tui.models.bundle import (
    GENERATOR_FILE,
    ROUTER_FILE,
    TOKENIZER_FILE,
    VALIDATOR_FILE,
    LocalModels,
    NeuralAnswer,
)
from shammah_tui.models.classifier import ROUTER_FEATURES, VALIDATOR_FEATURES
from shammah_tui.models.generator import GeneratorConfig
from shammah_tui.models.tokenizer import TextTokenizer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


CFG = GeneratorConfig(n_embd=32, n_layer=1, n_head=2, block_size=96)
CPU = torch.device("cpu")


def corpus():
    return [f"what is {i} times {i + 2}? it is {i * (i + 2)}" for i in range(60)]


def load(model_dir, cfg=CFG):
    return LocalModels.load_or_create(model_dir, corpus, cfg, vocab_size=400, seed=7, device=CPU)


def outputs(m: LocalModels):
    a = m.answer("what is 3 times 5?", context="we were multiplying", max_new_tokens=12)
    r = m.router_p(["what is 3 times 5?", "hello"], [[0.1] * ROUTER_FEATURES, [0.9] * ROUTER_FEATURES])
    v = m.validator_p(["what is 3 times 5?"], ["it is 15"], [[0.5] * VALIDATOR_FEATURES])
    return a.text, a.token_count, a.confidence, r, v


def test_empty_dir_save_load_same_outputs(tmp_path):
    m, warnings = load(tmp_path)
    assert warnings == []
    assert (tmp_path / TOKENIZER_FILE).exists()  # built from the corpus and saved at once
    assert m.generator.config.vocab_size == m.tokenizer.vocab_size <= 400
    before = outputs(m)
    m.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [TOKENIZER_FILE, GENERATOR_FILE, ROUTER_FILE, VALIDATOR_FILE])
    m2, warnings = load(tmp_path)
    assert warnings == []
    assert m2.tokenizer.version == m.tokenizer.version
    assert outputs(m2) == before


def test_create_is_seeded_and_keeps_global_rng(tmp_path):
    tok = TextTokenizer.build(corpus(), vocab_size=400)
    state = torch.random.get_rng_state()
    a = LocalModels.create(tok, CFG, seed=3, device=CPU)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = LocalModels.create(tok, CFG, seed=3, device=CPU)
    c = LocalModels.create(tok, CFG, seed=4, device=CPU)
    assert outputs(a) == outputs(b)
    assert outputs(a)[3] != outputs(c)[3]


def test_answer_fields_and_limits(tmp_path):
    m, _ = load(tmp_path)
    a = m.answer("what is 1 times 3?", max_new_tokens=5)
    assert isinstance(a, NeuralAnswer)
    assert a.token_count == len(a.token_ids) == len(a.token_probs) <= 5
    assert 0.0 <= a.confidence <= 1.0 and a.latency_ms > 0
    assert m.tokenizer.decode(a.token_ids) == a.text
    assert m.answer("x" * 100_000, context="y" * 100_000, max_new_tokens=8).token_count <= 8
    s1 = m.answer("hi", temperature=1.0, seed=5, max_new_tokens=10)
    s2 = m.answer("hi", temperature=1.0, seed=5, max_new_tokens=10, use_cache=False)
    assert s1.token_ids == s2.token_ids
    assert m.router_p([], []) == [] and m.validator_p([], [], []) == []
    with pytest.raises(ValueError):
        m.router_p(["a", "b"], [[0.0] * ROUTER_FEATURES])
    with pytest.raises(ValueError):
        m.validator_p(["a"], ["b", "c"], [[0.0] * VALIDATOR_FEATURES])


def test_truncated_generator_gives_fresh_model_and_warning(tmp_path):
    m, _ = load(tmp_path)
    m.save(tmp_path)
    saved = outputs(m)
    gen = tmp_path / GENERATOR_FILE
    gen.write_bytes(gen.read_bytes()[:1000])
    m2, warnings = load(tmp_path)
    assert len(warnings) == 1 and "generator" in warnings[0] and "\n" not in warnings[0]
    bad = list(tmp_path.glob(GENERATOR_FILE + ".bad-*"))
    assert len(bad) == 1 and bad[0].stat().st_size == 1000  # kept, not deleted
    assert not gen.exists()
    fresh = outputs(m2)
    assert fresh[3:] == saved[3:]  # router and validator were fine and loaded
    assert fresh[:3] == saved[:3]  # the fresh generator is the same seeded init as the first one
    m2.save(tmp_path)
    assert load(tmp_path)[1] == []


def test_bad_tokenizer_means_new_tokenizer_and_fresh_models(tmp_path):
    m, _ = load(tmp_path)
    with torch.no_grad():
        m.router.mlp[2].bias.fill_(3.0)  # make saved router weights recognisable
    m.save(tmp_path)
    (tmp_path / TOKENIZER_FILE).write_text('{"version": "1.0", "trunc')
    m2, warnings = load(tmp_path)
    assert len(list(tmp_path.glob(TOKENIZER_FILE + ".bad-*"))) == 1
    assert len(warnings) == 1 and "tokenizer" in warnings[0]
    # same corpus => same tokenizer version, so the old checkpoints are compatible again;
    # a tokenizer built from another corpus must not load them
    assert m2.tokenizer.version == m.tokenizer.version

    def other_corpus():
        return ["completely different words for a different vocabulary"] * 5

    (tmp_path / TOKENIZER_FILE).write_bytes(b"\x00garbage")
    m3, warnings = LocalModels.load_or_create(tmp_path, other_corpus, CFG, 400, seed=7, device=CPU)
    assert m3.tokenizer.version != m.tokenizer.version
    assert len(warnings) == 4  # the tokenizer, then each checkpoint trained on the old one
    assert all(list(tmp_path.glob(name + ".bad-*")) for name in (GENERATOR_FILE, ROUTER_FILE, VALIDATOR_FILE))
    assert m3.router.mlp[2].bias.item() != 3.0
    assert m3.generator.config.vocab_size == m3.tokenizer.vocab_size


def test_changed_generator_config_starts_fresh(tmp_path):
    m, _ = load(tmp_path)
    m.save(tmp_path)
    bigger = GeneratorConfig(n_embd=64, n_layer=1, n_head=2, block_size=96)
    m2, warnings = load(tmp_path, bigger)
    assert len(warnings) == 1 and "config" in warnings[0]
    assert m2.generator.config.n_embd == 64
    assert list(tmp_path.glob(GENERATOR_FILE + ".bad-*"))


def test_info(tmp_path):
    m, _ = load(tmp_path)
    info = m.info()
    assert info["device"].startswith("cpu (")
    assert set(info["params"]) == {"generator", "router", "validator"}
    assert all(n > 0 for n in info["params"].values())
    assert info["tokenizer_version"] == m.tokenizer.version
    assert info["vocab_size"] == m.tokenizer.vocab_size


def test_threads_share_the_models(tmp_path):
    m, _ = load(tmp_path)
    expected = outputs(m)
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(outputs(m))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def train():
        try:
            for _ in range(3):
                with m.lock:
                    m.generator.train()
                    idx = torch.randint(0, m.tokenizer.vocab_size, (2, 10))
                    with torch.no_grad():  # a stand-in for a training step that changes nothing
                        m.generator(idx, idx)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)] + [threading.Thread(target=train)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [expected] * 9
