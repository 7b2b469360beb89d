"""The real HTTP path: an OpenAI-compatible server on 127.0.0.1, configured through
llm's own extra-openai-models.yaml in a temporary llm user directory."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "sk-test-SECRET-0123456789"


class FakeOpenAI:
    """Answers /v1/chat/completions from a script of (status, body, headers)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(
                    {
                        "path": self.path,
                        "body": body,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )
                status, payload, headers = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                data = json.dumps(payload).replace("{auth}", self.headers.get("authorization", "")).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def completion(message: dict, finish: str = "stop") -> tuple[int, dict, dict]:
    return (
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "test-model",
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        },
        {},
    )


def tool_call(name: str, arguments: dict) -> tuple[int, dict, dict]:
    return completion(
        {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ],
        },
        "tool_calls",
    )


def configure(llm_user_dir, port: int, with_key: bool = False) -> None:
    model = (
        f"- model_id: local-model\n  model_name: test-model\n"
        f"  api_base: http://127.0.0.1:{port}/v1\n  supports_tools: true\n"
    )
    if with_key:
        model += "  api_key_name: local\n"
        (llm_user_dir / "keys.json").write_text(json.dumps({"local": SECRET}))
    (llm_user_dir / "extra-openai-models.yaml").write_text(model)


@pytest.fixture
def server(llm_user_dir):
    with FakeOpenAI() as fake:
        configure(llm_user_dir, fake.port)
        yield fake


def worker(write, name="remote", **extra):
    write(
        name,
        context_sources=["tasks", "projects"],
        tool_categories=["productivity"],
        output_mode="task_comment",
        instructions="Find the blocker of the task.",
        executor={"name": "llm", "model": "local-model"},
        **extra,
    )


def test_tool_call_then_final_answer(server, workerctl_write_worker, workerctl_run, workerctl_cli):
    server.script = [
        tool_call("read_task", {"task_id": "T-1042"}),
        completion({"content": "Blocker: the glossary is in legal review."}),
    ]
    worker(workerctl_write_worker)
    run = workerctl_run("remote", record="T-1042")
    assert run.status == "completed", run.error
    assert run.output == "Blocker: the glossary is in legal review."
    first, second = (r["body"] for r in server.requests)
    system = first["messages"][0]
    assert system["role"] == "system" and "Find the blocker of the task." in system["content"]
    assert '"id": "T-1042"' in system["content"] and '"id": "P-7"' in system["content"]
    offered = {t["function"]["name"] for t in first["tools"]}
    assert offered == {
        "read_task",
        "list_project_tasks",
        "list_overdue_tasks",
        "add_task_comment",
    }  # exactly the productivity tools
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["tool_call_id"] == "call_1"
    assert "Translate product catalogue into German" in tool_messages[0]["content"]
    assert first["model"] == "test-model"
    it = run.iterations[0]
    assert it.usage["model"] == "local-model" and it.usage["input_tokens"] == 120
    assert it.usage["output_tokens"] == 30
    comments = json.loads(workerctl_cli("records", "show", "T-1042", "--json").output)["comments"]
    assert [c["text"] for c in comments if c["run_id"] == run.id] == [run.output]


def test_a_refused_tool_fails_the_run(server, workerctl_write_worker, workerctl_run):
    server.script = [
        tool_call("read_invoice", {"invoice_id": "INV-2031"}),
        completion({"content": "never reached"}),
    ]
    worker(workerctl_write_worker)
    run = workerctl_run("remote", record="T-1042")
    assert run.error.kind == "tool_not_allowed"
    assert len(server.requests) == 1


@pytest.mark.slow
def test_closed_port_is_provider_unavailable(llm_user_dir, workerctl_write_worker, workerctl_run):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    configure(llm_user_dir, port)
    worker(workerctl_write_worker)
    run = workerctl_run("remote", record="T-1042")
    assert run.error.kind == "provider_unavailable"
    assert "cannot connect" in run.error.message and str(port) in run.error.message


def test_401_names_how_to_set_the_key_and_keeps_it_out_of_history(
    llm_user_dir, workerctl_workspace, workerctl_write_worker, workerctl_run
):
    with FakeOpenAI() as fake:
        configure(llm_user_dir, fake.port, with_key=True)
        fake.script = [
            (
                401,
                {"error": {"message": "Incorrect API key provided: {auth}", "type": "invalid_request_error"}},
                {},
            )
        ]
        worker(workerctl_write_worker)
        run = workerctl_run("remote", record="T-1042")
    assert fake.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert run.error.kind == "provider_auth_failed"
    assert "HTTP 401" in run.error.message and "llm keys set local" in run.error.message
    for path in workerctl_workspace.state_dir.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
            assert "Bearer" not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_429_gives_the_retry_time(server, workerctl_write_worker, workerctl_run):
    server.script = [(429, {"error": {"message": "slow down"}}, {"retry-after": "1"})]
    worker(workerctl_write_worker)
    run = workerctl_run("remote", record="T-1042")
    assert run.error.kind == "rate_limited"
    assert "HTTP 429" in run.error.message and "retry after 1 s" in run.error.message
    assert len(server.requests) == 3  # the client's own retries happened first


@pytest.mark.slow
def test_500_after_the_clients_retries(server, workerctl_write_worker, workerctl_run):
    server.script = [(500, {"error": {"message": "boom"}}, {})]
    worker(workerctl_write_worker)
    run = workerctl_run("remote", record="T-1042")
    assert run.error.kind == "provider_unavailable"
    assert "HTTP 500" in run.error.message and "after the client's retries" in run.error.message
    assert len(server.requests) == 3


def test_malformed_reply_is_invalid_output(server, workerctl_write_worker, workerctl_run):
    server.script = [
        completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "read_task", "arguments": "{not json"},
                    }
                ],
            }
        )
    ]
    worker(workerctl_write_worker)
    run = workerctl_run("remote", record="T-1042")
    assert run.error.kind == "invalid_output", run.error


def test_tokens_add_up_and_cost_is_an_estimate_from_the_price_table(
    server, workerctl_workspace, workerctl_write_worker, workerctl_run, workerctl_cli
):
    worker(workerctl_write_worker)
    server.script = [
        tool_call("read_task", {"task_id": "T-1042"}),
        completion({"content": "Blocker: the glossary."}),
    ]
    unpriced = workerctl_run("remote", record="T-1042")
    assert unpriced.usage == {
        "input_tokens": 240,
        "output_tokens": 60,
        "models": {"local-model": {"input_tokens": 240, "output_tokens": 60}},
    }
    assert unpriced.cost is None  # no price table: no cost, not a made-up one
    (workerctl_workspace.root / "prices.yaml").write_text(
        "version: 2026-11-01 list prices\ncurrency: USD\n"
        "models:\n  local-model: {input: 2.50, output: 10.00}\n"
    )
    server.script = [tool_call("read_task", {"task_id": "T-1043"}), completion({"content": "Blocker: VAT."})]
    priced = workerctl_run("remote", record="T-1043")
    assert priced.cost == {
        "estimate": True,
        "amount": 0.0012,
        "currency": "USD",
        "price_table": "2026-11-01 list prices",
        "unpriced_models": [],
    }
    card = workerctl_cli("run", "inspect", priced.id).output
    assert (
        "240 input + 60 output tokens; estimated cost 0.0012 USD (price table 2026-11-01 list prices)"
    ) in card
    by_model = json.loads(workerctl_cli("runs", "stats", "--by", "model", "--json").output)
    assert by_model["local-model"]["input_tokens"] == 480
    assert by_model["local-model"]["output_tokens"] == 120
    assert by_model["local-model"]["estimated_cost"] == {"USD": 0.0012}
    assert by_model["local-model"]["runs_priced"] == 1
    by_day = json.loads(workerctl_cli("runs", "stats", "--by", "day", "--json").output)
    assert list(by_day) == [priced.created[:10]] and by_day[priced.created[:10]]["runs"] == 2
    text = workerctl_cli("runs", "stats", "--by", "worker").output
    assert "tokens 600 (480 in, 120 out); est. cost ~0.0012 USD (1 priced)" in text
    rows = json.loads(workerctl_cli("runs", "list", "--json", "id,model,cost,currency").output)
    assert rows[0] == {"id": priced.id, "model": "local-model", "cost": 0.0012, "currency": "USD"}


def test_a_broken_price_table_does_not_fail_the_run(
    server, workerctl_workspace, workerctl_write_worker, workerctl_run
):
    worker(workerctl_write_worker)
    (workerctl_workspace.root / "prices.yaml").write_text("currency: USD\n")
    server.script = [completion({"content": "Done."})]
    run = workerctl_run("remote", record="T-1042")
    assert run.status == "completed"
    assert "version: missing" in run.cost["error"] and run.cost["amount"] is None
