"""Registers the built-in record store (records kept in the workspace)."""

from __future__ import annotations

from collections.abc import Callable

from workerctl.api import hookimpl
from workerctl.records.builtin_store import BuiltinRecordStore


@hookimpl
def register_record_sources(register: Callable[..., None]) -> None:
    register(BuiltinRecordStore)
