"""Registers the built-in record store (records kept in the workspace)."""

from workerctl.api import hookimpl
from workerctl.records.builtin_store import BuiltinRecordStore


@hookimpl
def register_record_sources(register):
    register(BuiltinRecordStore)
