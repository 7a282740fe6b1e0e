"""The checks that hold the architecture's boundaries (docs/ARCHITECTURE.md), run with the suite.

- import-linter: the contracts in pyproject.toml (the UI is imported by nothing but the CLI, the
  pipeline never imports the teachers, the tools see the engine only through TeachingHost, …);
- mypy on the core, with the UI tests' fake engine checked against the UI's engine protocol;
- ruff over the code and the tests.

Each runs the tool's own command line from the project root, as a developer would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(tool: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    executable = BIN / tool
    if not executable.exists():
        pytest.fail(f"{tool} is not installed next to {sys.executable}: install the dev extras "
                    "(pip install -e '.[dev]')")
    return subprocess.run([str(executable), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_import_contracts_hold():
    out = run("lint-imports", "--no-cache")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and " 0 broken" in out.stdout


def test_the_core_type_checks():
    out = run("mypy", "--no-incremental")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_ruff_finds_nothing():
    out = run("ruff", "check", "shammah_tui", "tests", "bench")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
