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
