"""Fixtures of the rq tests: a real Redis, a workspace that uses it, rq worker processes."""

from __future__ import annotations

import shutil

import pytest
from rq_processes import RedisServer, Workers


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def ws(workerctl_workspace, redis_server, monkeypatch):
    settings = workerctl_workspace.settings_file
    settings.write_text(settings.read_text().replace("stale_after: 120", "stale_after: 3"))
    monkeypatch.setenv("WORKERCTL_REDIS_URL", redis_server.url)
    return workerctl_workspace


@pytest.fixture
def workers(ws, redis_server):
    pool = Workers(ws, redis_server.url)
    yield pool
    pool.stop()
