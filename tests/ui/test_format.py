"""Unit tests for the UI's pure helpers (no app), and the import-time promise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shammah_tui.formatting import (
    compact_json, describe_models, downsample, error_line, eta_seconds, format_ms, rolling_rates, source_rates,
    stats_text,
)
from shammah_tui.ui.slash import SlashError, parse_slash
from tests.ui.fakes import default_stats


def test_downsample_keeps_at_most_the_limit_and_the_shape():
    values = [float(i) for i in range(10_000)]
    xs, ys = downsample(values, 300)
    assert len(xs) == len(ys) == 300
    assert xs[0] < xs[-1] <= 10_000
    assert abs(sum(ys) / len(ys) - sum(values) / len(values)) < 1.0
    assert downsample([1.0, 2.0], 300) == ([1.0, 2.0], [1.0, 2.0])


def test_rolling_rates_cover_the_last_span_with_moving_shares():
    sources = ["forward"] * 10 + ["neural"] * 10
    rates = rolling_rates(sources, window=10, span=5)
    assert len(rates["neural"]) == 5
    assert rates["neural"][-1] == 100.0 and rates["forward"][-1] == 0.0
    assert all(abs(sum(rates[s][i] for s in rates) - 100.0) < 1e-9 for i in range(5))
    assert rolling_rates([], 10, 50)["neural"] == []


def test_source_rates_and_formats():
    assert source_rates({"neural": 1, "forward": 3})["forward"] == 0.75
    assert source_rates({})["neural"] is None
    assert format_ms(0.42) == "0.4 ms" and format_ms(840) == "840 ms" and format_ms(1250) == "1.2 s"
    assert eta_seconds(10, 40, 64.0, 32) == 15.0
    assert compact_json({"query": "x" * 100}, 20).endswith("…") and len(compact_json({"a": 1}, 20)) <= 20


def test_describe_models_tolerates_key_shapes():
    assert describe_models({"device": "cuda:0", "params": 2_000_000}) == ("cuda:0", "2.00M params")
    device, size = describe_models({"device": "cpu", "generator": {"params": 1_000_000},
                                    "router": {"params": 500}})
    assert device == "cpu" and size == "1.00M params"
    info = {"device": "cpu", "params": {"generator": 1_200_000, "router": 150_000, "validator": 140_000},
            "tokenizer_version": "bpe-8000-v1", "vocab_size": 8000, "generator_config": {"n_embd": 128}}
    assert describe_models(info) == ("cpu", "1.49M params")  # LocalModels.info()
    assert describe_models({}) == ("?", "")


def test_error_line_is_one_line():
    from shammah_tui.core.teaching import TeacherError

    assert error_line(TeacherError("auth", "Claude rejected the API key (401)")) == "Claude rejected the API key (401)"
    assert error_line(ValueError("bad\nTraceback ...")) == "ValueError: bad"
    assert error_line(RuntimeError()) == "RuntimeError: RuntimeError"


def test_slash_parsing():
    assert parse_slash("what is 2/3?") is None
    assert parse_slash("/ not a command") is None
    assert parse_slash("//train") is None
    command = parse_slash("  /Teach   fractions and decimals ")
    assert command is not None and (command.name, command.arg) == ("teach", "fractions and decimals")
    with pytest.raises(SlashError, match="Unknown command /nope"):
        parse_slash("/nope")
    with pytest.raises(SlashError, match="needs a question"):
        parse_slash("/compare   ")


def test_stats_text_has_the_sources_the_bound_and_the_last_run():
    from dataclasses import replace

    from shammah_tui.core.stats import LossChange

    stats = replace(default_stats(), last_run={"generator": LossChange(4.2, 3.1, 26.19, "held-out batch")})
    text = stats_text(stats)
    assert "neural           10    25.0%" in text
    assert "bound δ 5.0%" in text
    assert "generator        4.2       3.1   +26.2%" in text


def test_importing_the_ui_does_not_import_torch_or_the_models():
    code = (
        "import sys, shammah_tui.ui, shammah_tui.ui.app\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'shammah_tui.models',"
        " 'shammah_tui.training.trainer', 'shammah_tui.training.job', 'shammah_tui.engine'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
