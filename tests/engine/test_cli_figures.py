"""Figures as the CLI prints them (counts, decimals, run numbers and durations) and the progress
bars of long commands: drawn on a terminal, absent when piped."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from shammah_tui.core.ask import AskPolicy, Question
from shammah_tui.core.stats import LossChange, Stats
from shammah_tui.formatting import format_figure, plural, runs_phrase, stats_text

SETTINGS = 'teacher = "offline"\nauto_train = false\nsteps_per_run = 3\nbatch_size = 8\n'
QUESTIONS = ["What is the capital of France?", "What is the capital of Peru?", "What is the capital of Japan?",
             "What is the capital of Kenya?", "What is the capital of Chile?", "What is the capital of Spain?"]


def test_counts_are_pluralized():
    assert plural(1, "run") == "1 run" and plural(2, "check") == "2 checks" and plural(1, "thread") == "1 thread"
    assert runs_phrase(Stats(training_runs=1, runs_started=1)) == "1 run"
    assert runs_phrase(Stats(training_runs=5, runs_started=7)) == "5 runs done of 7 started"
    assert runs_phrase(Stats()) == "0 runs"


def test_a_cpu_with_one_thread_reads_1_thread():
    import torch

    from shammah_tui.models.device import describe_device

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert describe_device("cpu") == "cpu (1 thread)"
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value, shown", [(1234.5, "1,234"), (512.34, "512"), (12.345, "12.3"), (1.2345, "1.23"),
                                          (0.012345, "0.0123"), (0.0, "0"), (7, "7"), (12000, "12,000"),
                                          (None, "—")])
def test_figures_have_three_significant_digits(value, shown):
    assert format_figure(value) == shown


def test_bench_render_has_no_mixed_decimals():
    from shammah_tui.benchmark.suite import render

    text = render({"rss_mb": 512.3456, "generation_p50_ms": 12.3456, "train_overhead_ratio": 1.0234,
                   "model_params": 1490000, "machine": {}})
    assert "512.346" not in text and " 512 " in f" {text} " and "12.3 " in text and "1.02 " in text
    assert "1,490,000" in text


def test_stats_text_names_the_last_run_by_its_id_beside_a_count_that_explains_it():
    text = stats_text(Stats(training_runs=5, runs_started=7, last_run_id=7,
                            last_run={"generator": LossChange(2.0, 1.5, 25.0, "held out")}))
    assert "5 runs done of 7 started" in text and "run #7" in text


async def test_stats_count_every_run_started(tmp_path):
    from shammah_tui.engine.stats import collect_stats
    from shammah_tui.pipeline.thresholds import Thresholds
    from shammah_tui.settings import Settings
    from shammah_tui.store import Store

    store = await Store.open(tmp_path / "shammah.db")
    try:
        for status in ("done", "cancelled", "done"):
            run = await store.start_run("test", "cpu")
            await store.finish_run(run, status=status, examples=1, steps=1, examples_per_s=None, losses={},
                                   trained_ids=[])
        stats = await collect_stats(store, Settings(), Thresholds(), "none")
    finally:
        await store.close()
    assert (stats.training_runs, stats.runs_started, stats.last_run_id) == (2, 3, 3)


def test_progress_draws_on_a_terminal_and_nothing_when_piped():
    from shammah_tui.core.events import TrainingFinished, TrainingStep
    from shammah_tui.progress import WorkProgress
    from shammah_tui.core.runs import RunReport, StepEvent

    outputs = {}
    for terminal in (True, False):
        buffer = io.StringIO()
        progress = WorkProgress(Console(file=buffer, force_terminal=terminal, width=100))
        assert progress.enabled is terminal
        with progress:
            for step in range(1, 4):
                progress.on_event(TrainingStep(4, StepEvent("generator", step, 3, 1.0, 10.0)))
            if progress._progress is not None:
                progress._progress.refresh()  # draw now, not at the next tick
            progress.on_event(TrainingFinished(4, RunReport(status="done")))
        outputs[terminal] = buffer.getvalue()
    assert "run #4 generator" in outputs[True] and "ETA" in outputs[True]
    assert outputs[False] == ""


def _data_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    (path / "settings.toml").write_text(SETTINGS)
    out = subprocess.run([sys.executable, "-m", "shammah_tui", "batch", "-", "--data-dir", str(path)],
                         input="\n".join(QUESTIONS) + "\n", capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return path


def test_train_piped_prints_only_its_result(tmp_path):
    data = _data_dir(tmp_path / "data")
    # rich draws on a pipe too when told to (FORCE_COLOR, TTY_COMPATIBLE): here nothing tells it.
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    out = subprocess.run([sys.executable, "-m", "shammah_tui", "train", "--wait", "--data-dir", str(data)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines and all(" loss " in line and " step " not in line for line in lines), lines
    assert "\x1b" not in out.stdout + out.stderr and "ETA" not in out.stderr


def test_train_on_a_terminal_shows_a_bar_with_an_eta(tmp_path, monkeypatch, capsys):
    from shammah_tui import cli
    from shammah_tui.progress import WorkProgress

    data = _data_dir(tmp_path / "data")
    screen = io.StringIO()
    monkeypatch.setattr(cli, "make_progress",
                        lambda: WorkProgress(Console(file=screen, force_terminal=True, width=100)))
    assert cli.main(["train", "--wait", "--data-dir", str(data)]) == 0
    assert "run #1 generator" in screen.getvalue() and "ETA" in screen.getvalue()
    assert " loss " in capsys.readouterr().out


async def test_a_stored_run_lasts_as_long_as_the_run_reported(tmp_path, monkeypatch):
    """The live summary and the one rebuilt from the store after a restart show one duration."""
    from shammah_tui.training import job as jobs
    from tests.datadirs import open_engine

    evaluate = jobs.evaluate

    def slow_evaluate(*args, **kwargs):  # the evaluations around the generator's steps take time
        time.sleep(0.5)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(jobs, "evaluate", slow_evaluate)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "settings.toml").write_text(SETTINGS)
    engine = await open_engine(data)
    try:
        for question in QUESTIONS:
            await engine.ask(Question(question), AskPolicy(auto_train="off"))
        report = await engine.train("test")
        assert report is not None and report.status == "done"
        (run,) = await engine.store.runs()
    finally:
        await engine.close()
    stored = run.finished_at - run.started_at  # what a restarted UI shows
    assert run.duration_s == stored and report.duration_s >= 1.5
    assert abs(stored - report.duration_s) < 1.0, (stored, report.duration_s)
