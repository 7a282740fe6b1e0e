"""`shammah-tui conversations [list|show|export|rename|delete]` and `--continue`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shammah_tui.cli import build_parser, main
from shammah_tui.store import Store


def make_conversations(data: Path) -> list[int]:
    async def fill() -> list[int]:
        data.mkdir(mode=0o700, exist_ok=True)
        store = await Store.open(data / "shammah.db")
        try:
            first = await store.new_conversation()
            await store.add_message(first, "user", "What is 2+2?")
            await store.add_message(first, "assistant", "4", source="template")
            second = await store.new_conversation()
            await store.add_message(second, "user", "Capital of France?")
            await store.add_message(second, "assistant", "Paris", source="forward")
            return [first, second]
        finally:
            await store.close()

    return asyncio.run(fill())


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_show_export_rename_delete(tmp_path, capsys):
    data = tmp_path / "data"
    first, second = make_conversations(data)
    d = ["--data-dir", str(data)]

    code, out, _ = cli(capsys, "conversations", *d)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == [str(second), str(first)]
    assert "2 messages" in out and "Capital of France?" in out
    code, out, _ = cli(capsys, *d, "conversations", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["id"] for r in rows] == [second, first] and rows[0]["messages"] == 2

    code, out, _ = cli(capsys, "conversations", "show", str(first), *d)
    assert code == 0 and "[you] What is 2+2?" in out and "[template] 4" in out
    code, out, _ = cli(capsys, "conversations", "show", *d)  # the last one by default
    assert code == 0 and "[forward] Paris" in out

    code, out, _ = cli(capsys, "conversations", "export", str(first), "--format", "json", *d)
    exported = json.loads(out)
    assert code == 0 and [m["text"] for m in exported["messages"]] == ["What is 2+2?", "4"]
    code, out, _ = cli(capsys, "conversations", "export", str(first), "-o", str(tmp_path / "out.md"), *d)
    assert code == 0 and "## Shammah · template" in (tmp_path / "out.md").read_text()

    code, out, _ = cli(capsys, "conversations", "rename", str(first), "Sums", *d)
    assert code == 0
    code, out, _ = cli(capsys, "conversations", "list", *d)
    assert "Sums" in out and "What is 2+2?" not in out

    code, out, _ = cli(capsys, "conversations", "delete", str(first), *d)
    assert code == 0 and "2 messages" in out
    code, out, _ = cli(capsys, "conversations", "list", *d)
    assert [line.split()[0] for line in out.splitlines()] == [str(second)]


def test_a_conversation_that_does_not_exist_is_one_line_exit_1(tmp_path, capsys):
    make_conversations(tmp_path / "data")
    for action in ("show", "export", "delete"):
        code, _, err = cli(capsys, "conversations", action, "99", "--data-dir", str(tmp_path / "data"))
        assert code == 1 and err.startswith("shammah-tui: no conversation #99") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["conversations", "frob"], ["conversations", "rename", "1"],
                                  ["conversations", "export", "1", "--format", "pdf"]])
def test_bad_conversation_usage_exits_2(tmp_path, capsys, argv):
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 2


def test_continue_reaches_the_ui_entry_point(tmp_path, monkeypatch):
    import shammah_tui.ui as ui

    seen = {}

    def fake_run_tui(data_dir, settings, **kwargs):
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(ui, "run_tui", fake_run_tui)
    for argv in (["--continue"], ["tui", "--continue"], ["--continue", "tui"]):
        seen.clear()
        assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 0
        assert seen["resume_last"] is True, argv
    assert main(["--data-dir", str(tmp_path / "data")]) == 0 and seen["resume_last"] is False
    assert build_parser().parse_args(["tui"]).__dict__.get("resume_last") in (None, False)


def test_build_app_keeps_continue_for_the_ui(tmp_path):
    from shammah_tui.settings import Settings
    from shammah_tui.ui import build_app

    assert build_app(tmp_path, Settings(), resume_last=True, load_models=False).resume_last is True
    assert build_app(tmp_path, Settings(), load_models=False).resume_last is False


def test_search_finds_a_message_in_any_conversation(tmp_path, capsys):
    data = tmp_path / "data"
    first, second = make_conversations(data)
    code, out, _ = cli(capsys, "conversations", "search", "paris", "--json", "--data-dir", str(data))
    assert code == 0
    found = [json.loads(line) for line in out.splitlines()]
    assert [(f["conversation"], f["role"], f["text"]) for f in found] == [(second, "assistant", "Paris")]
    code, out, _ = cli(capsys, "conversations", "search", "2+2", "--data-dir", str(data))
    assert code == 0 and f"#{first}" in out and "What is 2+2?" in out
    # LIKE's own wildcards are literal text here: '%' finds nothing in these messages.
    code, _, err = cli(capsys, "conversations", "search", "%", "--data-dir", str(data))
    assert code == 1 and "no message contains '%'" in err
