"""A real roundup-server on 127.0.0.1 for the plugin's tests, and a real fault in front of it.

No mock of Roundup: a classic tracker (sqlite) is made with roundup-admin in a
temporary folder and served by roundup-server on a free port. ``FaultProxy`` is a
small TCP proxy that forwards a request to that server, waits for the server's
whole answer (so the write happened), and then drops the connection instead of
relaying it: the client meets exactly what a server dying before its answer
looks like.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from workerctl_roundup.local import ADMIN, free_port, make_tracker, seed, start_server

PASSWORD = "s3cret-Pa55word-never-shown"
SEEDED = 60  # issues in the shared tracker: more than a 50-issue batch


@dataclass
class Tracker:
    home: Path
    url: str
    port: int
    server: object
    issues: list[str]
    password: str = PASSWORD

    def rest(
        self, method: str, path: str, body: object = None, *, etag: str | None = None, patient: bool = True
    ) -> tuple[dict, str | None]:
        """A second client (the admin, by hand): what another person does on the tracker."""
        origin = self.url.split("/tracker/")[0]
        headers = {
            "Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{self.password}".encode()).decode(),
            "X-Requested-With": "test",
            "Origin": origin,
            "Referer": self.url,
            "Content-Type": "application/json",
        }
        if etag:
            headers["If-Match"] = etag
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "rest/" + path, data=data, method=method, headers=headers)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return json.loads(answer.read()), answer.headers.get("ETag")
            except urllib.error.HTTPError as refused:
                if refused.code != 429 or not patient:
                    raise
                # at a few calls a second Roundup may say "Retry-After: 0"
                time.sleep(max(float(refused.headers.get("Retry-After") or 1), 0.1))
        raise AssertionError("still rate limited after 60 s")

    def new_issue(self, title: str = "A fresh issue", **props: object) -> str:
        data, _ = self.rest("POST", "data/issue", {"title": title, **props})
        return "issue" + str(data["data"]["id"])

    def change(self, issue: str, **props: object) -> None:
        number = issue.removeprefix("issue")
        _, etag = self.rest("GET", f"data/issue/{number}")
        self.rest("PATCH", f"data/issue/{number}", {"@op": "replace", **props}, etag=etag)

    def messages(self, issue: str) -> list[dict]:
        number = issue.removeprefix("issue")
        data, _ = self.rest("GET", f"data/issue/{number}?@fields=messages")
        ids = [m["id"] for m in data["data"]["attributes"]["messages"]]
        out = []
        for mid in ids:
            msg, _ = self.rest("GET", f"data/msg/{mid}?@verbose=3")
            out.append(msg["data"]["attributes"])
        return out


def _make(tmp: Path, issues: int, **options: object) -> Tracker:
    port = free_port()
    home = tmp / "tracker"
    url = make_tracker(home, port, password=PASSWORD, **options)  # type: ignore[arg-type]
    ids = seed(home, issues, users={"nobody": ("nobody-pw", ""), "viewer": ("viewer-pw", "Viewer")})
    server = start_server(home, port)
    return Tracker(home, url, port, server, ids)


@pytest.fixture(scope="session")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    made = _make(tmp_path_factory.mktemp("roundup"), SEEDED)
    yield made
    made.server.stop()  # type: ignore[attr-defined]


@pytest.fixture
def make_tracker_with(tmp_path: Path) -> Iterator[Callable[..., Tracker]]:
    """A tracker of one's own, e.g. with Roundup's REST rate limit on."""
    made: list[Tracker] = []

    def make(issues: int = 3, **options: object) -> Tracker:
        t = _make(tmp_path / f"t{len(made)}", issues, **options)
        made.append(t)
        return t

    yield make
    for t in made:
        t.server.stop()  # type: ignore[attr-defined]


@pytest.fixture
def roundup_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    monkeypatch.setenv("WORKERCTL_ROUNDUP_USER", ADMIN)
    monkeypatch.setenv("WORKERCTL_ROUNDUP_PASSWORD", PASSWORD)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("WORKERCTL_WORKSPACE", raising=False)
    return {
        "WORKERCTL_ROUNDUP_USER": ADMIN,
        "WORKERCTL_ROUNDUP_PASSWORD": PASSWORD,
        "NETRC": str(tmp_path / "no-netrc"),
    }


def configure(workspace_root: Path, url: str, **options: object) -> None:
    """Add a roundup source named ``bugs`` to the workspace's workerctl.yaml."""
    path = workspace_root / "workerctl.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data["record_sources"] = [{"name": "bugs", "kind": "roundup", "url": url, **options}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def write_worker(workspace_root: Path, name: str, script: list[dict], **fields: object) -> None:
    data = {
        "name": name,
        "status": "active",
        "instructions": "Review the issue.",
        "context_sources": ["issues"],
        "tool_categories": ["tracker"],
        "output_mode": "issue_message",
        "review_required": False,
        "executor": {"name": "echo", "script": script},
        **fields,
    }
    (workspace_root / "workers" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def ws(tmp_path: Path, tracker: Tracker, roundup_env: dict[str, str]) -> Path:
    """A fresh workspace whose record source ``bugs`` is the shared tracker."""
    root = tmp_path / "ws"
    done = workerctl("init", str(root), env=roundup_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    configure(root, tracker.url)
    return root


def workerctl(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI, as a separate process (forked as the main suite's are, when this
    runs from the repository's root: ``tests/helpers.py``)."""
    try:
        from helpers import run_workerctl
    except ImportError:  # this plugin's tests run on their own
        pass
    else:
        return run_workerctl(*args, env=env, cwd=cwd, timeout=600)
    full = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "workerctl", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=600,
    )


@dataclass
class FaultProxy:
    """127.0.0.1:port → the tracker. A request matching ``drop`` is forwarded, the
    server's whole answer is read (the write happened), and the client's
    connection is closed without it, ``times`` times; everything else passes."""

    target_port: int
    drop: Callable[[bytes], bool]
    times: int = 1
    port: int = 0
    dropped: list[bytes] = field(default_factory=list)
    _sock: socket.socket | None = None

    def start(self) -> FaultProxy:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            request = _read_request(client)
            if not request:
                return
            # a reverse proxy's rewrite: the tracker checks Host/Origin/Referer against its own address
            request = request.replace(
                f"127.0.0.1:{self.port}".encode(), f"127.0.0.1:{self.target_port}".encode()
            )
            with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                upstream.sendall(request)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            if self.times > 0 and self.drop(request):
                self.times -= 1
                self.dropped.append(request.split(b"\r\n", 1)[0])
                client.shutdown(socket.SHUT_RDWR)  # written on the server; the answer never arrives
                return
            client.sendall(answer)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    # one request per connection: the upstream closes after answering
    head = (
        b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:"))
        + b"\r\nConnection: close"
    )
    return head + b"\r\n\r\n" + body


@pytest.fixture
def fault_proxy(tracker: Tracker) -> Iterator[Callable[..., FaultProxy]]:
    made: list[FaultProxy] = []

    def make(drop: Callable[[bytes], bool], times: int = 1) -> FaultProxy:
        proxy = FaultProxy(tracker.port, drop, times).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()
