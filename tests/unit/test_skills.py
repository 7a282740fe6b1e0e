"""Skills the generator computes rather than recalls: the tokenizer's runs, run positions, reversed
integers, held-out sets that are never taught, and the trainer's schedule."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from shammah_tui.curriculum.skills import SKILLS, held_out_queries, is_held_out
from shammah_tui.models.generator import (
    ORD_ANSWER, ORD_NONE, RUN_MAX, Generator, GeneratorConfig, generate, internal_answer, run_positions,
)
from shammah_tui.models.tokenizer import DIGIT, LETTER, OTHER, TextTokenizer
from shammah_tui.training.trainer import TrainConfig, _pad_pairs, accumulate_gradient, get_lr, length_chunks

CORPUS = ["What is 347+589?", "Reverse the word 'apple'.", "John's cat doesn't like 12 apples.",
          "Is 1900 a leap year?", "elppa", "No"] * 20


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer.build(CORPUS, vocab_size=400)


def _byte_level_only() -> str:
    """The pre-tokenizer of an older build, as it is saved."""
    probe = Tokenizer(models.BPE())
    probe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return json.dumps(json.loads(probe.to_str())["pre_tokenizer"])


def pieces(tok: TextTokenizer, text: str) -> list[str]:
    return [tok.decode([i]) for i in tok.encode(text)]


def test_digits_and_quoted_words_are_one_character_a_token(tok):
    assert pieces(tok, "What is 347+589?")[-8:] == ["3", "4", "7", "+", "5", "8", "9", "?"]
    assert "".join(pieces(tok, "Reverse the word 'apple'.")).endswith("'apple'.")
    assert pieces(tok, "Reverse the word 'apple'.")[-6:-1] == ["a", "p", "p", "l", "e"]
    assert pieces(tok, "elppa") == ["e", "l", "p", "p", "a"]  # an answer that is one word
    # An apostrophe inside a word does not make a quoted word.
    assert "John" in pieces(tok, "John's cat doesn't like 12 apples.")
    for text in CORPUS[:6]:
        assert tok.decode(tok.encode(text)) == text


def test_token_classes_say_digit_letter_or_other(tok):
    classes = tok.char_classes()
    assert len(classes) == tok.vocab_size
    assert classes[tok.encode("7")[0]] == DIGIT
    assert classes[tok.encode("e")[0]] == LETTER
    assert classes[tok.eos_id] == OTHER


def test_a_tokenizer_saved_the_old_way_is_not_current(tok):
    saved = json.loads(tok._tok.to_str())
    saved["pre_tokenizer"] = json.loads(_byte_level_only())
    assert not TextTokenizer(Tokenizer.from_str(json.dumps(saved))).is_current
    assert tok.is_current


def test_run_positions_index_each_number_from_both_ends():
    # ids: 0 other, 1 digit, 2 letter; 9 stands for the assistant token (answer starts after it)
    classes = torch.tensor([OTHER, DIGIT, LETTER] + [OTHER] * 7)
    idx = torch.tensor([[0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 2, 2]])
    left, right, ords = run_positions(idx, classes, prompt_len=8)[:, 0].tolist()
    assert left[:8] == [RUN_MAX, 0, 1, 2, RUN_MAX, 0, 1, RUN_MAX]
    assert right[:8] == [RUN_MAX, 2, 1, 0, RUN_MAX, 1, 0, RUN_MAX]
    assert ords[:8] == [ORD_NONE, 0, 0, 0, ORD_NONE, 1, 1, ORD_NONE]
    # In the answer a run's end is unknown: both indices count from the left; a letter starts a new run.
    assert left[8:] == right[8:] == [0, 1, 0, 1]
    assert ords[8:] == [ORD_ANSWER] * 4


def test_integer_answers_are_learned_reversed_and_read_back_in_order():
    assert internal_answer("776") == "677" and internal_answer("-776") == "-677"
    for text in ("0", "1024", "-5", "duolc", "12 apples", "3.5", "Yes"):
        assert internal_answer(internal_answer(text)) == text
    assert internal_answer("12 apples") == "12 apples"


@pytest.mark.parametrize("seed", [0, 1])
def test_the_kv_cache_path_matches_the_plain_path_with_run_positions(seed):
    cfg = GeneratorConfig(vocab_size=64, n_embd=32, n_layer=2, n_head=4, block_size=48)
    torch.manual_seed(seed)
    model = Generator(cfg).eval()
    with torch.no_grad():
        model.wpe.weight.mul_(10)
        model.wleft.weight.mul_(10)
    classes = [OTHER] * 8 + [DIGIT] * 28 + [LETTER] * 28  # the generated tokens fall in runs too
    model.set_token_classes(classes)
    prompt = [5, 10, 11, 12, 3, 40, 41, 4]
    cached = generate(model, prompt, max_new_tokens=24, eos_id=None, use_cache=True)
    plain = generate(model, prompt, max_new_tokens=24, eos_id=None, use_cache=False)
    assert cached.token_ids == plain.token_ids
    assert sum(classes[t] != OTHER for t in cached.token_ids) > 5
    assert cached.token_probs == pytest.approx(plain.token_probs, abs=1e-5)


def test_a_run_brings_as_many_steps_as_its_new_examples_need():
    cfg = TrainConfig(batch_size=32, learning_rate=2e-3, classifier_learning_rate=3e-3, replay_fraction=0.5,
                      seed=0, train_passes=16, min_steps_per_run=20, max_steps_per_run=2000)
    assert cfg.generator_steps(0, 0) == 0
    assert cfg.generator_steps(5, 100) == 20  # the floor
    assert cfg.generator_steps(200, 100) == math.ceil(16 * 200 / 16)  # half of each batch is new
    assert cfg.generator_steps(200, 0) == 100  # nothing to replay: the whole batch is new
    assert cfg.generator_steps(100_000, 0) == 2000  # the ceiling
    # Few new examples next to many trained: up to three quarters replayed, and the new ones still
    # get their passes, in more steps.
    assert cfg.batch_split(100, 10_000) == (8, 24)
    assert cfg.generator_steps(100, 10_000) == math.ceil(16 * 100 / 8)
    assert cfg.batch_split(600, 1_000) == (16, 16)  # never under replay_fraction
    fixed = TrainConfig(batch_size=32, learning_rate=2e-3, classifier_learning_rate=3e-3, replay_fraction=0.5,
                        seed=0, steps_per_run=40)
    assert fixed.generator_steps(5000, 0) == 40


def test_the_learning_rate_warms_up_once_then_falls_on_a_cosine_each_run():
    def lr(step, optimizer_step):
        return get_lr(step, 100, 1.0, optimizer_step=optimizer_step, warmup=10, min_fraction=0.1)

    assert [round(lr(i, i), 2) for i in range(3)] == [0.1, 0.2, 0.3]
    assert lr(0, 500) == pytest.approx(1.0)
    assert lr(50, 550) == pytest.approx(0.55)
    assert lr(100, 600) == pytest.approx(0.1)
    assert all(lr(i, 500 + i) > lr(i + 1, 501 + i) for i in range(99))


def test_held_out_questions_are_fixed_and_never_produced_for_training():
    for skill in SKILLS.values():
        held = skill.held_out()
        assert len({i.key for i in held}) == len(held) == 100
        assert [i.query for i in held] == [i.query for i in skill.held_out()]  # the same every time
        training = skill.training(2000, seed="test")
        assert len(training) > 500
        assert not {i.key for i in training} & {i.key for i in held}
        assert all(is_held_out(i.key) for i in held) and not any(is_held_out(i.key) for i in training)
    assert len(held_out_queries()) == 300


def test_the_neural_threshold_applies_to_the_score_it_was_calibrated_on():
    from shammah_tui.pipeline.thresholds import Thresholds

    on_validator = Thresholds(validator=0.8)
    assert on_validator.accepts(0.9, 0.1) and not on_validator.accepts(0.1, 0.9)
    on_confidence = Thresholds(validator=0.8, neural_score="confidence")
    assert on_confidence.accepts(0.1, 0.9) and not on_confidence.accepts(0.9, 0.1)
    assert not Thresholds(validator=1.01).accepts(1.0, 1.0)  # closed: nothing is served
    assert Thresholds.from_json(on_confidence.to_json()) == on_confidence


def test_before_teaching_the_neural_tier_serves_nothing(tmp_path):
    """A fresh data dir, the template tier off: every skill question goes to the teacher."""
    (tmp_path / "settings.toml").write_text('tier_order = ["learned", "neural"]\n')
    items = [i for name in SKILLS for i in SKILLS[name].training(4, seed="fresh")]
    lines = "".join(json.dumps({"query": i.query}) + "\n" for i in items)
    done = subprocess.run([sys.executable, "-m", "shammah_tui", "batch", "-", "--json", "--data-dir", str(tmp_path),
                           "--teacher", "offline", "--train-every", "1000000"],
                          input=lines, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(items) and {r["source"] for r in results} == {"forward"}
    assert [r["answer"] for r in results] == [i.answer for i in items]


def test_a_batch_in_length_chunks_has_the_gradient_of_the_whole_batch():
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(vocab_size=50, n_embd=32, n_layer=2, n_head=4, block_size=64))
    rng = random.Random(0)

    def pair(length: int, answer: int) -> tuple[list[int], list[int]]:
        x = [rng.randrange(5, 50) for _ in range(length)]
        return x, [-100] * (length - answer) + x[length - answer + 1:] + [2]

    short = [pair(12, 3) for _ in range(14)]
    pairs = short[:7] + [pair(40, 20)] + short[7:] + [pair(37, 9)]
    chunks = length_chunks(pairs)
    assert [len(c) for c in chunks] == [14, 2]  # the short ones together, the two long ones apart
    assert length_chunks(short) == [short]  # one length: one pass

    def gradient() -> torch.Tensor:
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    model.zero_grad()
    x, y = _pad_pairs(pairs, 0, "cpu")
    whole = model.answer_loss(x, y)
    whole.backward()
    expected = gradient()
    model.zero_grad()
    chunked = accumulate_gradient(model, chunks, 0, "cpu")
    assert torch.allclose(chunked, whole.detach(), atol=1e-6)
    assert torch.allclose(gradient(), expected, atol=1e-6)
