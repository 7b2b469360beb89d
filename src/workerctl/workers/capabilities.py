"""What the worker needs against what its model can do, before anything runs.

The one place this is decided: ``worker validate`` (through ``validation.validate``
with ``deep``) and ``run start`` (``Engine.prepare``, through
``validation.require_capabilities``) both call ``problems``. The executor is asked
through the registry, never imported: an executor that defines
``capabilities(settings) -> Capabilities`` (the ``llm`` plugin asks its library) is
checked; one that does not is trusted, as before.

The rule: a worker with tool categories needs a model with tool support. There is
no silent fallback to running without tools; the fix is to remove
``tool_categories`` (the model then works from its context records alone) or to
choose a model that supports tools (``docs/local-models.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.engine.step import Capabilities
    from workerctl.plugins.manager import Registry

#: (field path in the worker file, problem, fix)
Gap = tuple[tuple[str, ...], str, str]


def stepping_executor(name: str, settings: dict[str, Any], registry: Registry) -> tuple[Any, dict[str, Any]]:
    """The executor that does the steps and its settings: a remote executor's ``inner``."""
    from workerctl.engine.remote import as_remote

    executor = registry.executors.get(name)
    if as_remote(executor) is not None:
        inner = settings.get("inner")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return registry.executors.get(inner["name"]), {k: v for k, v in inner.items() if k != "name"}
    return executor, settings


def ask(executor: Any, settings: dict[str, Any]) -> Capabilities | None:
    """The executor's answer, or None when it does not say (no ``capabilities``).
    An ``ExecutorFailure`` (say, a model that is not installed) goes to the caller."""
    asker = getattr(executor, "capabilities", None)
    if not callable(asker):
        return None
    return asker(settings)


def problems(name: str, settings: dict[str, Any], categories: list[str], registry: Registry) -> list[Gap]:
    """Every capability the worker needs and its model lacks, with the fix."""
    from workerctl.engine.step import ExecutorFailure

    executor, inner_settings = stepping_executor(name, settings, registry)
    if executor is None:
        return []
    try:
        caps = ask(executor, inner_settings)
    except ExecutorFailure as failure:
        return [(("executor", "model"), failure.message, failure.detail or "install the model's plugin")]
    if caps is None:
        return []
    gaps: list[Gap] = []
    if categories and caps.tools is False:
        gaps.append(
            (
                ("tool_categories",),
                f"model {caps.model} does not support tools, and this worker has tool categories "
                f"({', '.join(categories)})",
                "remove tool_categories (the model then works from its context records alone), or "
                "choose a model that supports tools"
                + (f" ({caps.hints['tools']})" if caps.hints.get("tools") else ""),
            )
        )
    return gaps
