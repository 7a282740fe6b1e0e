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
    assert f["length_ratio"] == 1.0


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


def test_margin_and_lengths():
    assert feat("a b c", "a b c", 0.9)["margin"] == pytest.approx(0.9)
    assert feat("a b c", "a b c", 0.9, other=0.85)["margin"] == pytest.approx(0.05)
    f = feat("Why am I sleepy?", "Why am I so sleepy lately and how can I be less sleepy?")
    assert 0 < f["length_ratio"] < 0.5
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
    assert {"split_seed", "fit_half", "train_metric", "heldout_metric"} <= set(prov)
    assert DEFAULT_WEIGHTS.stat().st_size < 300_000
    same = pair_features("What will artificial intelligence be like in the future?",
                         "What is the future of artificial intelligence?", 0.93, other_cosine=0.6)
    other = pair_features("What is the largest race of people on Earth?",
                          "When will the human race stop destroying earth?", 0.62, other_cosine=0.6)
    names = pair_features("Which rehab center in Marshall County AL is good?",
                          "Which rehab center in Washington County AL is good?", 0.97, other_cosine=0.7)
    numbers = pair_features("How good is rank 44 in EY?", "How good is rank 43 in EY?", 0.95)
    assert m.p(same) > 0.5 > m.p(other)
    assert m.p(names) < m.p(same)
    assert m.p(numbers) == 0.0
