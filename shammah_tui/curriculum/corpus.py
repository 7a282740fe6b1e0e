"""Text the first tokenizer is built from, with no downloads.

The curriculum's questions and answers, plus English found on every machine
that runs us: the Python documentation topics shipped with the standard library
(`pydoc_data`). Together they give the default 8k vocabulary real words of prose
and code, so text Claude writes later does not fall back to single bytes.
"""

from __future__ import annotations

from collections.abc import Iterator


def tokenizer_corpus() -> Iterator[str]:
    """Deterministic lines of text; the same on every machine with the same Python."""
    from shammah_tui.curriculum.sampling import corpus_texts

    yield from corpus_texts()
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions split the docs out; the curriculum alone still works
        return
    for name in sorted(topics):
        yield from (line for line in topics[name].splitlines() if line.strip())
