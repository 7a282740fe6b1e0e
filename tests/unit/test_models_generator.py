"""Generator: shapes, masked loss, KV cache == plain path, stopping rules, prompt format, learning."""

from __future__ import annotations

import random
import time

import pytest
import torch

from shammah_tui.models.generator import (
    IGNORE_INDEX,
    Generator,
    GeneratorConfig,
    encode_example,
    encode_prompt,
    generate,
)
from shammah_tui.models.tokenizer import TextTokenizer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = GeneratorConfig(vocab_size=300, n_embd=64, n_layer=2, n_head=4, block_size=48)


def make_model(cfg: GeneratorConfig = SMALL, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    # Louder position embeddings and a sharper head than the default init, so that a random
    # model produces varied tokens with clear margins instead of repeating its last token.
    model = Generator(cfg)
    with torch.no_grad():
        model.wpe.weight.mul_(10)
        model.ln_f.weight.mul_(10)
    return model.eval()


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    corpus = [f"what is {i} plus {i + 1}? the answer is {2 * i + 1}. context turn {i}" for i in range(50)]
    return TextTokenizer.build(corpus, vocab_size=400)


PROMPTS = [[7], [1, 2, 3], list(range(10, 30)), [299, 5, 5, 5, 17, 42]]


def test_config_dict_round_trip():
    cfg = GeneratorConfig(vocab_size=123, n_embd=32, n_layer=3, n_head=2, block_size=64, dropout=0.1)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert GeneratorConfig.from_dict({**cfg.to_dict(), "future_key": 1}) == cfg
    assert GeneratorConfig() == GeneratorConfig(8000, 128, 2, 4, 256, 0.0)
    with pytest.raises(ValueError):
        GeneratorConfig(n_embd=130, n_head=4)


def test_forward_shapes_and_tied_head():
    m = make_model()
    idx = torch.randint(0, 300, (3, 20))
    logits, loss = m(idx)
    assert logits.shape == (3, 20, 300) and loss is None
    logits, _ = m(idx, last_only=True)
    assert logits.shape == (3, 1, 300)
    assert m.lm_head.weight is m.wte.weight
    assert m.num_params() == sum(p.numel() for p in m.parameters())
    with pytest.raises(ValueError):
        m(torch.zeros(1, 49, dtype=torch.long))


def test_default_size_is_about_one_and_a_half_million():
    assert 1_400_000 < Generator(GeneratorConfig()).num_params() < 1_500_000


def test_loss_ignores_masked_positions():
    m = make_model()
    idx = torch.randint(0, 300, (2, 16))
    targets = torch.randint(0, 300, (2, 16))
    targets[:, :8] = IGNORE_INDEX
    _, loss = m(idx, targets)
    changed = targets.clone()
    changed[:, :8] = 5  # now supervised: must change the loss
    _, loss_changed = m(idx, changed)
    assert not torch.isclose(loss, loss_changed)
    # a prompt token that is masked may be anything without changing the loss
    masked_other = targets.clone()
    masked_other[0, 3] = IGNORE_INDEX
    assert torch.equal(m(idx, masked_other)[1], loss)
    # the loss is the mean over supervised positions only
    logits, _ = m(idx)
    ref = torch.nn.functional.cross_entropy(logits[:, 8:].reshape(-1, 300), targets[:, 8:].reshape(-1))
    assert torch.allclose(loss, ref, atol=1e-6)
    # nothing supervised: zero, not NaN, and still differentiable
    _, empty = m(idx, torch.full_like(targets, IGNORE_INDEX))
    assert empty.item() == 0.0 and empty.requires_grad


def test_chunked_cached_forward_matches_full_forward():
    m = make_model()
    idx = torch.randint(0, 300, (2, 30))
    full, _ = m(idx)
    runs = m.run_positions(idx)  # (3, B, T): a chunk after the first takes its slice
    caches = m.new_caches(batch=2, max_len=30)
    with torch.inference_mode():
        a, _ = m(idx[:, :12], caches=caches, runs=runs[:, :, :12])
        b, _ = m(idx[:, 12:13], caches=caches, pos0=12, runs=runs[:, :, 12:13])
        c, _ = m(idx[:, 13:], caches=caches, pos0=13, runs=runs[:, :, 13:])
    assert torch.allclose(torch.cat([a, b, c], 1), full, atol=1e-5)


def test_a_chunk_after_the_first_needs_its_run_positions():
    m = make_model()
    caches = m.new_caches(batch=1, max_len=8)
    with pytest.raises(ValueError, match="run positions"):
        m(torch.zeros(1, 2, dtype=torch.long), caches=caches, pos0=4)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_cache_matches_plain_greedy(prompt):
    m = make_model()
    cached = generate(m, prompt, max_new_tokens=30, eos_id=None, use_cache=True)
    plain = generate(m, prompt, max_new_tokens=30, eos_id=None, use_cache=False)
    assert cached.token_ids == plain.token_ids
    assert len(cached.token_ids) == min(30, SMALL.block_size - len(prompt))
    assert len(set(cached.token_ids)) > 5
    assert cached.token_probs == pytest.approx(plain.token_probs, abs=1e-5)


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("seed", [0, 1, 1234])
def test_cache_matches_plain_sampled(prompt, seed):
    m = make_model()
    kw = dict(max_new_tokens=30, eos_id=None, temperature=1.0, seed=seed)
    cached = generate(m, prompt, use_cache=True, **kw)
    plain = generate(m, prompt, use_cache=False, **kw)
    assert cached.token_ids == plain.token_ids
    assert generate(m, prompt, use_cache=True, **kw).token_ids == cached.token_ids  # seeded: repeatable


def test_sampling_depends_on_seed_and_temperature():
    m = make_model()
    runs = {tuple(generate(m, [1, 2, 3], 20, eos_id=None, temperature=1.5, seed=s).token_ids) for s in range(5)}
    assert len(runs) > 1
    greedy = generate(m, [1, 2, 3], 20, eos_id=None)
    assert generate(m, [1, 2, 3], 20, eos_id=None, temperature=1e-4, seed=9).token_ids == greedy.token_ids


def test_cache_follows_weight_updates():
    m = make_model()
    before = generate(m, [4, 5, 6], 20, eos_id=None).token_ids
    opt = torch.optim.AdamW(m.parameters(), lr=0.05)
    idx = torch.randint(0, 300, (4, 24))
    m.train()
    for _ in range(3):
        _, loss = m(idx, idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    cached = generate(m, [4, 5, 6], 20, eos_id=None, use_cache=True).token_ids
    assert m.training  # generate restores the caller's mode
    assert cached == generate(m, [4, 5, 6], 20, eos_id=None, use_cache=False).token_ids
    assert cached != before


def test_stops_on_eos_and_excludes_it():
    m = make_model()
    free = generate(m, [3, 1, 4], 20, eos_id=None).token_ids
    k = next(i for i, t in enumerate(free) if t not in free[:i] and i >= 2)
    for use_cache in (True, False):
        res = generate(m, [3, 1, 4], 20, eos_id=free[k], use_cache=use_cache)
        assert res.token_ids == free[:k]
        assert res.stopped_on_eos
        assert len(res.token_probs) == k
        assert 0.0 < res.confidence <= min(res.token_probs)


def test_respects_token_limit():
    m = make_model()
    for n in (0, 1, 5):
        res = generate(m, [1, 2], n, eos_id=None)
        assert len(res.token_ids) == n and not res.stopped_on_eos
        assert all(0.0 < p <= 1.0 for p in res.token_probs)
    res = generate(m, [1, 2], 5, eos_id=None)
    assert res.confidence == min(res.token_probs)


@pytest.mark.parametrize("use_cache", [True, False])
def test_never_exceeds_block_size(use_cache):
    m = make_model()
    bs = SMALL.block_size
    res = generate(m, list(range(1, bs - 3 + 1)), 64, eos_id=None, use_cache=use_cache)
    assert len(res.token_ids) == 3
    res = generate(m, list(range(1, bs + 1)), 64, eos_id=None, use_cache=use_cache)
    assert res.token_ids == [] and not res.stopped_on_eos
    with pytest.raises(ValueError):
        generate(m, list(range(1, bs + 2)), 64, eos_id=None, use_cache=use_cache)
    with pytest.raises(ValueError):
        generate(m, [], 64)


def test_prompt_format(tok):
    p = encode_prompt(tok, "what is 2 plus 3?", "earlier turn")
    assert p[0] == tok.context_id and p[-1] == tok.assistant_id
    u = p.index(tok.user_id)
    assert tok.decode(p[1:u]) == "earlier turn"
    assert tok.decode(p[u + 1:-1]) == "what is 2 plus 3?"
    assert encode_prompt(tok, "hi", "") == [tok.context_id, tok.user_id, *tok.encode("hi"), tok.assistant_id]
    # a typed special token in the query stays text
    assert encode_prompt(tok, "<|assistant|>", "").count(tok.assistant_id) == 1


def test_prompt_truncation(tok):
    bs = 160
    ctx = " ".join(f"turn {i}" for i in range(400)) + " LASTCONTEXT"
    query = "FIRSTQUERY " + " ".join(f"word {i}" for i in range(400)) + " LASTQUERY"
    p = encode_prompt(tok, query, ctx, block_size=bs)
    assert len(p) <= bs - 64
    u = p.index(tok.user_id)
    assert tok.decode(p[1:u]).endswith("LASTCONTEXT")  # context cut from the left
    q = tok.decode(p[u + 1:-1])
    assert q.startswith("FIRSTQUERY") and q.endswith("LASTQUERY")  # query keeps both ends
    assert u > 1  # the context keeps a share even against a huge query
    # a short query leaves the rest of the budget to the context
    p = encode_prompt(tok, "hi", ctx, block_size=bs)
    assert len(p) == bs - 64
    # a 1 MB paste is cut before encoding, so it stays fast
    t = time.perf_counter()
    p = encode_prompt(tok, "x" * 1_000_000, "y" * 1_000_000)
    assert time.perf_counter() - t < 10 and len(p) <= 256 - 64  # encoding all of it takes minutes


def test_encode_example_supervises_answer_and_eos(tok):
    x, y = encode_example(tok, "what is 1 plus 2?", "", "the answer is 3.")
    prompt = encode_prompt(tok, "what is 1 plus 2?", "")
    ans = tok.encode("the answer is 3.")
    assert len(x) == len(y) == len(prompt) + len(ans)
    assert x[: len(prompt)] == prompt
    assert y[: len(prompt) - 1] == [IGNORE_INDEX] * (len(prompt) - 1)
    assert y[len(prompt) - 1:] == ans + [tok.eos_id]
    assert y[len(prompt) - 1:-1] == x[len(prompt):]  # targets are the inputs shifted by one
    x, y = encode_example(tok, "q", "", "the answer is 3. " * 200, block_size=64)
    assert len(x) == len(y) == 64


def _batch(examples, pad_id):
    T = max(len(x) for x, _ in examples)
    X = torch.full((len(examples), T), pad_id)
    Y = torch.full((len(examples), T), IGNORE_INDEX)
    for i, (x, y) in enumerate(examples):
        X[i, : len(x)] = torch.tensor(x)
        Y[i, : len(y)] = torch.tensor(y)
    return X, Y


def test_memorizes_pairs_and_is_confident_only_on_them():
    rng = random.Random(0)
    words = ["red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "river", "stone",
             "fire", "ice", "wind", "rain", "gold", "iron", "salt", "milk", "bread", "wolf"]
    pairs = [(f"what is the code for {w}?", f"the code for {w} is {rng.randint(100, 999)}") for w in words]
    unseen = [f"what is the code for {w}?" for w in ["sky", "sea", "hill", "snow", "leaf", "rock", "bear"]]
    unseen += ["tell me a joke about dogs", "how far is the moon?", "zzz"]
    tok = TextTokenizer.build([f"{q} {a}" for q, a in pairs] * 2, vocab_size=400)
    cfg = GeneratorConfig(vocab_size=tok.vocab_size, n_embd=64, n_layer=2, n_head=4, block_size=96)
    torch.manual_seed(0)
    m = Generator(cfg)
    X, Y = _batch([encode_example(tok, q, "", a, block_size=96, reserve=32) for q, a in pairs], tok.pad_id)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.0)
    m.train()
    for _ in range(300):
        _, loss = m(X, Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05

    def ask(q):
        return generate(m, encode_prompt(tok, q, "", block_size=96, reserve=32), 32, eos_id=tok.eos_id)

    seen = [ask(q) for q, _ in pairs]
    assert [tok.decode(r.token_ids) for r in seen] == [a for _, a in pairs]
    assert all(r.stopped_on_eos for r in seen)
    guesses = [ask(q).confidence for q in unseen]
    conf_seen = sorted(r.confidence for r in seen)
    assert conf_seen[0] > 0.8
    assert sum(conf_seen) / len(conf_seen) - sum(guesses) / len(guesses) > 0.2
    assert conf_seen[0] > sorted(guesses)[len(guesses) // 2]  # every seen answer beats the median guess
