"""The kit for record sources on a server (workerctl.api), against a real HTTP server.

The server is a small GitHub-style issues API on 127.0.0.1 (stdlib http.server) with
faults it can be told to make: 5xx, 429 with Retry-After, and a write whose answer it
never sends. The source under test is the one docs/plugins.md walks through, taken
from the doc itself, so the doc's code is what is tested.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerctl.api import (
    SOURCE_AUTH_FAILED,
    SOURCE_UNAVAILABLE,
    HttpSession,
    RecordChanged,
    RecordSourceError,
    ResponseLost,
    SourceConfig,
    check_url,
    credentials_for,
    describe_changes,
    write_once,
)
from workerctl.errors import ConfigError
from workerctl.testing import check_record_source

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-3f9a-never-printed"


class GitHubish:
    """The server's state and the faults it will make next (a list of actions)."""

    def __init__(self) -> None:
        self.issues = {
            n: {"number": n, "title": f"Issue {n}", "state": "open", "labels": [], "assignee": None,
                "updated_at": "2026-12-01T00:00:00Z"}
            for n in range(1, 131)
        }  # fmt: skip
        self.comments: dict[int, list[dict]] = {}
        self.version = {n: 1 for n in self.issues}
        self.faults: list[str] = []  # "503", "429", "drop" (write, then no answer)
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def next_fault(self) -> str | None:
        with self.lock:
            return self.faults.pop(0) if self.faults else None


def _handler(state: GitHubish) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            state.requests.append(f"{method} {self.path}")
            expected = "Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self._send(401, {"message": "Bad credentials"})
            fault = state.next_fault()
            if fault == "503":
                return self._send(503, {"message": "busy"})
            if fault == "429":
                return self._send(429, {"message": "slow down"}, {"Retry-After": "7"})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path, _, query = self.path.partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            if path == "/repos/o/r":
                return self._send(200, {"full_name": "o/r"})
            if path == "/repos/o/r/issues":
                page, per = int(params.get("page", 1)), int(params.get("per_page", 30))
                items = list(state.issues.values())[(page - 1) * per : page * per]
                return self._send(200, items)
            match = re.fullmatch(r"/repos/o/r/issues/(\d+)(/comments)?", path)
            if not match or int(match[1]) not in state.issues:
                return self._send(404, {"message": "Not Found"})
            n = int(match[1])
            etag = f'"v{state.version[n]}"'
            if match[2] and method == "GET":
                return self._send(200, state.comments.get(n, []))
            if match[2] and method == "POST":
                with state.lock:
                    comments = state.comments.setdefault(n, [])
                    made = {"id": 1000 + sum(map(len, state.comments.values())), "body": body["body"],
                            "user": {"login": "bot"}, "created_at": "2026-12-03T10:00:00Z"}  # fmt: skip
                    comments.append(made)
                if fault == "drop":  # written; the answer never leaves
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                return self._send(201, made)
            if method == "PATCH":
                if self.headers.get("If-Match") != etag:
                    return self._send(412, {"message": "Precondition Failed"})
                state.issues[n].update(body)
                state.version[n] += 1
                return self._send(200, state.issues[n], {"ETag": f'"v{state.version[n]}"'})
            return self._send(200, state.issues[n], {"ETag": etag})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@pytest.fixture
def server():
    state = GitHubish()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"  # type: ignore[attr-defined]
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def creds(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKERCTL_GHISSUES_USER", "bot")
    monkeypatch.setenv("WORKERCTL_GHISSUES_PASSWORD", TOKEN)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))


def doc_source():
    """The GitHub-style source exactly as docs/plugins.md prints it."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    code = re.search(r'```python\n("""Issues of a GitHub-style.*?)```', text, re.S)[1]
    assert len(code.splitlines()) < 150
    namespace: dict = {"__name__": "ghissues_doc"}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    return namespace["GhIssues"]


def _source(server):
    return doc_source()(None, SourceConfig("gh", "ghissues", server.url, {"repo": "o/r"}))


def _session(server, **kw) -> tuple[HttpSession, list[float]]:
    waits: list[float] = []
    session = HttpSession(
        server.url,
        name="t",
        credentials=credentials_for(server.url, "WORKERCTL_GHISSUES"),
        sleep=waits.append,
        **kw,
    )
    return session, waits


def test_the_doc_source_keeps_the_record_source_contract(server, creds):
    check_record_source(_source(server), record_id="gh-3", missing_id="gh-999999")
    assert len(_source(server).list("ghissue")) == 130  # two pages


def test_a_lost_answer_is_settled_by_looking_not_by_writing_again(server, creds):
    source = _source(server)
    server.faults = ["drop"]
    comment, created = source.add_comment("gh-5", "hello", author="w", run_id="r1", key="r1:output")
    assert created and comment.key == "r1:output"
    assert len(server.comments[5]) == 1  # written once, though the answer was lost
    again, created_again = source.add_comment("gh-5", "hello", author="w", run_id="r1", key="r1:output")
    assert not created_again and again.id == comment.id and len(server.comments[5]) == 1


def test_5xx_on_a_read_is_retried_with_backoff_and_on_a_write_is_a_lost_answer(server, creds):
    session, waits = _session(server)
    server.faults = ["503", "503"]
    assert session.get("repos/o/r/issues/1").status == 200
    assert session.stats.retries == 2 and len(waits) == 2 and waits[1] > waits[0] * 1.0 - 1e-9
    server.faults = ["503"]
    with pytest.raises(ResponseLost):
        session.request("POST", "repos/o/r/issues/1/comments", body={"body": "x"})
    server.faults = ["503"] * 10
    with pytest.raises(RecordSourceError) as down:
        session.get("repos/o/r/issues/1")
    assert down.value.kind == SOURCE_UNAVAILABLE and "tried 5 times" in down.value.message


def test_429_waits_as_retry_after_says_within_max_wait(server, creds):
    session, waits = _session(server, max_wait=10)
    server.faults = ["429"]
    assert session.request("POST", "repos/o/r/issues/2/comments", body={"body": "x"}).status == 201
    assert waits == [7.0]  # Retry-After, and the POST was sent again: a 429 wrote nothing
    server.faults = ["429", "429"]
    with pytest.raises(RecordSourceError) as limited:
        session.get("repos/o/r/issues/2")
    assert limited.value.status == 429 and "wait 7s more" in limited.value.message


def test_refusals_map_to_kinds_with_fixes(server, creds, monkeypatch):
    session, _ = _session(server)
    with pytest.raises(RecordSourceError) as missing:
        session.get("repos/o/r/issues/99999")
    assert missing.value.kind == "record_missing" and missing.value.exit_code == 3
    with pytest.raises(RecordChanged):
        session.request("PATCH", "repos/o/r/issues/1", body={"state": "closed"}, if_match='"v0"')
    answer = session.get("repos/o/r/issues/1")
    assert (
        session.request("PATCH", "repos/o/r/issues/1", body={"state": "closed"}, if_match=answer.etag).status
        == 200
    )
    monkeypatch.setenv("WORKERCTL_GHISSUES_PASSWORD", "wrong")
    bad, _ = _session(server)
    with pytest.raises(RecordSourceError) as refused:
        bad.get("repos/o/r")
    assert refused.value.kind == SOURCE_AUTH_FAILED and refused.value.exit_code == 2
    assert "wrong" not in str(refused.value) and TOKEN not in str(refused.value)


def test_offline_is_retried_then_one_error_naming_the_fix():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    session = HttpSession(f"http://127.0.0.1:{port}/", name="t", retries=2, sleep=waits.append)
    with pytest.raises(RecordSourceError) as down:
        session.request("POST", "x", body={})  # refused: nothing was sent, so retrying is safe
    assert down.value.kind == SOURCE_UNAVAILABLE and "cannot connect" in down.value.message
    assert "check that the server at" in (down.value.hint or "") and len(waits) == 2


def test_write_once_writes_again_only_when_the_server_shows_it_was_not_written():
    held: list[str] = []
    attempts = []

    def write() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ResponseLost("lost before the server wrote")
        held.append("w")
        return "w"

    assert write_once(lambda: held[0] if held else None, write) == ("w", True)
    assert held == ["w"] and len(attempts) == 2
    assert write_once(lambda: held[0] if held else None, write) == ("w", False)


def test_credentials_from_netrc_and_never_in_a_url(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine tracker.example login alice password pw-1\n")
    netrc.chmod(0o600)
    creds = credentials_for("https://tracker.example/x/", "WORKERCTL_NONE", {"NETRC": str(netrc)})
    assert creds is not None and creds.user == "alice" and "pw-1" not in repr(creds)
    assert credentials_for("https://other.example/", "WORKERCTL_NONE", {"NETRC": str(netrc)}) is None
    assert check_url("http://h:1/t", "where") == "http://h:1/t/"
    for bad in ("http://[::1", "http://h:port/", "ftp://h/", "http:///path", ""):
        with pytest.raises(ConfigError):
            check_url(bad, "workerctl.yaml")


@settings(max_examples=40, deadline=None)
@given(
    user=st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=12),
    password=st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=4, max_size=30),
)
def test_a_url_with_credentials_is_refused_without_echoing_them(user, password):
    from urllib.parse import quote

    said = []
    for secret in (password, "~other~"):  # the message cannot depend on what is not echoed
        with pytest.raises(ConfigError) as refused:
            check_url(
                f"https://{quote(user, safe='')}:{quote(secret, safe='')}@h.example/t/", "workerctl.yaml"
            )
        said.append(str(refused.value))
    # compared, not searched: a password such as "read" is a word of the message itself
    assert said[0] == said[1] and "remove it from the URL" in said[0]


def test_describe_changes_says_what_differs():
    said = describe_changes({"state": "open", "labels": []}, {"state": "closed", "labels": ["bug"]})
    assert said == 'labels: [] → ["bug"]; state: open → closed'


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.lists(st.sampled_from(["503", "429", "drop"]), max_size=6), text=st.text(max_size=40))
def test_any_sequence_of_faults_leaves_one_comment_per_key(server, creds, faults, text):
    """Generated fault sequences on the requests of one keyed write (a 5xx, a 429, an
    answer lost after the write): the write ends with exactly one comment under its key,
    or fails with an error of a known kind and never two comments."""
    source = _source(server)
    source.session.sleep = lambda seconds: None  # waits are recorded, not slept
    key = f"k{len(server.requests)}:{text}"
    server.faults = list(faults)
    try:
        comment, _ = source.add_comment("gh-7", text or "x", author="w", run_id="r1", key=key)
    except RecordSourceError as failed:
        assert failed.kind == SOURCE_UNAVAILABLE
    else:
        assert comment.key == key
    server.faults = []
    assert len([c for c in source.comments("gh-7") if c.key == key]) <= 1
    source.add_comment("gh-7", text or "x", author="w", run_id="r1", key=key)  # a retry of the run
    assert len([c for c in source.comments("gh-7") if c.key == key]) == 1
