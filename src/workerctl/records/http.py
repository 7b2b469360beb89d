"""The kit for record sources that live on a server (an issue tracker, a CRM).

Every such source meets the same failures: the server is down, it answers 5xx
or 429, the credentials are wrong, a record changed since the run read it, the
answer to a write is lost after the server wrote. This module handles them
once, with the standard library only (``urllib``), so a source for another
tracker is its mapping of records and nothing else:

- ``HttpSession``: JSON over HTTP with retries and backoff for connection errors
  and 5xx, ``Retry-After`` and ``X-RateLimit-*`` honoured on 429, each failure
  turned into a ``RecordSourceError`` of a known kind whose hint names the fix;
- ``credentials_for``: user and password from the environment or ``~/.netrc``
  (never from a worker file; the password never appears in a message);
- ``write_once``: a write keyed so that a lost answer is settled by looking on
  the server, never by writing again;
- ``describe_changes``: what changed between two reads (for a refused update).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from workerctl.errors import EXIT_NOT_FOUND, EXIT_RUN_FAILED, EXIT_USAGE, WorkerctlError
from workerctl.jsonvalues import loads

# error kinds a record source's failure ends a run with (``ERROR_KINDS`` explains them)
SOURCE_UNAVAILABLE = "source_unavailable"  # offline, 5xx after retries, rate limit too long
SOURCE_AUTH_FAILED = "source_auth_failed"  # 401: no or wrong credentials
RECORD_ACCESS_DENIED = "record_access_denied"  # 403: the user may not do this
RECORD_MISSING = "record_missing"  # 404
RECORD_CHANGED = "record_changed"  # 412: changed since the run read it
_EXIT_BY_KIND = {
    SOURCE_AUTH_FAILED: EXIT_USAGE,
    RECORD_ACCESS_DENIED: EXIT_USAGE,
    RECORD_MISSING: EXIT_NOT_FOUND,
}

T = TypeVar("T")


class RecordSourceError(WorkerctlError):
    """A record source's server refused or failed a request, for a reason a person fixes.

    ``kind`` is one of the run error kinds above; ``hint`` names the fix. A run
    that meets one fails with that kind and the hint as its detail; a command
    prints it on one line (exit 3 for a missing record, 2 for credentials and
    permissions, 1 otherwise).
    """

    def __init__(
        self, kind: str, message: str, *, hint: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.status = status
        self.exit_code = _EXIT_BY_KIND.get(kind, EXIT_RUN_FAILED)
        # True when the write this error ended certainly did not happen: the server
        # answered with a refusal, or it failed before anything was sent (write_once's
        # first look). The engine then leaves no unknown write for a person to settle.
        self.nothing_written = status is not None


class ResponseLost(RecordSourceError):
    """A write was sent and its answer never came: it may or may not have happened.
    Settle it by looking on the server (``write_once`` does), never by writing again."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(SOURCE_UNAVAILABLE, message, hint=hint)
        self.nothing_written = False


class RecordChanged(RecordSourceError):
    """An update sent with ``If-Match`` found the record changed (412)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(RECORD_CHANGED, message, hint=hint, status=412)


@dataclass(frozen=True)
class Credentials:
    """A user and password for a source's server; the password never prints."""

    user: str
    password: str = field(repr=False)
    origin: str = ""  # where they came from, for messages: "$WORKERCTL_X_USER", "~/.netrc"

    def header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


def credentials_for(
    url: str, env_prefix: str, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials for ``url``: ``$<env_prefix>_USER`` and ``$<env_prefix>_PASSWORD``,
    else the ``~/.netrc`` entry for its host ($NETRC names another file), else None.

    Never from a worker file or from workerctl.yaml: those are shared and copied
    into run files. A URL holding credentials is refused by ``check_url``.
    """
    env = os.environ if environ is None else environ
    user, password = env.get(f"{env_prefix}_USER"), env.get(f"{env_prefix}_PASSWORD")
    if user and password is not None:
        return Credentials(user, password, f"${env_prefix}_USER")
    import netrc

    host = urllib.parse.urlsplit(url).hostname or ""
    path = env.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        entry = None
    if entry and entry[0] and entry[2] is not None:
        return Credentials(entry[0], entry[2], f"{path} (machine {host})")
    return None


def check_url(url: object, where: str) -> str:
    """The base URL of a source, ending in '/': http(s), a host, no credentials in it.
    Raises ``ConfigError`` naming ``where`` (never echoing a password)."""
    from workerctl.errors import ConfigError

    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"{where}: url: missing; give the server's address, e.g. http://127.0.0.1:8917/tracker/"
        )
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"{where}: url: not a valid address; give e.g. https://host/tracker/") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{where}: url: holds a user name or password; remove it from the URL",
            hint="credentials come from the environment or ~/.netrc, never from a file others read",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))[:200]
        raise ConfigError(f"{where}: url: {shown!r} is not an http(s) address with a host")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class HttpResponse:
    """A server's answer: status, headers (lower-case names) and the JSON body."""

    status: int
    headers: dict[str, str]
    data: Any

    @property
    def etag(self) -> str | None:
        """The record version the server sent (``ETag``), for an ``If-Match`` update."""
        return self.headers.get("etag")


@dataclass
class HttpStats:
    """Requests made and seconds spent waiting on the server (benchmarks read it)."""

    requests: int = 0
    retries: int = 0
    seconds: float = 0.0


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class HttpSession:
    """JSON over HTTP to one server, with the failures every source meets handled once.

    - a connection refused (nothing was sent) is retried for any method;
    - a connection error or a 5xx is retried with exponential backoff (and
      jitter) for an idempotent method; for a POST or PATCH it raises
      ``ResponseLost``, since the server may have written: the caller settles it
      by looking (``write_once``);
    - a 429 waits for ``Retry-After`` (else ``X-RateLimit-Reset``, else the
      backoff) and retries any method, up to ``max_wait`` seconds in all; an
      answer saying no calls remain (``X-RateLimit-Remaining: 0``) makes the next
      request wait for the window instead of earning a 429;
    - 401, 403, 404, 412 and other 4xx raise ``RecordSourceError`` of their kind
      at once, with the fix in the hint.

    ``name`` names the source in messages; ``headers`` go with every request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.2,
        max_wait: float = 60.0,
        credentials_hint: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.name = name
        self.credentials = credentials
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.credentials_hint = credentials_hint
        self.sleep = sleep
        self.stats = HttpStats()
        self._not_before = 0.0  # the rate limit window said: no call before this time

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """``path`` under the base URL, with ``params`` (a list value repeats the name)."""
        url = urllib.parse.urljoin(self.base_url, path.lstrip("/"))
        if params:
            url += "?" + urllib.parse.urlencode(
                [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list | tuple) else [vs])]
            )
        return url

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> HttpResponse:
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        if_match: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one request (retrying as the class says) and return the answer."""
        url = self.url(path, params)
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **self.headers, **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        if if_match is not None:
            all_headers["If-Match"] = if_match
        if self.credentials is not None:
            all_headers["Authorization"] = self.credentials.header()
        waited, attempt = 0.0, 0
        where = f"{self.name} ({self.base_url})"
        while True:
            pause = self._not_before - time.monotonic()
            if pause > 0:
                self._wait(min(pause, self.max_wait))
                waited += pause
            attempt += 1
            try:
                return self._send(method, url, data, all_headers)
            except _Retry as retry:
                retryable = retry.sent_nothing or method in IDEMPOTENT
                if retry.status == 429:
                    delay = retry.delay if retry.delay is not None else self._backoff(attempt)
                    if waited + delay > self.max_wait:
                        raise RecordSourceError(
                            SOURCE_UNAVAILABLE,
                            f"{where}: {retry.reason}; the server asks to wait {delay:g}s more "
                            f"(already waited {waited:g}s)",
                            hint="run fewer at once or ask the server's admin to raise its rate limit; "
                            "a limit on logins means the credentials keep failing: check them",
                            status=429,
                        ) from None
                    if retry.delay is None and attempt > self.retries:
                        raise RecordSourceError(
                            SOURCE_UNAVAILABLE,
                            f"{where}: {retry.reason} (tried {attempt} times)",
                            hint="run fewer at once, or ask the server's admin to raise its rate limit",
                            status=429,
                        ) from None
                elif not retryable:
                    raise ResponseLost(
                        f"{where}: {method} {_path_of(url)}: {retry.reason}; the server may have written",
                        hint="look on the server before writing again (write_once does)",
                    ) from None
                elif attempt > self.retries:
                    raise RecordSourceError(
                        SOURCE_UNAVAILABLE,
                        f"{where}: {retry.reason} (tried {attempt} time{'s' if attempt > 1 else ''})",
                        hint=f"check that the server at {_server_of(url)} runs and the url is right; rerun",
                        status=retry.status,
                    ) from None
                else:
                    delay = self._backoff(attempt)
                self.stats.retries += 1
                self._wait(delay)
                waited += delay

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random() / 2))

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.sleep(seconds)

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> HttpResponse:
        # here, not at the top: urllib.request brings http.client, ssl and email (15 ms
        # per process), and every command that loads the plugins imports this module
        # (workerctl.api) while most never make a request
        import urllib.error
        import urllib.request
        from http.client import HTTPException

        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        started = time.perf_counter()
        self.stats.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status, got, raw = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, got = error.code, error.headers
            try:
                raw = error.read()
            except (OSError, HTTPException):
                raw = b""
        except urllib.error.URLError as error:
            reason = error.reason
            refused = isinstance(reason, ConnectionRefusedError)
            raise _Retry(f"cannot connect: {_reason(reason)}", sent_nothing=refused) from None
        except (OSError, HTTPException) as error:  # reset, timeout, closed without an answer
            raise _Retry(f"no answer: {_reason(error)}") from None
        finally:
            self.stats.seconds += time.perf_counter() - started
        names = {k.lower(): v for k, v in got.items()}
        self._note_rate_limit(names)
        try:
            body = loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode("utf-8", "replace")[:200]
        if status < 400:
            return HttpResponse(status, names, body)
        return self._refuse(status, names, body, method, url)

    def _note_rate_limit(self, headers: dict[str, str]) -> None:
        remaining, reset = (
            _number(headers.get("x-ratelimit-remaining")),
            _number(headers.get("x-ratelimit-reset")),
        )
        limit, period = (
            _number(headers.get("x-ratelimit-limit")),
            _number(headers.get("x-ratelimit-limit-period")),
        )
        if remaining is not None and remaining < 1:
            # the next call would earn a 429: wait for one call to come back
            step = period / limit if period and limit else (reset or 0.0)
            self._not_before = time.monotonic() + min(step, reset if reset is not None else step)

    def _refuse(self, status: int, headers: dict[str, str], body: Any, method: str, url: str) -> HttpResponse:
        said = _server_message(body)
        where = f"{self.name}: {method} {_path_of(url)}"
        if status == 429:
            delay = _number(headers.get("retry-after"))
            if delay is None:
                delay = _number(headers.get("x-ratelimit-reset"))
            if delay is None:  # a limit that says its wait only in words ("Please wait: 150 seconds")
                found = re.search(r"wait:?\s*(\d+(?:\.\d+)?)\s*s", said)
                delay = float(found.group(1)) if found else None
            reason = "rate limited (429)" + (f": {said}" if said else "")
            raise _Retry(reason, status=429, delay=delay, sent_nothing=True)
        if status >= 500:
            raise _Retry(f"server error {status}" + (f": {said}" if said else ""), status=status)
        if status == 401 or (status == 403 and self.credentials is None):
            raise RecordSourceError(
                SOURCE_AUTH_FAILED,
                f"{where}: the server refused the credentials ({status})"
                + (f" from {self.credentials.origin}" if self.credentials else ": none were given"),
                hint=self.credentials_hint
                or "set the source's user and password in the environment or ~/.netrc",
                status=status,
            )
        if status == 403:
            raise RecordSourceError(
                RECORD_ACCESS_DENIED,
                f"{where}: forbidden (403)" + (f": {said}" if said else ""),
                hint="give the tracker user the permission (its roles), or use another user",
                status=403,
            )
        if status == 404:
            raise RecordSourceError(
                RECORD_MISSING,
                f"{where}: not found (404)" + (f": {said}" if said else ""),
                hint="check the id and the source's url ('workerctl records sources')",
                status=404,
            )
        if status == 412:
            raise RecordChanged(f"{where}: the record changed since it was read (412)")
        raise RecordSourceError(
            SOURCE_UNAVAILABLE,
            f"{where}: refused ({status})" + (f": {said}" if said else ""),
            hint="read the server's message; fix the request or the server's settings",
            status=status,
        )


class _Retry(Exception):
    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        delay: float | None = None,
        sent_nothing: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.delay = delay
        self.sent_nothing = sent_nothing


def _reason(error: object) -> str:
    if isinstance(error, TimeoutError):  # socket.timeout is TimeoutError
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _server_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _server_message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("msg") or error.get("message") or "")[:200]
        if isinstance(body.get("message"), str):
            return str(body["message"])[:200]
    if isinstance(body, str):
        return body.strip().splitlines()[0][:200] if body.strip() else ""
    return ""


def write_once(
    lookup: Callable[[], T | None], write: Callable[[], T], *, attempts: int = 3
) -> tuple[T, bool]:
    """Do a keyed write exactly once; returns (what the server holds, created).

    ``lookup`` finds the write on the server by its key (a message carrying the
    run's key, say) or returns None; ``write`` does it. A write already there is
    returned, not repeated (a retried run); a write whose answer was lost
    (``ResponseLost``) is looked up, and written again only when the server
    shows it was not. The engine's ledger records the write as intended before
    and committed after, so a process that dies inside stays ``unknown`` until
    settled.
    """
    try:
        found = lookup()
    except RecordSourceError as exc:
        exc.nothing_written = True  # nothing was sent to write yet
        raise
    if found is not None:
        return found, False
    lost: ResponseLost | None = None
    for _ in range(max(1, attempts)):
        try:
            return write(), True
        except ResponseLost as exc:
            lost = exc
            found = lookup()
            if found is not None:
                return found, True
    assert lost is not None
    raise lost


def describe_changes(before: Mapping[str, Any], after: Mapping[str, Any], limit: int = 6) -> str:
    """ "status: unread → chatting; priority: bug → critical" (the fields that differ)."""

    def show(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return text if len(text) <= 40 else text[:39] + "…"

    changed = [
        f"{key}: {show(before.get(key))} → {show(after.get(key))}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    if len(changed) > limit:
        changed = [*changed[:limit], f"and {len(changed) - limit} more"]
    return "; ".join(changed) or "no field this run read (another property changed)"
