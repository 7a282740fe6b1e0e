"""Pair features and the acceptance model of the semantic tier (no encoder, no data files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shammah_tui.pipeline.pair_features import (
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    FEATURE_VERSION,
    N_FEATURES,
    AcceptanceModel,
    fit_logistic,
    pair_features,
)

IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def feat(a: str, b: str, cos: float = 0.9, other: float | None = None) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, pair_features(a, b, cos, other_cosine=other)))


# ---------------------------------------------------------------------------- features


def test_vector_shape_and_names():
    v = pair_features("What is the capital of France?", "Capital of France?", 0.93)
    assert v.shape == (N_FEATURES,) and v.dtype == np.float64
    assert len(set(FEATURE_NAMES)) == N_FEATURES
    assert np.all(np.isfinite(v))


def test_identical_queries():
    f = feat("How do I learn Python quickly?", "How do I learn Python quickly?", 1.0)
    assert f["cos"] == 1.0 and f["lexical"] == 1.0
    assert f["jaccard_content"] == f["jaccard_tokens"] == f["char3"] == 1.0
    for name in ("unmatched_frac", "unmatched_max", "number_mismatch", "negation_mismatch", "polarity_mismatch",
                 "entity_mismatch", "wh_mismatch", "order_discordance"):
        assert f[name] == 0.0, name


def test_number_mismatch():
    assert feat("What is 12 + 7?", "What is 12 + 8?")["number_mismatch"] == 1.0
    assert feat("What is 12 + 7?", "Compute 12 + 7")["number_mismatch"] == 0.0
    assert feat("Proposition 54 in 2016", "Proposition 55 in 2016")["number_mismatch"] == 1.0
    digits = feat("How many 6-digit numbers are there?", "How many six-digit numbers are there?")
    assert digits["number_mismatch"] == 1.0
    assert feat("I have 1,000 apples", "I have 1000 apples")["number_mismatch"] == 0.0
    both = feat("Is 7 prime?", "Is 9 prime?")
    assert both["numbers_both"] == 1.0
    assert feat("Is 7 prime?", "Is seven prime?")["numbers_both"] == 0.0


def test_negation_and_polarity():
    assert feat("Is 2024 a leap year?", "Is 2024 not a leap year?")["negation_mismatch"] == 1.0
    assert feat("Why can't I sleep?", "Why cannot I sleep?")["negation_mismatch"] == 0.0
    assert feat("What is life like full of regrets?", "What is life like without regrets?")["negation_mismatch"] == 1.0
    assert feat("What is the best phone?", "What is the worst phone?")["polarity_mismatch"] == 1.0
    assert feat("What is the best phone?", "Which phone is best?")["polarity_mismatch"] == 0.0


def test_entities_question_words_and_order():
    f = feat("Which rehab center in Marshall County AL is good?", "Which rehab center in Washington County AL is good?")
    assert f["entity_mismatch"] == 2.0  # marshall, washington; AL and County are on both sides
    # A sentence-initial capital is not a name; case differences are not a mismatch.
    cased = feat("Which are the best horror movies in hollywood?", "Best horror movies in Hollywood?")
    assert cased["entity_mismatch"] == 0.0
    assert feat("How will Game of Thrones end?", "When will Game of Thrones end?")["wh_mismatch"] == 1.0
    assert feat("How do I cook rice?", "How can I cook rice?")["wh_mismatch"] == 0.0
    # "What is the number of" asks what "how many" asks; a name is a whole word ("iPods", not "Pods").
    reworded = feat("Emmy has 14 iPods; she gives Rosa 6. What is the number of iPods Emmy has left?",
                    "Emmy has 14 iPods; she gives Rosa 6. How many iPods does Emmy have left?")
    assert reworded["wh_mismatch"] == 0.0 and reworded["entity_mismatch"] == 0.0
    assert feat("How many iPods does Emmy have?", "How many iPods does Rosa have?")["entity_mismatch"] == 2.0
    # A request has no question word to differ in; a yes/no question still differs from a "why".
    assert feat("Name the capital of Peru.", "What is the capital of Peru?")["wh_mismatch"] == 0.0
    assert feat("Is marriage important in life?", "Why is marriage important in life?")["wh_mismatch"] == 1.0
    swapped = feat("Can data science graduates apply for psychology?",
                   "Can psychology graduates apply for data science?")
    assert swapped["order_discordance"] > 0.3
    assert swapped["jaccard_content"] == 1.0  # the same words: only the order tells them apart


def test_margin_and_unmatched_words():
    assert feat("a b c", "a b c", 0.9)["margin"] == pytest.approx(0.9)
    assert feat("a b c", "a b c", 0.9, other=0.85)["margin"] == pytest.approx(0.05)
    f = feat("Why am I sleepy?", "Why am I so sleepy lately and how can I be less sleepy?")
    assert f["unmatched_max"] >= 2


def test_features_of_a_pair_do_not_depend_on_earlier_calls():
    # The features cache per-text work; a cached text must give what a fresh one gives.
    a, b = "How do I delete WhatsApp chats permanently?", "How can I delete permanently my whatsapp chat?"
    first = pair_features(a, b, 0.9, other_cosine=0.8)
    for i in range(20):
        pair_features(a + str(i), b, 0.9, other_cosine=0.8)
    assert list(pair_features(a, b, 0.9, other_cosine=0.8)) == list(first)


# ---------------------------------------------------------------------------- the model


def toy_model(**kw) -> AcceptanceModel:
    w = np.zeros(N_FEATURES)
    w[IDX["cos"]] = 4.0
    w[IDX["entity_mismatch"]] = -2.0
    args = dict(mean=np.zeros(N_FEATURES), scale=np.full(N_FEATURES, 0.1), weights=w, bias=-36.0,
                veto=("number_mismatch",), provenance={"name": "toy"})
    args.update(kw)
    return AcceptanceModel(**args)


def test_model_predicts_probabilities_and_vetoes():
    m = toy_model()
    close = pair_features("How do I learn Python?", "How can I learn Python?", 0.97)
    far = pair_features("How do I learn Python?", "What is the capital of Peru?", 0.2)
    numbers = pair_features("What is 12 + 7?", "What is 12 + 8?", 0.99)
    assert 0 < m.p(far) < m.p(close) < 1
    assert m.p(numbers) == 0.0
    ps = m.p_many(np.vstack([close, far, numbers]))
    assert ps.shape == (3,) and ps[0] == pytest.approx(m.p(close)) and ps[2] == 0.0


def test_model_json_roundtrip(tmp_path):
    m = toy_model()
    path = tmp_path / "w.json"
    m.save(path)
    data = json.loads(path.read_text())
    assert data["feature_version"] == FEATURE_VERSION and data["provenance"] == {"name": "toy"}
    again = AcceptanceModel.load(path)
    x = pair_features("How do I learn Python?", "How can I learn Python?", 0.97)
    assert again.p(x) == pytest.approx(m.p(x), abs=1e-6)
    assert again.veto == ("number_mismatch",)


def test_model_refuses_other_feature_versions(tmp_path):
    data = toy_model().to_dict()
    data["feature_version"] = FEATURE_VERSION + 1
    with pytest.raises(ValueError, match="feature version"):
        AcceptanceModel.from_dict(data)
    data = toy_model().to_dict()
    data["feature_names"] = list(reversed(data["feature_names"]))
    with pytest.raises(ValueError, match="other features"):
        AcceptanceModel.from_dict(data)
    with pytest.raises(ValueError, match="entries"):
        toy_model(weights=np.zeros(3))


def _toy_data(rng, n=400):
    F = np.zeros((n, N_FEATURES))
    F[:, IDX["cos"]] = rng.uniform(0.6, 1.0, n)
    F[:, IDX["entity_mismatch"]] = rng.integers(0, 3, n)
    y = ((F[:, IDX["cos"]] > 0.85) & (F[:, IDX["entity_mismatch"]] == 0)).astype(float)
    return F, y


def test_fit_and_online_refit_move_toward_the_labels():
    rng = np.random.default_rng(0)
    F, y = _toy_data(rng)
    m = fit_logistic(F, y, l2=1.0, gate=(0.8, 0.2), veto=("number_mismatch",))
    assert len(m.weights) == N_FEATURES + N_FEATURES - 2
    p = m.p_many(F)
    assert p[y == 1].mean() > 0.8 and p[y == 0].mean() < 0.2
    # new labels that say: an entity mismatch no longer matters
    y2 = (F[:, IDX["cos"]] > 0.85).astype(float)
    refit = m.fit(F, y2, prior_strength=1.0)
    mismatched = (F[:, IDX["entity_mismatch"]] > 0) & (y2 == 1)
    assert refit.p_many(F[mismatched]).mean() > m.p_many(F[mismatched]).mean() + 0.3
    assert refit.provenance["online_fit"]["labels"] == len(y2)
    # a strong prior keeps the shipped weights
    stiff = m.fit(F, y2, prior_strength=1e9)
    assert np.allclose(stiff.weights, m.weights, atol=1e-4)
    # the model it came from is unchanged
    assert np.allclose(m.p_many(F), p)


def test_shipped_weights_load_and_rank_sensibly():
    m = AcceptanceModel.load(DEFAULT_WEIGHTS)
    prov = m.provenance
    assert prov["feature_version"] == FEATURE_VERSION
    assert {"data", "fit_half", "train_metric", "heldout_metric", "heldout_calibration"} <= set(prov)
    assert "qqp_train.csv" in prov["data"] and "paws_qqp.csv" in prov["data"]
    assert DEFAULT_WEIGHTS.stat().st_size < 300_000
    same = pair_features("What will artificial intelligence be like in the future?",
                         "What is the future of artificial intelligence?", 0.93, other_cosine=0.6)
    other = pair_features("What is the largest race of people on Earth?",
                          "When will the human race stop destroying earth?", 0.62, other_cosine=0.6)
    names = pair_features("Which rehab center in Marshall County AL is good?",
                          "Which rehab center in Washington County AL is good?", 0.97, other_cosine=0.7)
    numbers = pair_features("How good is rank 44 in EY?", "How good is rank 43 in EY?", 0.95)
    # p is fitted where 4% of candidates are right (the held-out check finds it under-confident
    # where half the pairs are duplicates): a paraphrase scores far above a pair on a shared word
    assert m.p(same) > 0.3 and m.p(other) < 0.05
    assert m.p(names) < m.p(same)
    assert m.p(numbers) == 0.0


# ---------------------------------------------------------------------------- never served

# High-cosine pairs that ask something else: the same words in another order (PAWS-QQP style), a
# question with one number changed, one with one name changed. The encoder puts each pair close
# together (the cosines here are what all-MiniLM-L6-v2 gives such pairs, 0.93–0.99).
WORD_SWAPS = [
    ("Will a message still say blocked if you were delivered on an iPhone?",
     "Will a message still say delivered if you were blocked on an iPhone?"),
    ("Can data science graduates apply for psychology?", "Can psychology graduates apply for data science?"),
    ("Is it cheaper to fly from Texas to California?", "Is it cheaper to fly from California to Texas?"),
    ("Why do dogs chase cats?", "Why do cats chase dogs?"),
]
NUMBER_CHANGES = [
    ("How good is rank 44 in EY?", "How good is rank 43 in EY?"),
    ("What is the best laptop under 500 dollars?", "What is the best laptop under 800 dollars?"),
    ("Which phones were released in 2016?", "Which phones were released in 2017?"),
]
NAME_CHANGES = [
    ("Which rehab center in Marshall County AL is good?", "Which rehab center in Washington County AL is good?"),
    ("What is the best time to visit Paris?", "What is the best time to visit Rome?"),
    ("How do I get a job at Google?", "How do I get a job at Microsoft?"),
]
PARAPHRASES = [
    ("How do I delete WhatsApp chats permanently?", "How can I permanently delete my WhatsApp chats?"),
    ("What will artificial intelligence be like in the future?", "What is the future of artificial intelligence?"),
    ("How can I improve my English speaking skills?", "What are some ways to improve my English speaking?"),
]


@pytest.mark.parametrize("a,b", WORD_SWAPS + NUMBER_CHANGES + NAME_CHANGES)
def test_the_shipped_model_never_serves_a_swap_or_another_number_or_name(a, b):
    m = AcceptanceModel.load(DEFAULT_WEIGHTS)
    for cos in (0.93, 0.97, 0.995):
        # p = 0: no threshold calibration can reach (it never goes below p > 0) serves it
        assert m.p(pair_features(a, b, cos, other_cosine=0.6)) == 0.0, (a, b, cos)
        assert m.p(pair_features(b, a, cos, other_cosine=0.6)) == 0.0, (b, a, cos)


@pytest.mark.parametrize("a,b", PARAPHRASES)
def test_the_guard_leaves_paraphrases_open(a, b):
    m = AcceptanceModel.load(DEFAULT_WEIGHTS)
    f = feat(a, b, 0.95)
    assert f["word_swap"] == f["name_swap"] == f["number_mismatch"] == 0.0
    assert m.p(pair_features(a, b, 0.95, other_cosine=0.6)) > 0.3


def test_swap_features():
    assert all(feat(a, b)["word_swap"] == 1.0 for a, b in WORD_SWAPS)
    assert all(feat(a, b)["name_swap"] == 1.0 for a, b in NAME_CHANGES)
    # the same words in the same order, or other words reordered: no swap
    assert feat("Why do dogs chase cats?", "Why do dogs chase cats?")["word_swap"] == 0.0
    assert feat("Why do dogs chase cats?", "Why do cats chase mice?")["word_swap"] == 0.0
    # a name on one side only is a mismatch, not a swap (the other may just leave it out)
    one_side = feat("Which is the best SEO company in Delhi NCR?", "Which is the best SEO company in Delhi?")
    assert one_side["name_swap"] == 0.0 and one_side["entity_mismatch"] == 1.0


def test_a_model_with_a_hidden_layer_round_trips_and_keeps_its_veto(tmp_path):
    rng = np.random.default_rng(3)
    n_inputs = N_FEATURES + N_FEATURES - 2
    hidden = (rng.normal(size=(4, n_inputs)), rng.normal(size=4))
    m = AcceptanceModel(np.zeros(n_inputs), np.ones(n_inputs), rng.normal(size=4), 0.3, gate=(0.8, 0.2),
                        veto=("number_mismatch",), hidden=hidden)
    x = pair_features("How do I learn Python?", "How can I learn Python?", 0.97)
    from shammah_tui.pipeline.pair_features import expand

    z = np.tanh(hidden[0] @ expand(x[None], (0.8, 0.2))[0] + hidden[1]) @ m.weights + 0.3
    assert m.p(x) == pytest.approx(1 / (1 + np.exp(-z)))
    m.save(tmp_path / "w.json")
    again = AcceptanceModel.load(tmp_path / "w.json")
    assert again.p(x) == pytest.approx(m.p(x), abs=1e-5)
    assert again.p(pair_features("What is 12 + 7?", "What is 12 + 8?", 0.99)) == 0.0
    with pytest.raises(ValueError, match="hidden layer"):
        AcceptanceModel(np.zeros(n_inputs), np.ones(n_inputs), np.zeros(4), 0.0, gate=(0.8, 0.2),
                        hidden=(np.zeros((4, 3)), np.zeros(4)))


def test_a_long_question_reworded_is_not_read_as_another_question():
    """Length is no evidence: a word problem asked again in other words scores like a short
    paraphrase, and the same problem with another number is still never served."""
    m = AcceptanceModel.load(DEFAULT_WEIGHTS)
    asked = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
             "How many clips did Natalia sell altogether in April and May?")
    reworded = asked.replace("altogether", "in total")
    another = asked.replace("48", "36")
    assert m.p(pair_features(reworded, asked, 0.98, other_cosine=0.8)) > 0.5
    assert m.p(pair_features(another, asked, 0.98, other_cosine=0.8)) == 0.0
