"""A local Roundup tracker on 127.0.0.1: for the tests, the demo and the benchmark.

``python -m workerctl_roundup.local DIR`` makes a classic tracker (sqlite) in
DIR with sample issues (once), starts ``roundup-server`` on a free port and
prints its URL; Ctrl-C stops it (``--detach`` leaves it running, ``--stop``
ends it).
Needs the ``roundup`` package (``pip install roundup``).

As root, roundup-server refuses to start unless told which user to become
(``-u``): we pass the current user, so it runs as whoever started it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ADMIN = "admin"
TRACKER = "tracker"  # the path part of the URL: http://127.0.0.1:PORT/tracker/


# a role that may read everything over REST and change nothing (for permission tests)
VIEWER_ROLE = """

db.security.addRole(name="Viewer", description="reads issues and messages, changes nothing")
for _perm in ("Web Access", "Rest Access"):
    db.security.addPermissionToRole("Viewer", _perm)
for _cl in ("issue", "msg", "file", "status", "priority", "keyword", "user"):
    db.security.addPermissionToRole("Viewer", "View", _cl)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(home: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "roundup.scripts.roundup_admin", "-i", str(home), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 or "Error" in done.stdout:
        raise RuntimeError(f"roundup-admin {args[0]} failed: {(done.stdout + done.stderr).strip()[-500:]}")


def make_tracker(
    home: Path,
    port: int,
    *,
    password: str,
    rate_limit: tuple[int, int] | None = None,
    failed_login_limit: int = 4,
    rounds: int = 1000,
) -> str:
    """A classic tracker (sqlite) in ``home`` served at http://127.0.0.1:PORT/tracker/;
    returns that URL. ``rate_limit``: (calls, seconds) for the REST API's own limit.

    ``rounds``: PBKDF2 rounds for stored passwords. Roundup checks the password of
    every REST request (basic auth, no session), and its default of 250,000 rounds
    costs about 0.6 s of CPU per request; a throw-away local tracker uses 1,000."""
    url = f"http://127.0.0.1:{port}/{TRACKER}/"
    home.parent.mkdir(parents=True, exist_ok=True)
    settings = [
        f"tracker_web={url}",
        "mail_domain=localhost",
        "mail_host=localhost",
        "mail_debug=mail.log",  # nosy mail goes to a file, never to a server
    ]
    _admin(home, "install", "classic", "sqlite", ",".join(settings))
    config = home / "config.ini"
    text = config.read_text()
    calls, seconds = rate_limit or (0, 3600)
    text = text.replace("\napi_calls_per_interval = 0\n", f"\napi_calls_per_interval = {calls}\n")
    text = text.replace("\napi_interval_in_sec = 3600\n", f"\napi_interval_in_sec = {seconds}\n")
    text = text.replace(
        "\napi_failed_login_limit = 4\n", f"\napi_failed_login_limit = {failed_login_limit}\n"
    )
    text = text.replace(
        "\npassword_pbkdf2_default_rounds = 250000\n", f"\npassword_pbkdf2_default_rounds = {rounds}\n"
    )
    config.write_text(text)
    with open(home / "schema.py", "a") as schema:
        schema.write(VIEWER_ROLE)
    _admin(home, "initialise", password)
    return url


def seed(home: Path, count: int, *, users: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """Create ``count`` issues (and ``users``: name -> (password, roles)); returns the
    designators. Goes through Roundup's own database API, as roundup-admin does."""
    sys_path = list(sys.path)
    try:
        import roundup.instance

        tracker = roundup.instance.open(str(home))
        db = tracker.open(ADMIN)
        try:
            for name, (password, roles) in (users or {}).items():
                from roundup.password import Password

                db.user.create(username=name, password=Password(password), roles=roles)
            statuses = ["unread", "chatting", "in-progress", "testing", "resolved"]
            priorities = ["critical", "urgent", "bug", "feature", "wish"]
            keywords = [db.keyword.create(name=n) for n in ("ui", "backend", "stale")]
            ids = []
            for n in range(1, count + 1):
                ids.append(
                    "issue"
                    + db.issue.create(
                        title=f"Sample issue {n}",
                        status=db.status.lookup(statuses[n % len(statuses)]),
                        priority=db.priority.lookup(priorities[n % len(priorities)]),
                        keyword=[keywords[n % len(keywords)]],
                    )
                )
            db.commit()
            return ids
        finally:
            db.close()
    finally:
        sys.path[:] = sys_path


@dataclass
class Server:
    """A running roundup-server; ``stop()`` ends it (and only it)."""

    url: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(home: Path, port: int, *, log: Path | None = None, mode: str = "none") -> Server:
    """Start roundup-server for ``home`` on 127.0.0.1:``port``; wait until it answers.
    ``mode``: its multiprocess mode (none: one request at a time; fork; thread)."""
    args = [sys.executable, "-m", "roundup.scripts.roundup_server", "-p", str(port), "-n", "127.0.0.1"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        args += ["-u", "0"]  # as root it must be told whom to run as: stay who we are
    args += ["-t", mode, f"{TRACKER}={home}"]
    out = open(log or home / "server.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    url = f"http://127.0.0.1:{port}/{TRACKER}/"
    server = Server(url, port, home, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"roundup-server exited ({process.returncode}); see {log or home / 'server.log'}"
            )
        try:
            urllib.request.urlopen(url + "rest/", timeout=2).close()
            return server
        except urllib.error.HTTPError:
            return server  # it answers (anonymous may be refused)
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("roundup-server did not answer within 30s")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="A local Roundup tracker with sample issues, for workerctl")
    parser.add_argument("home", type=Path, help="folder for the tracker (made if new)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--issues", type=int, default=12, help="sample issues in a new tracker")
    parser.add_argument("--password", default="admin-demo", help="the admin password of a new tracker")
    parser.add_argument(
        "--detach", action="store_true", help="leave it running; its pid goes to HOME/server.pid"
    )
    parser.add_argument("--stop", action="store_true", help="stop the server --detach started")
    args = parser.parse_args(argv)
    home: Path = args.home.resolve()
    pidfile = home / "server.pid"
    if args.stop:
        if pidfile.exists():
            import signal

            pid = int(pidfile.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            pidfile.unlink()
            print(f"stopped roundup-server (pid {pid})")
        return 0
    port = args.port or free_port()
    if not (home / "config.ini").exists():
        make_tracker(home, port, password=args.password)
        seed(home, args.issues)
    else:  # an existing tracker keeps its address
        for line in (home / "config.ini").read_text().splitlines():
            if line.startswith("web = http://127.0.0.1:"):
                port = int(line.split(":")[2].split("/")[0])
    server = start_server(home, port)
    print(server.url)
    sys.stdout.flush()
    if args.detach:
        pidfile.write_text(str(server.process.pid))
        return 0
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
