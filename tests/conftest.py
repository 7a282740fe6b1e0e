"""Shared fixtures: every test gets its own data dir and no API key from the environment."""

from __future__ import annotations

import pytest

from tests.fakeapi import fake_api  # noqa: F401  (fixture: a Messages API server on 127.0.0.1)


@pytest.fixture(scope="session")
def models_seed(tmp_path_factory):
    """One models dir (a tokenizer) for the whole session: every engine test copies it."""
    from tests.datadirs import build_models_dir

    return build_models_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's data dir, key or teacher choice."""
    home = tmp_path / "shammah-home"
    monkeypatch.setenv("SHAMMAH_HOME", str(home))
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "SHAMMAH_TEACHER",
                "SHAMMAH_MODEL", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    # No sentence encoder unless a test gives one: a developer's Hugging Face cache stays out.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hf-cache"))
    return home


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run tiny models on one intra-op thread: a second thread buys little at this size, and when
    other processes keep a 2-core box busy the OpenMP barrier makes two threads several times
    slower (measured: 85 s vs 12 s for the model tests under load 4)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
