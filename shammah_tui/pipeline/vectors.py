"""Exact nearest-neighbour search over unit vectors, partitioned by conversation context.

The semantic store keeps one embedding per stored question. A query may only be served from
its own context (a follow-up like "and in French?" means something else in every conversation),
so each context key owns its own float32 matrix: a search is one matrix-vector product over
that context's rows and nothing else, and can never return another context's row.

Why exact and per-context (measured on the 2-core box, 384-d; `bench/semantic_lookup.py
--compare`): the product over an 80k-row context reads 123 MB and takes ~8 ms, inside the 20 ms
budget at 100k stored answers, so an approximate index would buy only recall loss. One shared
matrix with per-context row lists needs a gather (a copy of the context's rows) per search:
40-80 ms instead of 8 ms for that 80k-row context.

numpy only: this module loads without torch.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

MIN_CAPACITY = 4  # rows a new context starts with; most contexts hold a handful of answers


class _Partition:
    """The rows of one context: a matrix that grows by doubling, and the id of each row."""

    __slots__ = ("vectors", "ids")

    def __init__(self, dim: int, capacity: int = MIN_CAPACITY) -> None:
        self.vectors = np.empty((capacity, dim), dtype=np.float32)  # (capacity, d); rows < n used
        self.ids: list[Hashable] = []

    def __len__(self) -> int:
        return len(self.ids)

    def reserve(self, n: int) -> None:
        """Make room for ``n`` rows in all: at least double the capacity, so n single appends
        copy O(n) rows in all; a bulk load gets exactly what it needs."""
        cap = self.vectors.shape[0]
        if n <= cap:
            return
        grown = np.empty((max(n, 2 * cap), self.vectors.shape[1]), dtype=np.float32)
        grown[:len(self)] = self.vectors[:len(self)]
        self.vectors = grown

    def append(self, ids: Sequence[Hashable], source: np.ndarray, members: list[int] | slice) -> int:
        """Append the rows ``source[members]`` for ``ids``; returns the row number of the first."""
        start = len(self)
        self.reserve(start + len(ids))
        block = self.vectors[start:start + len(ids)]  # (m, d) view
        if isinstance(members, slice):
            block[...] = source[members]
        else:
            # Gathered straight into place; mode="raise" (the default) would buffer a copy first.
            np.take(source, members, axis=0, out=block, mode="clip")
        self.ids.extend(ids)
        return start

    def pop_row(self, row: int) -> Hashable | None:
        """Drop ``row`` by moving the last row into its place; returns the id that moved, if any."""
        last = len(self) - 1
        moved = None
        if row != last:
            self.vectors[row] = self.vectors[last]
            self.ids[row] = moved = self.ids[last]
        self.ids.pop()
        cap = self.vectors.shape[0]
        if cap > MIN_CAPACITY and len(self) <= cap // 4:  # give memory back, keep room to grow
            self.vectors = self.vectors[:cap // 2].copy()
        return moved


class VectorIndex:
    """An in-memory index of unit vectors, each with an id and a context key.

    ``search`` returns the ``k`` ids of one context whose vectors have the highest cosine with
    the query, best first. Vectors are normalised on the way in, so any non-zero finite vector
    of the right length is accepted. Safe for one writer and any number of readers: every
    method takes the same lock (numpy releases the GIL inside the product, so a search in one
    thread does not stall unrelated Python work in another).
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        """Length of every vector."""
        self._parts: dict[str, _Partition] = {}
        self._where: dict[Hashable, tuple[str, int]] = {}  # id -> (context key, row)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, id: Hashable) -> bool:
        return id in self._where

    def context_of(self, id: Hashable) -> str | None:
        """The context key ``id`` is stored under, or None."""
        where = self._where.get(id)
        return None if where is None else where[0]

    def count(self, context_key: str) -> int:
        """Number of vectors stored under ``context_key``."""
        part = self._parts.get(context_key)
        return 0 if part is None else len(part)

    def add(self, id: Hashable, context_key: str, vector: np.ndarray | Sequence[float]) -> None:
        """Store ``vector`` under ``id``; raises ``KeyError`` if ``id`` is already stored
        (use ``replace``) and ``ValueError`` for a vector of the wrong length, zero or not finite."""
        self.add_many([id], [context_key], np.asarray(vector, dtype=np.float32).reshape(1, -1))

    def add_many(self, ids: Sequence[Hashable], context_keys: Sequence[str] | str,
                 vectors: np.ndarray) -> None:
        """Store many vectors (n, dim) at once, e.g. the whole store at startup: all or nothing."""
        rows = self._unit_rows(vectors)
        keys = [context_keys] * len(ids) if isinstance(context_keys, str) else list(context_keys)
        if not len(ids) == len(keys) == rows.shape[0]:
            raise ValueError(f"{len(ids)} ids, {len(keys)} context keys and {rows.shape[0]} vectors")
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"context keys must be str, got {type(key).__name__}")
        groups: Mapping[str, list[int] | slice]
        if isinstance(context_keys, str):
            groups = {context_keys: slice(None)}  # one context: no gather of its rows
        else:
            by_key: dict[str, list[int]] = {}
            for i, key in enumerate(keys):
                by_key.setdefault(key, []).append(i)
            groups = by_key
        with self._lock:
            if len(set(ids)) != len(ids):
                raise KeyError("duplicate ids in one add_many call")
            taken = [id for id in ids if id in self._where]
            if taken:
                raise KeyError(f"id {taken[0]!r} is already stored (use replace)")
            for key, members in groups.items():
                part = self._parts.get(key)
                if part is None:
                    part = self._parts[key] = _Partition(self.dim)
                group_ids = list(ids) if isinstance(members, slice) else [ids[i] for i in members]
                start = part.append(group_ids, rows, members)
                for j, id in enumerate(group_ids):
                    self._where[id] = (key, start + j)

    def replace(self, id: Hashable, context_key: str, vector: np.ndarray | Sequence[float]) -> None:
        """Store ``vector`` under ``id`` in ``context_key``, dropping what ``id`` held before."""
        row = self._unit_rows(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        if not isinstance(context_key, str):
            raise TypeError(f"context keys must be str, got {type(context_key).__name__}")
        with self._lock:
            where = self._where.get(id)
            if where is not None and where[0] == context_key:
                self._parts[context_key].vectors[where[1]] = row[0]  # same context: overwrite in place
                return
            if where is not None:
                self._drop(id)
            part = self._parts.get(context_key)
            if part is None:
                part = self._parts[context_key] = _Partition(self.dim)
            self._where[id] = (context_key, part.append([id], row, slice(None)))

    def remove(self, id: Hashable) -> bool:
        """Drop ``id``; returns False if it was not stored."""
        with self._lock:
            if id not in self._where:
                return False
            self._drop(id)
            return True

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._where.clear()

    def search(self, vector: np.ndarray | Sequence[float], context_key: str,
               k: int = 5) -> list[tuple[Hashable, float]]:
        """The ``k`` stored ids of ``context_key`` nearest to ``vector``: ``[(id, cosine), ...]``,
        highest cosine first (fewer when the context holds fewer)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        q = self._unit_rows(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]  # (d,)
        with self._lock:
            part = self._parts.get(context_key)
            if part is None or not len(part) or k == 0:
                return []
            n = len(part)
            # (n,) cosines, as rows and query are unit vectors. einsum, not `@`: the product is
            # memory-bound (a 80k-row context is 123 MB read once), so BLAS threads gain nothing,
            # and on a busy 2-core box OpenBLAS's thread hand-off made it 2-50x slower.
            scores = np.einsum("nd,d->n", part.vectors[:n], q)
            if k < n:
                top = np.argpartition(scores, n - k)[n - k:]  # the k largest, unordered
            else:
                top = np.arange(n)
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(part.ids[i], float(scores[i])) for i in top]

    def _drop(self, id: Hashable) -> None:
        """Remove ``id`` (held lock, id present)."""
        key, row = self._where.pop(id)
        part = self._parts[key]
        moved = part.pop_row(row)
        if moved is not None:
            self._where[moved] = (key, row)
        if not len(part):
            del self._parts[key]  # a context with no rows costs nothing

    def _unit_rows(self, vectors: np.ndarray | Iterable[Sequence[float]]) -> np.ndarray:
        """``vectors`` as new float32 unit rows (n, dim); ``ValueError`` for bad ones."""
        rows = np.asarray(vectors, dtype=np.float32)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"vectors must have length {self.dim}, got shape {rows.shape}")
        norms = np.sqrt(np.einsum("nd,nd->n", rows, rows))  # (n,); linalg.norm is 10x slower here
        if not np.isfinite(norms).all():  # a nan or inf anywhere in a row makes its norm one too
            raise ValueError("vectors must be finite")
        if (norms == 0).any():
            raise ValueError("cannot index a zero vector")
        return rows / norms[:, None]

    def __repr__(self) -> str:
        return f"VectorIndex(dim={self.dim}, vectors={len(self)}, contexts={len(self._parts)})"
