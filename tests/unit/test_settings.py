"""Settings: defaults, TOML, environment and flags, and a clear error for each bad value."""

from __future__ import annotations

import pytest

from shammah_tui.settings import Settings, SettingsError, default_settings_toml, load_settings


def test_defaults_match_the_design():
    s = Settings()
    assert (s.batch_size, s.n_embd, s.n_layer, s.n_head) == (32, 128, 2, 4)
    # Cheapest first (a tier is credited only with what no cheaper tier would give); δ = 2%.
    assert s.tier_order == ("template", "learned", "neural")
    assert s.error_bound == 0.02


def test_default_file_round_trips(tmp_path):
    (tmp_path / "settings.toml").write_text(default_settings_toml())
    assert load_settings(tmp_path, environ={}) == Settings()


def test_precedence_toml_then_env_then_flags(tmp_path):
    (tmp_path / "settings.toml").write_text('teacher = "claude"\nclaude_model = "from-toml"\nbatch_size = 8\n')
    s = load_settings(tmp_path, environ={"SHAMMAH_MODEL": "from-env"})
    assert (s.teacher, s.claude_model, s.batch_size) == ("claude", "from-env", 8)
    s = load_settings(tmp_path, {"teacher": "offline"}, environ={"SHAMMAH_TEACHER": "claude"})
    assert s.teacher == "offline"


@pytest.mark.parametrize("line, key", [
    ('teacher = "gpt"', "teacher"),
    ("batch_size = 0", "batch_size"),
    ('batch_size = "many"', "batch_size"),
    ("batch_size = true", "batch_size"),
    ("learning_rate = -1", "learning_rate"),
    ("learning_rate = 2", "learning_rate"),
    ("replay_fraction = 1.0", "replay_fraction"),
    ("n_embd = 4", "n_embd"),
    ("n_head = 3", "n_head"),
    ("n_layer = 0", "n_layer"),
    ("block_size = 10", "block_size"),
    ("vocab_size = 100", "vocab_size"),
    ('tier_order = ["neural", "magic"]', "tier_order"),
    ('tier_order = ["neural", "neural"]', "tier_order"),
    ("tier_order = []", "tier_order"),
    ("spot_check_rate = 1.5", "spot_check_rate"),
    ("error_bound = 0", "error_bound"),
    ("max_new_tokens = 0", "max_new_tokens"),
    ("tool_iterations = 0", "tool_iterations"),
    ('device = "tpu"', "device"),
    ('claude_model = "  "', "claude_model"),
    ('auto_train = "perhaps"', "auto_train"),
    ("no_such_key = 1", "no_such_key"),
])
def test_each_bad_value_names_its_key(tmp_path, line, key):
    (tmp_path / "settings.toml").write_text(line + "\n")
    with pytest.raises(SettingsError, match=key):
        load_settings(tmp_path, environ={})


def test_invalid_toml_is_reported(tmp_path):
    (tmp_path / "settings.toml").write_text("batch_size = = 3\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(tmp_path, environ={})


def test_bad_environment_value(tmp_path):
    with pytest.raises(SettingsError, match="environment: teacher"):
        load_settings(tmp_path, environ={"SHAMMAH_TEACHER": "nobody"})
