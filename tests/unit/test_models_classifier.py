"""Router/validator classifiers: shapes, padding, learning a toy task, speed."""

from __future__ import annotations

import random
import statistics
import time

import pytest
import torch

from shammah_tui.models.classifier import (
    ROUTER_FEATURES,
    VALIDATOR_FEATURES,
    ClassifierConfig,
    TextClassifier,
    collate_texts,
)
from shammah_tui.models.tokenizer import TextTokenizer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    corpus = [f"what is {a} plus {b}? it is {c}" for a, b, c in zip(NUMBERS, NUMBERS[1:], NUMBERS[2:])]
    corpus += ["tell me about apples", "tell me about stones", "please explain the weather"]
    return TextTokenizer.build(corpus * 3, vocab_size=300)


def test_config_round_trip_and_presets():
    r = ClassifierConfig.router(300)
    v = ClassifierConfig.validator(300)
    assert (r.n_features, r.pair) == (ROUTER_FEATURES, False)
    assert (v.n_features, v.pair) == (VALIDATOR_FEATURES, True)
    for cfg in (r, v):
        assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg


def test_collate_texts(tok):
    ids, mask = collate_texts(tok, ["tell me about apples", "", "x " * 500], max_len=8)
    assert ids.shape == mask.shape == (3, 8)
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    n0 = len(tok.encode("tell me about apples"))
    assert mask[0].sum() == min(n0, 8) and not mask[1].any() and mask[2].all()
    assert (ids[~mask] == tok.pad_id).all()
    ids, mask = collate_texts(tok, [""], max_len=8)
    assert ids.shape == (1, 1) and not mask.any()


def test_shapes_and_input_checks(tok):
    torch.manual_seed(0)
    router = TextClassifier(ClassifierConfig.router(tok.vocab_size))
    validator = TextClassifier(ClassifierConfig.validator(tok.vocab_size))
    q, qm = collate_texts(tok, ["what is one plus two?", "tell me about apples"], 16)
    a, am = collate_texts(tok, ["it is three", "no idea"], 16)
    logits, loss = router(q, qm, torch.rand(2, ROUTER_FEATURES))
    assert logits.shape == (2,) and loss is None
    logits, loss = validator(q, qm, torch.rand(2, VALIDATOR_FEATURES), a, am, labels=torch.tensor([1.0, 0.0]))
    assert logits.shape == (2,) and loss.ndim == 0 and loss.item() > 0
    with pytest.raises(ValueError):
        validator(q, qm, torch.rand(2, VALIDATOR_FEATURES))  # answer missing
    with pytest.raises(ValueError):
        router(q, qm, torch.rand(2, ROUTER_FEATURES + 1))
    with pytest.raises(ValueError):
        router(q, qm, None)


def test_padding_does_not_change_the_output(tok):
    torch.manual_seed(0)
    router = TextClassifier(ClassifierConfig.router(tok.vocab_size)).eval()
    feats = torch.rand(1, ROUTER_FEATURES)
    alone = collate_texts(tok, ["what is one plus two?"], 32)
    padded_ids, padded_mask = collate_texts(tok, ["what is one plus two?", "x " * 40], 32)
    a, _ = router(*alone, feats)
    b, _ = router(padded_ids[:1], padded_mask[:1], feats)
    assert padded_mask[0].sum() < padded_ids.shape[1]
    assert torch.allclose(a, b, atol=1e-6)


def _train(model, batch, labels, steps=150):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        _, loss = model(*batch, labels=labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return loss.item()


def test_router_learns_a_separable_task(tok):
    rng = random.Random(0)
    texts, labels = [], []
    for i in range(64):
        pos = i % 2 == 0
        topic = "apples" if pos else "stones"
        texts.append(f"tell me about {topic} {rng.choice(NUMBERS)}")
        labels.append(1.0 if pos else 0.0)
    torch.manual_seed(0)
    router = TextClassifier(ClassifierConfig.router(tok.vocab_size))
    ids, mask = collate_texts(tok, texts, 16)
    feats = torch.rand(len(texts), ROUTER_FEATURES, generator=torch.Generator().manual_seed(0))  # noise
    y = torch.tensor(labels)
    assert _train(router, (ids, mask, feats), y) < 0.05
    logits, _ = router(ids, mask, feats)
    assert ((logits > 0).float() == y).all()


def test_validator_learns_agreement(tok):
    # positive: the answer repeats the query's last number; negative: another number
    rng = random.Random(1)
    qs, ans, labels = [], [], []
    for i in range(80):
        n = rng.choice(NUMBERS)
        qs.append(f"what is {n}?")
        ok = i % 2 == 0
        ans.append(f"it is {n}" if ok else f"it is {rng.choice([m for m in NUMBERS if m != n])}")
        labels.append(1.0 if ok else 0.0)
    torch.manual_seed(0)
    validator = TextClassifier(ClassifierConfig.validator(tok.vocab_size))
    q, qm = collate_texts(tok, qs, 16)
    a, am = collate_texts(tok, ans, 16)
    feats = torch.zeros(len(qs), VALIDATOR_FEATURES)
    y = torch.tensor(labels)
    batch = (q, qm, feats, a, am)
    assert _train(validator, batch, y, steps=300) < 0.1
    logits, _ = validator(*batch)
    assert ((logits > 0).float() == y).float().mean() >= 0.95


def test_router_decision_is_fast():
    tok = TextTokenizer.build(["what is the capital of france and why?"] * 3, vocab_size=300)
    torch.manual_seed(0)
    router = TextClassifier(ClassifierConfig.router(8000)).eval()
    feats = torch.rand(1, ROUTER_FEATURES)
    query = "what is the capital of france, and how many people live there today?"

    def once():
        with torch.inference_mode():
            ids, mask = collate_texts(tok, [query], 64)
            return torch.sigmoid(router(ids, mask, feats)[0]).item()

    for _ in range(20):
        once()
    times = []
    for _ in range(100):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    # well under 1 ms when the machine is quiet; the bound leaves room for a busy CI box
    assert statistics.median(times) < 0.005
