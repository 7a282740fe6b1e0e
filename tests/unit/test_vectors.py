"""VectorIndex: exact search per context, checked against brute force."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shammah_tui.pipeline.vectors import MIN_CAPACITY, VectorIndex

DIM = 8


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute_force(stored: dict, query: np.ndarray, key: str, k: int) -> list[float]:
    """The k best cosines in context ``key`` of ``stored`` = {id: (key, vector)}."""
    q = query / np.linalg.norm(query)
    scores = sorted((float(v @ q) for kk, v in stored.values() if kk == key), reverse=True)
    return scores[:k]


# One operation on the index and on a plain dict model: ("add"|"replace"|"remove", id, context, seed).
ops = st.lists(
    st.tuples(st.sampled_from(["add", "add", "add", "replace", "remove"]), st.integers(0, 40),
              st.sampled_from(["", "a", "b", "conversation 7"]), st.integers(0, 2**31)),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(0, 2**31), st.integers(0, 12))
def test_search_matches_brute_force_after_any_operations(operations, query_seed, k):
    index, model = VectorIndex(DIM), {}
    for op, id, key, seed in operations:
        v = unit(np.random.default_rng(seed), 1)[0]
        if op == "add":
            if id in model:
                with pytest.raises(KeyError):
                    index.add(id, key, v)
                continue
            index.add(id, key, v)
            model[id] = (key, v)
        elif op == "replace":
            index.replace(id, key, v)
            model[id] = (key, v)
        else:
            assert index.remove(id) == (id in model)
            model.pop(id, None)
    assert len(index) == len(model)
    query = unit(np.random.default_rng(query_seed), 1)[0]
    for key in ["", "a", "b", "conversation 7", "never used"]:
        got = index.search(query, key, k)
        assert [s for _, s in got] == pytest.approx(brute_force(model, query, key, k), abs=1e-5)
        for id, score in got:
            stored_key, v = model[id]
            assert stored_key == key  # never another context's row
            assert score == pytest.approx(float(v @ query), abs=1e-5)
        assert len({id for id, _ in got}) == len(got)
        assert index.count(key) == sum(1 for kk, _ in model.values() if kk == key)


def test_best_first_and_exact_hit():
    rng = np.random.default_rng(0)
    vecs = unit(rng, 50)
    index = VectorIndex(DIM)
    index.add_many(list(range(50)), "", vecs)
    hits = index.search(vecs[17], "", k=5)
    assert hits[0][0] == 17 and hits[0][1] == pytest.approx(1.0, abs=1e-6)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(index.search(vecs[0], "", k=100)) == 50
    assert index.search(vecs[0], "", k=0) == []
    assert index.search(vecs[0], "other", k=5) == []


def test_contexts_are_partitioned():
    rng = np.random.default_rng(1)
    v = unit(rng, 1)[0]
    index = VectorIndex(DIM)
    index.add(1, "conversation A", v)
    index.add(2, "conversation B", v)
    index.add(3, "", v)
    assert index.search(v, "conversation A", k=5) == [(1, pytest.approx(1.0))]
    assert [id for id, _ in index.search(v, "", k=5)] == [3]
    assert index.context_of(2) == "conversation B" and index.context_of(99) is None


def test_replace_moves_between_contexts_and_overwrites():
    rng = np.random.default_rng(2)
    a, b = unit(rng, 2)
    index = VectorIndex(DIM)
    index.add("x", "one", a)
    index.replace("x", "one", b)  # same context: in place
    assert index.search(b, "one", 1)[0][1] == pytest.approx(1.0)
    index.replace("x", "two", a)  # moved
    assert index.search(a, "one", 1) == [] and index.search(a, "two", 1)[0][0] == "x"
    assert len(index) == 1
    index.replace("y", "two", b)  # replace of an unknown id adds it
    assert len(index) == 2


def test_remove_keeps_the_other_rows_findable():
    rng = np.random.default_rng(3)
    vecs = unit(rng, 200)
    index = VectorIndex(DIM)
    for i, v in enumerate(vecs):
        index.add(i, "", v)
    for i in range(0, 200, 3):
        assert index.remove(i)
    assert not index.remove(0)
    for i in range(200):
        hit = index.search(vecs[i], "", 1)[0]
        if i % 3:
            assert hit == (i, pytest.approx(1.0, abs=1e-6))
        else:
            assert hit[0] != i
    for i in range(200):
        index.remove(i)
    assert len(index) == 0 and index.count("") == 0


def test_capacity_grows_by_doubling_and_shrinks():
    index = VectorIndex(DIM)
    rng = np.random.default_rng(4)
    caps = set()
    for i, v in enumerate(unit(rng, 100)):
        index.add(i, "", v)
        caps.add(index._parts[""].vectors.shape[0])
    assert caps == {MIN_CAPACITY * 2**j for j in range(6)}  # 4, 8, ... 128: one copy per doubling
    for i in range(95):
        index.remove(i)
    assert index._parts[""].vectors.shape[0] <= 32


def test_bad_vectors_and_ids():
    index = VectorIndex(DIM)
    with pytest.raises(ValueError):
        index.add(1, "", np.zeros(DIM))
    with pytest.raises(ValueError):
        index.add(1, "", np.ones(DIM + 1))
    with pytest.raises(ValueError):
        index.add(1, "", np.full(DIM, np.nan))
    with pytest.raises(TypeError):
        index.add(1, None, np.ones(DIM))  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        index.add_many([1, 1], "", np.ones((2, DIM)))
    with pytest.raises(ValueError):
        index.search(np.zeros(DIM), "", 5)
    with pytest.raises(ValueError):
        index.search(np.ones(DIM), "", -1)
    assert len(index) == 0  # nothing half-added
    index.add(1, "", np.arange(1, DIM + 1, dtype=np.float64))  # normalised on the way in
    assert index.search(np.ones(DIM), "", 1)[0][1] <= 1.0 + 1e-6


def test_one_writer_many_readers():
    rng = np.random.default_rng(5)
    vecs = unit(rng, 400)
    index = VectorIndex(DIM)
    index.add_many(list(range(100)), "", vecs[:100])
    errors = []

    def read():
        try:
            for j in range(300):
                for id, score in index.search(vecs[j % 100], "", 3):
                    assert -1.001 <= score <= 1.001 and isinstance(id, int)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(100, 400):
        index.add(i, "" if i % 2 else f"c{i % 7}", vecs[i])
        if i % 5 == 0:
            index.remove(i - 50)
    for t in readers:
        t.join()
    assert not errors
    assert len(index) == 400 - len(range(100, 400, 5))


def test_module_does_not_import_torch():
    code = "import sys, shammah_tui.pipeline.vectors; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
