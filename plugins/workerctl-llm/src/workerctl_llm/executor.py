"""One engine step = one model response, through the ``llm`` library.

The system prompt carries the worker's instructions, each context record goes as
its own system fragment, and the tools offered are exactly the worker's allowed
tools with their parameter schemas. Tool calls are returned to the engine, which
applies the gate and sends the results back on the next step: ``llm`` never
executes a tool here (no ``chain()``, no tool implementations), so nothing can
bypass the gate or the iteration limit.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from workerctl.api import (
    ExecutorFailure,
    InvalidOutput,
    ProviderUnavailable,
    Step,
    StepTimeout,
    ToolCall,
    normal_finish_reason,
)

SETTINGS = ("model", "options", "prompt")
DEFAULT_PROMPT = (
    "Do your job on {record}. Use the tools when you need more records. "
    "When you are done, reply with the final {output_mode} text only."
)
SECRET_PATTERNS = (re.compile(r"(?i)bearer\s+[^\s\"',}]+"), re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"))


class LLMExecutor:
    name = "llm"
    description = "Any language model through the llm library (llm keys, llm plugins)"
    calls_provider = True  # troubleshooting may put a timeout down to the provider

    # -- validation --

    def check_settings(self, settings: dict) -> list[tuple]:
        problems: list[tuple] = [
            (k, f"unknown llm setting {k!r}", f"known: {', '.join(SETTINGS)}")
            for k in settings
            if k not in SETTINGS
        ]
        model = settings.get("model")
        if not isinstance(model, str) or not model.strip():
            problems.append(
                (
                    "model",
                    "needs 'model': an llm model id",
                    "e.g. model: gpt-4o-mini ('llm models' lists them)",
                )
            )
        if "options" in settings and not isinstance(settings["options"], dict):
            problems.append(
                ("options", "must be a mapping of model options", "e.g. options: {temperature: 0}")
            )
        if "prompt" in settings and not isinstance(settings["prompt"], str):
            problems.append(("prompt", "must be text", "use {record} and {output_mode}"))
        return problems

    def check_settings_deep(self, settings: dict) -> list[tuple]:
        """What needs ``llm`` itself: is the model id known to llm? (``worker validate``)"""
        import llm

        model = settings.get("model")
        if not isinstance(model, str):
            return []
        try:
            llm.get_model(model)
        except llm.UnknownModelError:
            return [
                (
                    "model",
                    f"llm does not know the model {model!r}",
                    "'llm models' lists the ids; install the llm plugin for its provider",
                )
            ]
        return []

    # -- one step --

    def step(self, request) -> Step:
        import llm

        settings = request.settings
        try:
            model = llm.get_model(settings["model"])
        except llm.UnknownModelError:
            raise ExecutorFailure(
                f"llm does not know the model {settings['model']!r}", "'llm models' lists the ids"
            ) from None
        tools = [
            llm.Tool(name=t["name"], description=t["description"], input_schema=t["parameters"])
            for t in request.tools
        ]
        fragments = [json.dumps(record, ensure_ascii=False, default=str) for record in request.context]
        kwargs: dict[str, Any] = {
            "tools": tools,
            "stream": False,
            "options": dict(settings.get("options") or {}),
        }
        first = self._user_prompt(request)
        if not request.messages:
            kwargs.update(system=request.instructions, system_fragments=fragments)
            args: tuple = (first,)
        else:
            chain, results = self._history(request, fragments, first)
            kwargs.update(messages=chain, tool_results=results)
            args = (None,)
        secrets = _known_secrets(model)
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                response = model.prompt(*args, **kwargs)
                calls = response.tool_calls()
                box["value"] = (response.text(), calls, response.usage(), finish_reason(response))
            except BaseException as exc:  # re-raised in the engine's thread below
                box["error"] = exc

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(max(request.time_left, 0.01))
        if worker.is_alive():
            raise StepTimeout(f"model {model.model_id} did not answer within {request.time_left:.3g}s")
        if "error" in box:
            raise translate(box["error"], model, secrets) from None
        text, calls, usage, reason = box["value"]
        return Step(
            finish_reason=reason or ("tool_calls" if calls else "stop"),
            text=text if text and text.strip() else (None if calls else text),
            tool_calls=[
                ToolCall(c.name, c.arguments if isinstance(c.arguments, dict) else {}, c.tool_call_id or "")
                for c in calls
            ],
            usage={"model": model.model_id, "input_tokens": usage.input, "output_tokens": usage.output},
        )

    def _user_prompt(self, request) -> str:
        record = f"record {request.record_id}" if request.record_id else "no particular record"
        template = request.settings.get("prompt") or DEFAULT_PROMPT
        text = template.replace("{record}", record).replace("{output_mode}", request.output_mode)
        return text + contract_prompt(getattr(request, "output_contract", None), request.record_id)

    def _history(self, request, fragments: list[str], first: str):
        """The conversation so far as llm messages; the newest tool results go separately."""
        import llm
        from llm import parts

        system_text = "\n\n".join([*fragments, request.instructions])
        chain: list = [parts.system(parts.TextPart(text=system_text)), parts.user(parts.TextPart(text=first))]
        pending: list = []
        for message in request.messages:
            if message["role"] == "assistant":
                if pending:
                    chain.append(parts.tool_message(*pending))
                    pending = []
                items: list = [parts.TextPart(text=message["text"])] if message.get("text") else []
                items += [
                    parts.ToolCallPart(
                        name=c["name"], arguments=c["arguments"], tool_call_id=c.get("id") or None
                    )
                    for c in message["tool_calls"]
                ]
                chain.append(parts.assistant(*items))
            else:
                pending.append(
                    parts.ToolResultPart(
                        name=message["name"],
                        output=json.dumps(message["result"], default=str),
                        tool_call_id=message.get("id") or None,
                    )
                )
        results = [llm.ToolResult(name=p.name, output=p.output, tool_call_id=p.tool_call_id) for p in pending]
        return chain, results


def finish_reason(response: Any) -> str | None:
    """The provider's finish reason from the reply ``llm`` kept (``response_json``):
    OpenAI-style ``choices[0].finish_reason``, Anthropic-style ``stop_reason``, or a
    Responses-API ``status`` of ``incomplete`` (a token limit), in the step
    protocol's words (``normal_finish_reason``); None when the reply does not say."""
    data = getattr(response, "response_json", None)
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        found = normal_finish_reason(choices[0].get("finish_reason"))
        if found:
            return found
    for key in ("finish_reason", "stop_reason", "done_reason"):
        found = normal_finish_reason(data.get(key))
        if found:
            return found
    if data.get("status") == "incomplete":
        return "length"
    return None


def _known_secrets(model) -> list[str]:
    """The key this model would send, so it can be scrubbed from any error text."""
    try:
        key = model.get_key() if getattr(model, "needs_key", None) else None
    except Exception:
        key = None
    return [key] if key and len(key) >= 6 else []


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    for pattern in SECRET_PATTERNS:
        text = pattern.sub("***", text)
    return text


def _key_hint(model) -> str:
    needs = getattr(model, "needs_key", None)
    if needs:
        env = getattr(model, "key_env_var", None)
        return f"set the key with 'llm keys set {needs}'" + (f" or the {env} variable" if env else "")
    return (
        "the server refused the credentials: add api_key_name to the model in llm's "
        "extra-openai-models.yaml and set it with 'llm keys set NAME'"
    )


def contract_prompt(contract: dict | None, record_id: str | None) -> str:
    """The worker's output contract in words, so the model can keep it (review checks it)."""
    if not contract:
        return ""
    rules = []
    if contract.get("sections"):
        rules.append("start a line with each of " + ", ".join(f"'{s}:'" for s in contract["sections"]))
    if contract.get("names_record") and record_id:
        rules.append(f"name {record_id}")
    if contract.get("max_length"):
        rules.append(f"stay within {contract['max_length']} characters")
    if contract.get("max_lines"):
        rules.append(f"use at most {contract['max_lines']} lines")
    return " Your final text must " + "; ".join(rules) + "." if rules else ""


def translate(exc: BaseException, model, secrets: list[str]) -> ExecutorFailure:
    """Map a provider failure to the engine's error kinds with a message to act on."""
    import llm

    model_id = getattr(model, "model_id", "?")
    text = scrub(str(exc), secrets)
    if isinstance(exc, llm.errors.NeedsKeyException):
        return ProviderUnavailable(f"model {model_id} needs an API key: {_key_hint(model)}")
    try:
        import openai
    except ImportError:  # another provider's client: judge by the exception's name
        openai = None
    if openai is not None:
        base = getattr(getattr(exc, "request", None), "url", None)
        where = f" at {scrub(str(base), secrets)}" if base else ""
        if isinstance(exc, openai.APITimeoutError):
            return ProviderUnavailable(f"model {model_id} timed out{where}", text)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            reason = scrub(str(cause), secrets) if cause else text
            return ProviderUnavailable(
                f"cannot connect to the provider of {model_id}{where}: {reason}",
                "check the network, api_base and the provider's status",
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ProviderUnavailable(
                f"the provider rejected the credentials for {model_id} "
                f"(HTTP {exc.status_code}): {_key_hint(model)}",
                text,
            )
        if isinstance(exc, openai.RateLimitError):
            retry = exc.response.headers.get("retry-after") if exc.response else None
            when = f"; retry after {retry} s" if retry else ""
            return ProviderUnavailable(f"rate limited by the provider of {model_id} (HTTP 429){when}", text)
        if isinstance(exc, openai.InternalServerError):
            return ProviderUnavailable(
                f"the provider of {model_id} failed (HTTP {exc.status_code}) after the client's retries", text
            )
        if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
            return InvalidOutput(f"model {model_id} sent a malformed reply", text)
        if isinstance(exc, openai.APIStatusError):
            return ExecutorFailure(f"the provider of {model_id} answered HTTP {exc.status_code}", text)
    if isinstance(exc, ValueError | KeyError | TypeError):
        return InvalidOutput(
            f"model {model_id} sent a reply that is not a valid step: {type(exc).__name__}", text
        )
    name = type(exc).__name__
    if "Connect" in name or "Timeout" in name:
        return ProviderUnavailable(f"cannot reach the provider of {model_id}: {text}")
    return ExecutorFailure(f"model {model_id} failed: {name}: {text}")
