"""The CLI contract: help, version, exit codes, stats on a fresh data dir."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from shammah_tui import __version__
from shammah_tui.cli import main

COMMANDS = ["tui", "ask", "batch", "teach", "train", "stats", "bench", "serve", "conversations"]


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: int = 300):
    return subprocess.run([sys.executable, "-m", "shammah_tui", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, input=input, timeout=timeout)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"shammah-tui {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_each_command(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--data-dir" in capsys.readouterr().out


def test_unknown_command_is_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_argument_is_usage_error(capsys):
    assert main(["ask"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line


def test_bad_teacher_flag_is_usage_error(capsys):
    assert main(["stats", "--teacher", "gpt"]) == 2


def test_bad_settings_file_exits_2_naming_the_key(tmp_path, capsys):
    (tmp_path / "settings.toml").write_text("batch_size = -3\n")
    assert main(["stats", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "batch_size" in err and err.count("\n") == 1


def test_stats_json_on_fresh_data_dir(tmp_path):
    data = tmp_path / "fresh"
    out = run_cli("stats", "--json", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    for key in ("queries", "by_source", "examples_queued", "examples_trained", "learned_answers",
                "training_runs", "last_run", "verified_agreement", "estimated_local_error"):
        assert key in stats
    assert stats["by_source"] == {"neural": 0, "learned": 0, "template": 0, "forward": 0}
    assert stats["queries"] == 0 and stats["last_run"] is None
    # Per tier, the bound in force beside the error spot checks measured (none yet).
    assert stats["bounds"]["neural"]["bound"] == 0.02 and stats["bounds"]["neural"]["open_regions"] == 0
    assert all(stats["bounds"][tier]["served_error"] is None for tier in ("neural", "learned", "template"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "settings.toml").exists() and (data / "shammah.db").exists()


def test_data_dir_from_environment(tmp_path):
    home = tmp_path / "via-env"
    out = run_cli("stats", env={"SHAMMAH_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    assert (home / "shammah.db").exists()


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["stats", "--data-dir", str(path)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_claude_asked_for_without_a_key_is_a_usage_error_not_the_offline_teacher(tmp_path, capsys, monkeypatch):
    for argv in (["ask", "hello", "--teacher", "claude"], ["batch", "-", "--teacher", "claude"]):
        assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("shammah-tui: ") and "ANTHROPIC_API_KEY" in err and err.count("\n") == 1
    monkeypatch.setenv("SHAMMAH_TEACHER", "claude")  # the same asked for by the environment
    assert main(["ask", "hello", "--data-dir", str(tmp_path / "data")]) == 2
    assert not (tmp_path / "data").exists()  # refused before anything was created


@pytest.mark.parametrize("query", ["", "   ", "\x1b[31m\x07"])
def test_an_empty_question_is_a_usage_error(tmp_path, capsys, query):
    assert main(["ask", query, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shammah-tui: ") and "empty" in err and err.count("\n") == 1


def test_a_batch_file_that_does_not_exist_is_a_usage_error(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nope.txt"), "--data-dir", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == f"shammah-tui: no such file: {tmp_path / 'nope.txt'}\n"


def test_errors_read_the_same_everywhere(tmp_path):
    """A failed forward on stderr and a bad batch line on stdout: one form each, no bare `error:`."""
    batch = tmp_path / "q.txt"
    batch.write_text('{"nope": 1}\nWhat is 2+2?\n')
    out = run_cli("batch", str(batch), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1, out.stderr
    assert out.stdout.splitlines() == ['1: [error] JSON line needs a string field "query"', "2: [template] 4"]
    asked = run_cli("ask", "Why did the Roman Empire fall?", "--data-dir", str(tmp_path / "data"))
    assert asked.returncode == 1 and asked.stderr.startswith("shammah-tui: The offline teacher")


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_work_before_or_after_the_subcommand(tmp_path, where):
    data = tmp_path / "chosen"
    options = ["--data-dir", str(data), "--teacher", "offline"]
    argv = [*options, "stats", "--json"] if where == "before" else ["stats", "--json", *options]
    out = run_cli(*argv, env={"SHAMMAH_HOME": str(tmp_path / "default")})
    assert out.returncode == 0, out.stderr
    assert (data / "shammah.db").exists() and not (tmp_path / "default").exists()


def test_global_options_before_the_subcommand_reach_it():
    from shammah_tui.cli import build_parser

    args = build_parser().parse_args(["--data-dir", "X", "--teacher", "offline", "ask", "q"])
    assert (args.data_dir, args.teacher, args.query) == ("X", "offline", "q")
    assert build_parser().parse_args(["--serve", "9000", "tui"]).serve == 9000
    assert build_parser().parse_args(["ask", "q"]).data_dir is None


def test_batch_exit_code_summary_and_numbered_lines(tmp_path):
    batch = tmp_path / "q.txt"
    batch.write_text('What is 2+2?\n\n{"query": \nWhy did the Roman Empire fall?\nWhat is 3+4?\n')
    out = run_cli("batch", str(batch), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == "1: [template] 4" and lines[-1] == "5: [template] 7"
    assert lines[1].startswith("3: [error] not valid JSON") and lines[2].startswith("4: [error] The offline")
    assert out.stderr.splitlines()[-1] == "shammah-tui: 2 of 4 queries not answered (lines 3, 4)"
    as_json = run_cli("batch", str(batch), "--json", "--data-dir", str(tmp_path / "data"))
    assert as_json.returncode == 1
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 3, 4, 5] and [bool(r["error"]) for r in rows] == [False, True, True, False]
    clean = tmp_path / "ok.txt"
    clean.write_text("What is 2+2?\n")
    assert run_cli("batch", str(clean), "--data-dir", str(tmp_path / "data")).returncode == 0


def test_batch_record_keeps_an_answer_of_several_lines_with_its_number():
    from shammah_tui.cli import batch_record

    assert batch_record(12, "forward", "one\ntwo") == "12: [forward] one\n    two"
    assert batch_record(3, None, "bad line") == "3: [error] bad line"


def test_ask_dash_reads_the_question_from_stdin(tmp_path):
    out = run_cli("ask", "-", "--json", "--data-dir", str(tmp_path / "data"), input="What is 2+2?\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["answer"] == "4"
    empty = run_cli("ask", "-", "--data-dir", str(tmp_path / "data"), input="  \n")
    assert empty.returncode == 2 and "empty" in empty.stderr
