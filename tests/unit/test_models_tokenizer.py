"""Byte-level BPE tokenizer: lossless, untrusted-text safe, versioned, atomic files."""

from __future__ import annotations

import json

import pytest

from shammah_tui.models.tokenizer import SPECIAL_TOKENS, TextTokenizer, TokenizerError

CORPUS = [
    "what is 12 plus 30? 42",
    "convert 3 km to m: 3000 m",
    "hello there, how are you today?",
    "def add(a, b):\n    return a + b\n",
] * 5


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer.build(CORPUS, vocab_size=300)


ODD = [
    "plain ascii, with punctuation!? ~`^",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\x0bvertical",
    "control \x00\x01\x02\x1b[31mred\x1b[0m \x7f bell\x07",
    "Ωμέγα ₿ naïve café e\u0301 \u200b\u200d \ufeff \u202e rtl",
    "中文字符 日本語 한국어 עברית العربية",
    "emoji 🙂 👩‍👩‍👧 🏳️‍🌈 🇫🇷 ✊🏽",
    "math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑∫√ and private use \ue000",
    "",
]


def test_special_ids_are_fixed(tok):
    assert [tok.eos_id, tok.pad_id, tok.context_id, tok.user_id, tok.assistant_id, tok.sep_id] == list(range(6))
    assert len(SPECIAL_TOKENS) == 6
    assert 262 <= tok.vocab_size <= 300  # 256 bytes + 6 specials at least


@pytest.mark.parametrize("text", ODD)
def test_round_trip_is_lossless(tok, text):
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_batch_encode_matches_encode(tok):
    assert tok.encode_batch(ODD) == [tok.encode(t) for t in ODD]


def test_typed_special_token_is_plain_text(tok):
    for special in SPECIAL_TOKENS:
        text = f"say {special} now"
        ids = tok.encode(text)
        assert not set(ids) & set(range(6)), special
        assert tok.decode(ids) == text


def test_decode_skips_special_ids(tok):
    ids = [tok.context_id, *tok.encode("hi"), tok.eos_id, tok.pad_id]
    assert tok.decode(ids) == "hi"


def test_lone_surrogate_does_not_crash(tok):
    ids = tok.encode("bad \ud800 text")
    assert tok.decode(ids).startswith("bad ")
    assert tok.encode_batch(["\udfff"])


def test_build_is_deterministic():
    a = TextTokenizer.build(CORPUS, vocab_size=300)
    b = TextTokenizer.build(iter(CORPUS), vocab_size=300)
    assert a.version == b.version
    assert a.to_str() == b.to_str()


def test_version_stable_across_save_load(tok, tmp_path):
    path = tmp_path / "sub" / "tokenizer.json"
    tok.save(path)
    loaded = TextTokenizer.load(path)
    assert loaded.version == tok.version
    assert len(tok.version) == 12 and int(tok.version, 16) >= 0
    assert loaded.encode(ODD[4]) == tok.encode(ODD[4])
    # untrusted-text mode survives the file round trip
    assert not set(loaded.encode("<|endoftext|>")) & {0}
    # saving again over the file keeps it loadable and leaves no tmp file behind
    loaded.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]
    assert TextTokenizer.load(path).version == tok.version


def test_version_differs_for_other_vocabulary(tok):
    other = TextTokenizer.build(CORPUS + ["a different corpus entirely, zebra zebra zebra"] * 3, vocab_size=300)
    smaller = TextTokenizer.build(CORPUS, vocab_size=280)
    assert len({tok.version, other.version, smaller.version}) == 3


def test_load_missing_file(tmp_path):
    with pytest.raises(TokenizerError, match="not found"):
        TextTokenizer.load(tmp_path / "nope.json")


def test_load_truncated_and_garbled(tok, tmp_path):
    text = tok.to_str()
    path = tmp_path / "tokenizer.json"
    for bad in (text[: len(text) // 2], "", "{}", "not json at all \x00", json.dumps({"model": 3})):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(TokenizerError) as e:
            TextTokenizer.load(path)
        assert "\n" not in str(e.value)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TokenizerError):
        TextTokenizer.load(path)


def test_load_rejects_foreign_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    foreign = Tokenizer(models.BPE())
    foreign.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=280, special_tokens=["<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    foreign.train_from_iterator(CORPUS, trainer=trainer)
    path = tmp_path / "tokenizer.json"
    foreign.save(str(path))
    with pytest.raises(TokenizerError, match="special token"):
        TextTokenizer.load(path)
