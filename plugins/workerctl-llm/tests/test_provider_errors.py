"""The one table of provider errors, against the real exception objects of the client
libraries installed here (openai, anthropic, llm, llama-cpp) — built the way those
libraries build them from an HTTP response — and generated ones for what it must
never do (raise, leak a key, give no message)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from workerctl_llm.provider_errors import TABLE, row_for, translate

KEY = "sk-test-0123456789abcdef"


def http_error(module: str, status: int, body: dict, headers: dict | None = None) -> BaseException:
    """``module``'s own exception for an HTTP answer, made by the client's own factory."""
    lib = pytest.importorskip(module)
    httpx = pytest.importorskip("httpx2")
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(status, json=body, headers=headers or {}, request=request)
    client_cls = lib.OpenAI if module == "openai" else lib.Anthropic
    client = client_cls(api_key=KEY, base_url="http://127.0.0.1:9/v1")
    return client._make_status_error_from_response(response)


def kind(exc: BaseException) -> str:
    return translate(exc, "m", lambda t: t.replace(KEY, "***"), lambda: "set the key").kind


OPENAI = [
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens. However, your "
                     "messages resulted in 9000 tokens.", "code": "context_length_exceeded"}},
     "context_too_long"),
    (400, {"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's "
                     "content management policy.", "code": "content_filter"}}, "model_refused"),
    (400, {"error": {"message": "tools are not supported for this model", "code": None}},
     "unsupported_feature"),
    (404, {"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}},
     "model_not_installed"),
    (401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}, "provider_auth_failed"),
    (403, {"error": {"message": "not allowed"}}, "provider_auth_failed"),
    (429, {"error": {"message": "Rate limit reached"}}, "rate_limited"),
    (500, {"error": {"message": "boom"}}, "provider_unavailable"),
    (409, {"error": {"message": "conflict"}}, "executor_error"),
]  # fmt: skip

ANTHROPIC = [
    (400, {"type": "error", "error": {"type": "invalid_request_error",
                                      "message": "prompt is too long: 210000 tokens > 200000 maximum"}},
     "context_too_long"),
    (404, {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-9"}},
     "model_not_installed"),
    (401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
     "provider_auth_failed"),
    (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, "rate_limited"),
    (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
     "provider_unavailable"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "expected"), OPENAI)
def test_openai_exceptions(status, body, expected):
    exc = http_error("openai", status, body, {"retry-after": "7"} if status == 429 else None)
    failure = translate(exc, "gpt-x", lambda t: t.replace(KEY, "***"), lambda: "llm keys set openai")
    assert failure.kind == expected, (type(exc).__name__, failure.message)
    assert KEY not in failure.message + failure.detail
    if status == 429:
        assert "retry after 7 s" in failure.message
    if status == 401:
        assert "llm keys set openai" in failure.message


@pytest.mark.slow
@pytest.mark.parametrize(("status", "body", "expected"), ANTHROPIC)
def test_anthropic_exceptions(status, body, expected):
    assert kind(http_error("anthropic", status, body)) == expected


def test_openai_connection_and_timeout_errors():
    openai = pytest.importorskip("openai")
    httpx = pytest.importorskip("httpx2")
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    assert kind(openai.APIConnectionError(request=request)) == "provider_unavailable"
    assert kind(openai.APITimeoutError(request=request)) == "provider_unavailable"


def test_llm_and_llama_cpp_exceptions():
    llm = pytest.importorskip("llm")
    assert kind(llm.UnknownModelError("Unknown model: nope")) == "model_not_installed"
    assert kind(llm.errors.NeedsKeyException("No key found")) == "provider_auth_failed"
    # llm's own refusal of tools on a model without them, and llama-cpp's context error
    # (both ValueError, word for word as those libraries raise them)
    assert kind(ValueError("SmolLM2: SmolLM2 does not support tools")) == "unsupported_feature"
    assert kind(ValueError("Requested tokens (707) exceed context window of 512")) == "context_too_long"
    assert (
        kind(llm.errors.ConversationNotSupported("m does not support conversations")) == "unsupported_feature"
    )
    # any other ValueError from a reply is still the model's invalid output
    assert kind(ValueError("Expecting value: line 1 column 1")) == "invalid_output"


def test_the_table_has_a_row_for_each_condition_of_the_issue():
    names = {row.condition for row in TABLE}
    assert {
        "context length exceeded",
        "model not installed",
        "unsupported feature",
        "refusal",
        "rate limit",
        "authentication",
        "connection failure",
        "answer cut at the token limit",
    } <= names


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["ValueError", "RuntimeError", "BadRequestError", "RateLimitError", "X"]),
    text=st.text(max_size=200),
    status=st.one_of(st.none(), st.integers(100, 599)),
    body=st.one_of(st.none(), st.dictionaries(st.sampled_from(["error", "code", "type", "message"]),
                                                st.one_of(st.text(max_size=30), st.none(), st.integers()))),
)  # fmt: skip
def test_any_exception_becomes_a_failure_with_a_message_and_no_key(name, text, status, body):
    cls = type(name, (ValueError if name == "ValueError" else Exception,), {})
    exc = cls(text + " " + KEY)
    exc.status_code = status
    exc.body = body
    row_for(exc)  # never raises
    failure = translate(exc, "m", lambda t: t.replace(KEY, "***"), lambda: "set the key")
    assert failure.kind and failure.message
    assert KEY not in failure.message + failure.detail


def test_a_pydantic_validation_error_of_the_options_is_the_settings_fault():
    llm = pytest.importorskip("llm")
    try:
        llm.get_model("echo").Options(temperature="hot")
    except Exception as exc:
        failure = translate(exc, "echo", lambda t: t, lambda: "")
    assert failure.kind == "executor_error"  # was invalid_output: "not a valid step"
    assert "executor.options" in failure.message
