"""Helpers for tests: real subprocesses of workerctl, worker files."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from workerctl.testing import wait_for

__all__ = [
    "ROOT",
    "ChatServer",
    "install_plugin",
    "make_worker",
    "plugin_env",
    "run_workerctl",
    "signalled_at_write_point",
    "start_workerctl",
    "started_on",
    "wait_for",
    "write_worker",
]

ROOT = Path(__file__).resolve().parent.parent


def run_workerctl(
    *args: str, workspace=None, timeout: float = 60, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """workerctl as a real subprocess (for concurrency, signals, detaching): forked
    from a process that has already imported workerctl (``tests/forkserver.py``), or,
    where a fork cannot be that process (``needs_exec``), a new interpreter."""
    argv = ["-w", str(workspace.root)] if workspace is not None else []
    argv += list(args)
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    if not needs_exec(full_env, kwargs):
        return _forked(argv, full_env, timeout, **kwargs)
    return subprocess.run(
        [sys.executable, "-m", "workerctl", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        **kwargs,
    )


def needs_exec(env: dict, options: dict) -> bool:
    """A fork of the server has the server's interpreter: its path, its locale, the
    values modules read as they were imported (workerctl reads none but the fault
    injector's; llm reads LLM_LOAD_PLUGINS). Anything that changes those needs a
    new interpreter, as does WORKERCTL_TEST_EXEC=1 (every process the slow way)."""
    if env.get("WORKERCTL_TEST_EXEC") or set(options) - {"cwd", "input"}:
        return True
    base = _SERVER_ENV
    for key in set(env) | set(base):
        if env.get(key) == base.get(key):
            continue
        if key.startswith(("PYTHON", "LC_", "LANG")) or key == "LLM_LOAD_PLUGINS":
            return True
    return False


_server: dict[str, Any] = {}
forked_cpu = [0.0]  # CPU seconds of the forked processes, for a look at the suite's cost
# the server's environment: this process's as it started, without workerctl's knobs
_SERVER_ENV = {k: v for k, v in os.environ.items() if not k.startswith("WORKERCTL_")} | {"NO_COLOR": "1"}


def _socket() -> str:
    """The fork server of this test process, started on first use."""
    if _server and _server["proc"].poll() is None:
        return _server["path"]
    import tempfile

    folder = tempfile.mkdtemp(prefix="wfork-")
    atexit.register(shutil.rmtree, folder, True)  # the socket's folder goes with this process
    path = os.path.join(folder, "s")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("forkserver.py")), path],
        stdin=subprocess.PIPE,  # closed when this process ends: the server ends too
        env=_SERVER_ENV,
        cwd=ROOT,
    )
    _server.update(proc=proc, path=path)
    wait_for(lambda: os.path.exists(path) or proc.poll() is not None, timeout=60)
    assert proc.poll() is None, "the fork server did not start"
    return path


def _forked(argv: list[str], env: dict, timeout: float, cwd=None, input=None) -> subprocess.CompletedProcess:
    child = ForkedProcess(argv, env, cwd=cwd, input=input)
    out, err = child.communicate(timeout)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


class ForkedProcess:
    """A ``workerctl`` process forked by the fork server, running while the test goes
    on: what ``subprocess.Popen`` gives (``pid``, ``poll``, ``wait``, ``send_signal``,
    ``communicate``, ``returncode``), for a test that signals a command mid-way or runs
    several at once. Its output goes to temporary files, read when it has ended."""

    def __init__(self, argv: list[str], env: dict, cwd=None, input=None) -> None:
        import socket
        import tempfile

        self.args = [sys.executable, "-m", "workerctl", *argv]
        self.returncode: int | None = None
        self._files = [tempfile.TemporaryFile() for _ in range(3)]  # noqa: SIM115 (closed by communicate)
        stdin = self._files[0]
        if input is not None:
            stdin.write(input.encode() if isinstance(input, str) else input)
            stdin.seek(0)
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.connect(_socket())
        request = {"argv": argv, "env": env, "cwd": str(cwd or os.getcwd())}
        files = [f.fileno() for f in self._files]
        socket.send_fds(self._conn, [json.dumps(request).encode() + b"\n"], files)
        self._buffer = b""
        self.pid: int = json.loads(self._line(None) or b"")["pid"]

    def poll(self) -> int | None:
        if self.returncode is None:
            self._end(self._line(0))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._end(self._line(timeout))
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end (SIGKILL and ``TimeoutExpired`` after ``timeout``), then
        its standard output and error."""
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait(10)
            raise
        out, err = (self._text(f) for f in self._files[1:])
        for f in self._files:
            f.close()
        return out, err

    def _line(self, timeout: float | None) -> bytes | None:
        """The server's next answer line; None if none came within ``timeout``."""
        import select

        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._conn], [], [], left)[0]:
                return None
            chunk = self._conn.recv(4096)
            assert chunk, "the fork server ended before its child"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _end(self, line: bytes | None) -> None:
        if line is None:
            return
        answer = json.loads(line)
        forked_cpu[0] += answer["cpu"]
        self.returncode = answer["returncode"]
        self._conn.close()

    @staticmethod
    def _text(f: Any) -> str:
        f.seek(0)
        return f.read().decode("utf-8", errors="replace").replace("\r\n", "\n")


def started_on(workspace, *tasks: str, worker: str = "overdue-task-review") -> None:
    """One run of ``worker`` on each task, each a real ``run start`` that must succeed."""
    for task in tasks:
        done = run_workerctl("run", "start", worker, "--task", task, workspace=workspace)
        assert done.returncode == 0, done.stderr


def start_workerctl(*args: str, workspace=None, env: dict | None = None, cwd=None) -> ForkedProcess:
    """``workerctl ARGS`` started and left running (forked: ``ForkedProcess``)."""
    argv = ["-w", str(workspace.root)] if workspace is not None else []
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    assert not needs_exec(full_env, {}), "this needs a new interpreter: use subprocess.Popen"
    return ForkedProcess([*argv, *args], full_env, cwd=cwd)


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def signalled_at_write_point(
    root: Path, argv: list[str], point: int, signum: int, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """``workerctl -w ROOT ARGV`` as a real process, stopped just before its write point
    ``point`` (``WORKERCTL_TEST_FAULT=stop:N``), sent ``signum``, then continued: the
    signal is delivered at exactly that point. Returns the finished process."""
    from workerctl.storage.faults import FAULT_ENV

    env = {**os.environ, FAULT_ENV: f"stop:{point}", "NO_COLOR": "1"}
    proc: Any
    if needs_exec(env, popen):
        proc = subprocess.Popen(
            [sys.executable, "-m", "workerctl", "-w", str(root), *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )
    else:
        proc = ForkedProcess(["-w", str(root), *argv], env, **popen)
    deadline = time.monotonic() + 60
    while not _stopped(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signum)  # delivered once it runs again, at that write point
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


def install_plugin(
    site: Path, name: str, source: str, version: str = "1.2.3", commands: dict[str, str] | None = None
) -> None:
    """A plugin installed as pip would, without pip: module ``name`` in ``site`` and its
    ``NAME-VERSION.dist-info`` declaring it in the ``workerctl`` entry-point group (and
    ``commands``, command name → ``module:attribute``, in ``workerctl.commands``)."""
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = f"[workerctl]\n{name} = {name}\n"
    if commands:
        groups += "[workerctl.commands]\n" + "".join(f"{c} = {ref}\n" for c, ref in commands.items())
    (info / "entry_points.txt").write_text(groups)


def plugin_env(site: Path) -> dict:
    """The environment that makes the plugins installed in ``site`` importable."""
    return {"PYTHONPATH": str(site)}


def one_plugin_env(folder: Path, name: str, source: str, version: str = "1.0") -> dict:
    """The environment of a site in ``folder`` holding the one plugin ``name``."""
    site = folder / "site"
    site.mkdir()
    install_plugin(site, name, source, version=version)
    return plugin_env(site)


def write_worker(workspace, name: str, body: str) -> Path:
    path = workspace.workers_dir / f"{name}.yaml"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def make_worker(
    workspace,
    name: str,
    *,
    status: str = "active",
    sources=("tasks",),
    categories=("productivity",),
    output_mode: str = "task_comment",
    max_iterations: int = 5,
    timeout: float = 60,
    executor: str = "{name: echo}",
    extra: str = "",
) -> Path:
    """A valid worker file with the given fields (executor given as YAML flow text)."""
    body = (
        f"name: {name}\n"
        f"status: {status}\n"
        "instructions: |\n  Summarise the task and suggest a next step.\n"
        f"context_sources: [{', '.join(sources)}]\n"
        f"tool_categories: [{', '.join(categories)}]\n"
        f"output_mode: {output_mode}\n"
        f"max_iterations: {max_iterations}\n"
        f"timeout: {timeout}\n"
        f"executor: {executor}\n"
        f"{extra}"
    )
    path = workspace.workers_dir / f"{name}.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def drive_terminal(
    args: list[str],
    answers: list[tuple[bytes, bytes]],
    timeout: float = 30,
    workspace=None,
    no_color: bool = True,
) -> tuple[int, str]:
    """Run workerctl on a real pseudo-terminal, typing each answer when its prompt shows.

    Returns the exit code and everything the terminal showed.
    """
    import pty
    import select

    argv = [sys.executable, "-m", "workerctl"]
    if workspace is not None:
        argv += ["-w", str(workspace.root)]
    main, replica = pty.openpty()
    proc = subprocess.Popen(
        [*argv, *args],
        stdin=replica,
        stdout=replica,
        stderr=replica,
        env=(
            {**os.environ, "NO_COLOR": "1"}
            if no_color
            else {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        ),
        close_fds=True,
    )
    os.close(replica)
    screen = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        if pending and pending[0][0] in screen:
            os.write(main, pending.pop(0)[1])
        if proc.poll() is not None and not ready:
            break
    proc.wait(timeout=timeout)
    os.close(main)
    return proc.returncode, screen.decode(errors="replace")


def record_missing_run(workspace, worker: str = "overdue-task-review"):
    """A run whose record was deleted after it was asked for (a detached run waiting
    while someone deletes the task): the only way a run can now fail record_missing,
    since an unknown record is refused before a run exists."""
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.plugins.manager import get_registry
    from workerctl.records.builtin_store import BuiltinRecordStore
    from workerctl.runs.model import QUEUED

    BuiltinRecordStore(workspace).import_records(
        [{"id": "T-4040", "type": "task", "title": "Deleted soon"}], "test"
    )
    engine = Engine(workspace, get_registry())
    _, run = engine.prepare(worker, StartOptions(record_id="T-4040"))
    run.move(QUEUED)
    engine.history.create(run)
    BuiltinRecordStore(workspace).delete("T-4040")
    return Engine(workspace, get_registry()).execute(run.id)


class ChatServer:
    """/v1/chat/completions on 127.0.0.1, answering from a script of messages."""

    def __init__(self, script: list[dict], delay: float = 0) -> None:
        self.script = list(script)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(delay)
                message = dict(outer.script.pop(0) if len(outer.script) > 1 else outer.script[0])
                # a script message may say how it ended ("length": cut at the token limit)
                finish = message.pop("finish_reason", None) or (
                    "tool_calls" if message.get("tool_calls") else "stop"
                )
                data = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 1,
                        "model": "test-model",
                        "choices": [
                            {"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
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

    @staticmethod
    def factory(tmp_path, monkeypatch):
        """serve(script, delay=0): a server that llm's model ``local-model`` talks to,
        configured in a temporary llm user directory."""
        folder = tmp_path / "llm-user"
        folder.mkdir()
        monkeypatch.setenv("LLM_USER_PATH", str(folder))
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)

        def serve(script, delay: float = 0):
            server = ChatServer(script, delay)
            (folder / "extra-openai-models.yaml").write_text(
                f"- model_id: local-model\n  model_name: test-model\n"
                f"  api_base: http://127.0.0.1:{server.port}/v1\n  supports_tools: true\n"
            )
            return server

        return serve


def search_table(history: Any) -> dict[str, tuple]:
    """Every row of the search index: its slot, fields, stamp and the digest of its words."""
    import sqlite3

    import workerctl.history.search_index as search_index

    con = sqlite3.connect(search_index.index_path(history))
    try:
        rows = con.execute(
            "SELECT id, shard, doc, worker, status, created, record_id, error_kind, stamp, digest,"
            " t IS NULL FROM runs"
        ).fetchall()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    assert len({row[0] for row in rows}) == len(rows), "one row per run file"
    meta.pop("boot", None)
    return {"meta": tuple(sorted(meta.items())), **{row[0]: row[1:] for row in rows}}


def flock_free(path) -> bool:
    """Whether another open file of ``path`` (what another process would use) could take
    its flock now."""
    import fcntl

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
