"""Redis URLs: from the worker's settings or WORKERCTL_REDIS_URL, shown without passwords."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from workerctl.api import UsageError

ENV_VAR = "WORKERCTL_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_url(settings: dict) -> str:
    return os.environ.get(ENV_VAR) or settings.get("redis_url") or DEFAULT_URL


def safe_url(url: str) -> str:
    """The URL with its password replaced by ***, fit for messages and the history."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def connect(url: str):
    from redis import Redis

    try:
        return Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    except ValueError as exc:
        raise UsageError(f"invalid Redis URL {safe_url(url)}: {exc}") from None
