"""workerctl-llm: the ``llm`` executor and the model-judged review check
(``model_judged``, see ``review_check``). ``llm`` itself is imported only when a run
executes, a model judges a review, or ``worker validate`` checks a model id, so
workerctl's start-up is unchanged with this plugin installed."""

from __future__ import annotations

from workerctl.api import hookimpl
from workerctl_llm.executor import LLMExecutor

__all__ = ["LLMExecutor"]


@hookimpl
def register_executors(register):
    register(LLMExecutor())


@hookimpl
def register_review_checks(register):
    from workerctl_llm.review_check import CHECK

    register(CHECK)
