"""The pre-trained model behind the AnswerModel interface: LoRA adapters over frozen weights, the
examples it trains on, its files. A tiny random llama written as a GGUF file stands in for SmolLM2."""

from __future__ import annotations

import random

import pytest
import torch

from shammah_tui.models import gguf_convert
from shammah_tui.models.lora import LoRAConfig
from shammah_tui.models.pretrained import IGNORE_INDEX, PretrainedLM
from shammah_tui.training.trainer import _pad_pairs
from tests.llama_numpy import converted_tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LORA = LoRAConfig(rank=4, alpha=8.0)
# Two questions with one-token answers the random model does not give before training.
TAUGHT = [("hello the world", "12"), ("the hello", "world")]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return converted_tiny(tmp_path_factory)


def fresh(base_dir, lora: LoRAConfig = LORA, seed: int = 0) -> PretrainedLM:
    return PretrainedLM.load(base_dir, lora, seed=seed)


def logits(lm: PretrainedLM, query: str) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(torch.tensor([lm.prompt_ids(query)]))[0]


def train(lm: PretrainedLM, pairs, steps: int = 80, lr: float = 3e-2) -> list[float]:
    opt = torch.optim.AdamW(list(lm.trainable_parameters()), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        x, y = _pad_pairs([lm.encode_example(q, "", a) for q, a in pairs], lm.pad_id, "cpu")
        lm.set_training(True)
        loss = lm.answer_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        lm.set_training(False)
        losses.append(loss.item())
    return losses


def test_a_fresh_adapter_is_the_base_model(base_dir):
    plain, _ = gguf_convert.load_converted(base_dir)
    lm = fresh(base_dir)
    ids = torch.tensor([lm.prompt_ids("hello the world")])
    with torch.no_grad():
        assert torch.equal(plain(ids)[0], lm.model(ids)[0])


def test_an_example_supervises_exactly_the_answer_and_its_end(base_dir):
    lm = fresh(base_dir)
    x, y = lm.encode_example("hello", "", "world")
    prompt = lm.prompt_ids("hello")
    answer = lm.tokenizer.encode("world") + [lm.tokenizer.im_end_id]
    assert x == prompt + answer[:-1]
    assert y[:len(prompt) - 1] == [IGNORE_INDEX] * (len(prompt) - 1)
    assert y[len(prompt) - 1:] == answer
    opening = [lm.tokenizer.im_start_id, *lm.tokenizer.role_ids["assistant"]]
    assert prompt[-len(opening):] == opening


def test_a_huge_question_keeps_its_ends_and_fits(base_dir):
    lm = fresh(base_dir)
    query = "hello " + "the " * 200_000 + "world?"
    ids = lm.prompt_ids(query)
    assert len(ids) <= 192
    text = lm.tokenizer.decode(ids)
    assert "hello" in text and "world?" in text


def test_training_the_adapter_teaches_answers_and_leaves_the_base_weights_alone(base_dir):
    lm = fresh(base_dir)
    before = {name: p.detach().clone() for name, p in lm.model.named_parameters() if "lora_" not in name}
    assert [lm.answer(q, max_new_tokens=4).text for q, _ in TAUGHT] != [a for _, a in TAUGHT]
    losses = train(lm, TAUGHT)
    assert losses[-1] < losses[0] / 4
    for q, a in TAUGHT:
        got = lm.answer(q, max_new_tokens=4)
        assert got.text == a and got.stopped_on_eos and got.confidence > 0.5
    after = dict(lm.model.named_parameters())
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_the_adapter_is_saved_loaded_and_reset(base_dir, tmp_path):
    lm = fresh(base_dir)
    train(lm, TAUGHT)
    lm.save_adapter(tmp_path / "adapter.safetensors")
    again = fresh(base_dir)
    again.load_adapter(tmp_path / "adapter.safetensors")
    assert [again.answer(q, max_new_tokens=4).text for q, _ in TAUGHT] == [a for _, a in TAUGHT]
    again.reset_adapter()
    assert torch.equal(logits(again, "hello"), logits(fresh(base_dir), "hello"))
    with pytest.raises(ValueError, match="lora"):
        fresh(base_dir, LoRAConfig(rank=2)).load_adapter(tmp_path / "adapter.safetensors")
    (tmp_path / "torn.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="unreadable"):
        fresh(base_dir).load_adapter(tmp_path / "torn.safetensors")


def test_tokens_stream_as_text(base_dir):
    lm = fresh(base_dir)
    pieces: list[str] = []
    got = lm.answer("hello", max_new_tokens=6, on_token=pieces.append)
    assert "".join(pieces).strip() == got.text
    assert len(got.token_probs) == got.token_count + int(got.stopped_on_eos)


def test_top_layers_only_adapt_the_top_blocks(base_dir):
    lm = fresh(base_dir, LoRAConfig(rank=2, top_layers=1))
    adapted = {name.split(".")[1] for name, _ in lm.model.named_parameters() if "lora_" in name}
    assert adapted == {str(len(lm.model.blocks) - 1)}
    assert len(lm.adapters) == 7  # wq wk wv wo gate up down


def test_seeded_adapters_are_repeatable(base_dir):
    a, b = fresh(base_dir, seed=3), fresh(base_dir, seed=3)
    random.seed(0)
    assert all(torch.equal(x, y) for x, y in zip(a.trainable_parameters(), b.trainable_parameters()))


def test_a_cancelled_question_stops_the_decode(base_dir):
    import threading

    cancel = threading.Event()
    cancel.set()
    got = fresh(base_dir).answer("hello", max_new_tokens=32, cancel=cancel)
    assert got.token_count == 0 and not got.stopped_on_eos


def test_a_computable_answer_is_taught_as_its_program_and_answered_by_running_it(base_dir):
    lm = fresh(base_dir)
    query = "hello 12 the world 30"
    x, y = lm.encode_example(query, "", "42")
    taught = lm.tokenizer.decode([t for t in y if t != IGNORE_INDEX and t != lm.tokenizer.im_end_id])
    assert taught == "calc: 12 + 30"
    losses = train(lm, [(query, "42"), ("the hello", "world")], steps=120)
    assert losses[-1] < losses[0] / 4
    pieces: list[str] = []
    got = lm.answer(query, max_new_tokens=16, on_token=pieces.append)
    assert (got.text, got.program) == ("42", "calc: 12 + 30")
    assert "".join(pieces) == "42"  # the program's text is never shown, only what it computes
    pieces.clear()
    assert lm.answer("the hello", max_new_tokens=4, on_token=pieces.append).text == "world"
    assert "".join(pieces).strip() == "world"
