"""workerctl-llm: the ``llm`` executor. ``llm`` itself is imported only when a run
executes (or ``worker validate`` checks a model id), so workerctl's start-up is
unchanged with this plugin installed."""

from __future__ import annotations

from workerctl.api import hookimpl
from workerctl_llm.executor import LLMExecutor

__all__ = ["LLMExecutor"]


@hookimpl
def register_executors(register):
    register(LLMExecutor())
