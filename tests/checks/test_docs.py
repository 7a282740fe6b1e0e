"""The docs name only what exists: a recipe that points at a missing file misleads whoever follows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["docs/ARCHITECTURE.md", "README.md"]
#: A backticked repository path: a file with an extension, or a folder ending in '/'.
PATH = re.compile(r"`((?:shammah_tui|tests|bench|docs|snapshots)/[\w./<>-]*)`")


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_doc_names_exists(doc: str) -> None:
    named = sorted(set(PATH.findall((ROOT / doc).read_text(encoding="utf-8"))))
    assert named, f"{doc} names no path: the pattern no longer matches its style"
    missing = [p for p in named if "<" not in p and not (ROOT / p).exists()]
    assert not missing, f"{doc} names paths that do not exist: {missing}"
