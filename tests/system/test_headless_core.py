"""The core never imports textual: every module outside shammah_tui.ui is importable headless."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import shammah_tui


def core_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(shammah_tui.__path__, "shammah_tui.")]
    return sorted(n for n in names if not n.startswith("shammah_tui.ui") and n != "shammah_tui.__main__")


def test_core_modules_do_not_import_textual():
    modules = core_modules()
    assert len(modules) > 20
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"textual imported by the core: {out.stdout}"


def test_engine_import_does_not_load_torch():
    """The first frame must not wait for torch: the engine and CLI import without it."""
    code = "import shammah_tui.engine, shammah_tui.cli, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
