"""Roundup issues as workerctl records, read and written live over Roundup's REST API.

A record's id is Roundup's designator (``issue12``); its type is the class
(``issue``, or another class named under ``classes:``). The issue's messages are
its comments: a message workerctl writes carries the run id and the write's key
in its ``messageid`` (``<workerctl.RUN.KEYHEX@workerctl>``), so a write whose
answer was lost is found on the server instead of written again.

Configured in workerctl.yaml::

    record_sources:
      - name: bugs
        kind: roundup
        url: http://127.0.0.1:8917/tracker/     # the tracker's web address
        # optional:
        classes: [issue]                        # the classes served as records
        fields: {status: status, priority: priority, assignee: assignedto}
        safe_for_testing: false                 # draft workers may run on its records
        timeout: 10                             # seconds per request
        max_wait: 60                            # seconds a run may wait on its rate limit

Credentials: ``WORKERCTL_ROUNDUP_USER`` and ``WORKERCTL_ROUNDUP_PASSWORD``, else
the ``~/.netrc`` entry for the tracker's host.
"""

from __future__ import annotations

import builtins
import re
import threading
from typing import Any, ClassVar

from workerctl.api import (
    Comment,
    HttpSession,
    Record,
    RecordChanged,
    RecordSource,
    RecordSourceError,
    ResponseLost,
    SourceConfig,
    check_url,
    credentials_for,
    describe_changes,
    write_once,
)

ENV_PREFIX = "WORKERCTL_ROUNDUP"
# record field -> Roundup property (classic schema); the title is Record.title
DEFAULT_FIELDS = {
    "status": "status",
    "priority": "priority",
    "assignee": "assignedto",
    "keywords": "keyword",
    "created": "creation",
    "activity": "activity",
    "actor": "actor",
}
OPTIONS = {"classes", "fields", "title", "safe_for_testing", "timeout", "max_wait", "retries", "page_size"}
DESIGNATOR = re.compile(r"^([a-z][a-z0-9_]*?)([1-9][0-9]{0,12})$")
MESSAGE_ID = re.compile(r"^<workerctl\.([0-9a-z]+)\.([0-9a-f]*)@workerctl>$")
URL_HINT = "set url: to the tracker's web address, e.g. https://host/tracker/ (its config.ini 'web')"
FOOTER = "\n\n-- \nworkerctl run {run_id} ({author})"


def message_id(run_id: str, key: str) -> str:
    """The messageid a keyed write carries: the run id and the key (hex), found again by it."""
    return f"<workerctl.{run_id}.{key.encode().hex()}@workerctl>"


def parse_message_id(value: object) -> tuple[str | None, str | None]:
    match = MESSAGE_ID.match(value) if isinstance(value, str) else None
    if not match:
        return None, None
    try:
        return match.group(1), bytes.fromhex(match.group(2)).decode()
    except ValueError:
        return match.group(1), None


def _payload(answer: Any, where: str, url: str) -> dict[str, Any]:
    """The ``data`` of a Roundup REST answer; anything else means the url is not a
    Roundup tracker's (a web page, another server): say so instead of guessing."""
    body = answer.data
    if isinstance(body, dict) and isinstance(body.get("data"), dict | list):
        return body["data"] if isinstance(body["data"], dict) else {"collection": body["data"]}
    raise RecordSourceError(
        "source_unavailable",
        f"{where}: {url} did not answer as a Roundup REST API (status {answer.status})",
        hint=URL_HINT,
    )


def _iso(value: str) -> str:
    """Roundup's "2026-12-03.16:07:07" as ISO-8601 UTC."""
    return value.replace(".", "T", 1) + "Z" if re.match(r"^\d{4}-\d\d-\d\d\.\d", value) else value


def _plain(value: Any) -> Any:
    """A verbose property value as a record field: a link's name, a list of names."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        for key in ("name", "username", "title", "id"):
            if key in value:
                return value[key]
        return None
    if isinstance(value, str):
        return _iso(value)
    return value


class RoundupSource(RecordSource):
    """One Roundup tracker (one ``record_sources:`` entry of kind ``roundup``)."""

    name: ClassVar[str] = "roundup"  # type: ignore[misc]
    kind: ClassVar[str] = "roundup"
    record_types: ClassVar[tuple[str, ...]] = ("issue",)
    context_sources: ClassVar[dict[str, list[str]]] = {"issues": ["issue"]}

    @classmethod
    def check_options(cls, config: SourceConfig) -> list[str]:
        problems = []
        opts = config.options
        for key in sorted(set(opts) - OPTIONS):
            problems.append(f"{key}: unknown option (known: name, kind, url, {', '.join(sorted(OPTIONS))})")
        classes = opts.get("classes", ["issue"])
        if (
            not isinstance(classes, list)
            or not classes
            or not all(isinstance(c, str) and re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in classes)
        ):
            problems.append("classes: a list of Roundup class names, e.g. [issue]")
        fields = opts.get("fields", {})
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.isidentifier() for k, v in fields.items()
        ):
            problems.append(
                "fields: a mapping of record field to Roundup property, e.g. {assignee: assignedto}"
            )
        for key in ("timeout", "max_wait"):
            value = opts.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                problems.append(f"{key}: a positive number of seconds")
        for key in ("retries", "page_size"):
            value = opts.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
                problems.append(f"{key}: a whole number from 0 to 1000")
        if not isinstance(opts.get("safe_for_testing", False), bool):
            problems.append("safe_for_testing: true or false")
        return problems

    def __init__(self, workspace: Any, config: SourceConfig | None = None) -> None:
        super().__init__(workspace)
        if config is None:  # registered for its kind only; built from workerctl.yaml
            raise RecordSourceError("source_unavailable", "a roundup source needs a record_sources: entry")
        opts = config.options
        self.name = config.name  # type: ignore[misc]
        self.url = check_url(config.url, config.where)
        self.classes: list[str] = list(opts.get("classes", ["issue"]))
        self.record_types = tuple(self.classes)  # type: ignore[misc]
        self.fields = {**DEFAULT_FIELDS, **opts.get("fields", {})}
        self.title_property = str(opts.get("title", "title"))
        self.safe_for_testing = bool(opts.get("safe_for_testing", False))
        self.page_size = int(opts.get("page_size", 100)) or 100
        credentials = credentials_for(self.url, ENV_PREFIX)
        origin = self.url.split("/", 3)
        self.session = HttpSession(
            self.url + "rest/",
            name=f"record source {self.name!r}",
            credentials=credentials,
            # Roundup's CSRF checks for the REST API: a custom header, and an
            # Origin and Referer matching the tracker's web address
            headers={
                "X-Requested-With": "workerctl",
                "Origin": f"{origin[0]}//{origin[2]}",
                "Referer": self.url,
            },
            timeout=float(opts.get("timeout", 10)),
            retries=int(opts.get("retries", 4)),
            max_wait=float(opts.get("max_wait", 60)),
            credentials_hint=(
                f"set {ENV_PREFIX}_USER and {ENV_PREFIX}_PASSWORD, or a ~/.netrc entry for "
                f"{self.url.split('/')[2].split(':')[0]}, to a user of the tracker"
            ),
        )
        self.user = credentials.user if credentials else None
        self._seen: dict[str, tuple[str | None, dict[str, Any]]] = {}  # designator -> (etag, fields)
        self._lock = threading.Lock()

    # -- what workerctl asks of every source --

    def describe(self) -> str:
        return self.url

    def check(self) -> str | None:
        try:
            answer = self.session.get("data/")
            _payload(answer, self.name, self.url)
        except RecordSourceError as exc:
            if exc.status == 404:
                return f"{self.url} has no Roundup REST API (404) — {URL_HINT}"
            return f"{exc.message} — {exc.hint}" if exc.hint else exc.message
        missing = [c for c in self.classes if c not in _payload(answer, self.name, self.url)]
        if missing:
            return f"the tracker has no class {', '.join(missing)} — fix classes: in workerctl.yaml"
        if self.user is None:
            return f"no credentials: set {ENV_PREFIX}_USER and {ENV_PREFIX}_PASSWORD, or ~/.netrc"
        return None

    def split(self, record_id: str) -> tuple[str, str] | None:
        """("issue", "12") for a designator of a class this source serves, else None."""
        match = DESIGNATOR.match(record_id)
        if not match or match.group(1) not in self.classes:
            return None
        return match.group(1), match.group(2)

    def get(self, record_id: str) -> Record | None:
        parts = self.split(record_id)
        if parts is None:
            return None
        cls, number = parts
        try:
            answer = self.session.get(f"data/{cls}/{number}", self._params())
        except RecordSourceError as exc:
            if exc.status == 404 and "no such" in exc.message:  # Roundup's own "no such issue 9"
                return None
            if exc.status == 404:
                raise RecordSourceError(
                    "source_unavailable",
                    f"{self.name}: {self.url} has no Roundup REST API (404 for {record_id})",
                    hint=URL_HINT,
                    status=404,
                ) from None
            raise
        data = _payload(answer, self.name, self.url)
        record = self._record(cls, number, data.get("attributes") or {})
        with self._lock:
            self._seen[record_id] = (answer.etag or data.get("@etag"), dict(record.fields))
        return record

    def list(self, type: str | None = None) -> builtins.list[Record]:
        return self.search(type)

    def search(self, type: str | None = None, **filters: str) -> builtins.list[Record]:
        """Records of one class (every class when None), filtered on the server by
        property value (``status="chatting"``, ``keyword="stale"``)."""
        out: builtins.list[Record] = []
        for cls in [type] if type else self.classes:
            if cls not in self.classes:
                continue
            page = 1
            while True:
                params = {**self._params(), "@page_size": self.page_size, "@page_index": page}
                params.update({self.fields.get(k, k): v for k, v in filters.items()})
                try:
                    data = _payload(self.session.get(f"data/{cls}", params), self.name, self.url)
                except RecordSourceError as exc:
                    if exc.status != 404:
                        raise
                    raise RecordSourceError(
                        "source_unavailable",
                        f"{self.name}: {self.url} has no Roundup REST API for class {cls} (404)",
                        hint=URL_HINT + "; and classes: the tracker's class names",
                    ) from None
                items = data.get("collection") or []
                out.extend(self._record(cls, str(item["id"]), item) for item in items)
                if len(items) < self.page_size:
                    break
                page += 1
        return out

    def comments(self, record_id: str) -> builtins.list[Comment]:
        parts = self.split(record_id)
        if parts is None:
            return []
        cls, number = parts
        answer = self.session.get(f"data/{cls}/{number}", {"@fields": "messages"})
        ids = [str(m["id"]) for m in (answer.data["data"]["attributes"].get("messages") or [])]
        return [self._comment(record_id, m) for m in self._messages(ids)]

    def add_comment(
        self, record_id: str, text: str, *, author: str, run_id: str | None, key: str | None
    ) -> tuple[Comment, bool]:
        parts = self.split(record_id)
        if parts is None:
            raise RecordSourceError("record_missing", f"{record_id!r} is not a {self.name} record")
        run = run_id or "manual"
        mid = message_id(run, key) if key else None

        def lookup() -> Comment | None:
            if mid is None:
                return None
            found = [m for m in self._find_messages(mid) if m.get("messageid") == mid]
            if not found:
                return None
            self._link(record_id, str(found[0]["id"]))  # a write lost between its two steps
            return self._comment(record_id, found[0])

        def write() -> Comment:
            body: dict[str, Any] = {
                "content": text.strip() + FOOTER.format(run_id=run, author=author),
                "date": ".",
            }
            if self.user:
                body["author"] = self.user
            if mid:
                body["messageid"] = mid
            answer = self.session.request("POST", "data/msg", body=body)
            msg_id = str(answer.data["data"]["id"])
            self._link(record_id, msg_id)
            return Comment(f"msg{msg_id}", record_id, body["content"], self.user or author, "", run_id, key)

        return write_once(lookup, write)

    # -- updates, for the tracker tools --

    def update(self, record_id: str, changes: dict[str, str]) -> dict[str, Any]:
        """Set record fields (``{"status": "resolved"}``) with ``If-Match`` on the version
        the run last read: a record changed since is refused (``RecordChanged``) with
        what changed. Returns the fields before."""
        parts = self.split(record_id)
        if parts is None:
            raise RecordSourceError("record_missing", f"{record_id!r} is not a {self.name} record")
        cls, number = parts
        with self._lock:
            seen = self._seen.get(record_id)
        if seen is None:  # the run never read it: read it now, and write against that
            if self.get(record_id) is None:
                raise RecordSourceError("record_missing", f"{record_id} does not exist on {self.name}")
            seen = self._seen[record_id]
        etag, before = seen
        body = {self.fields.get(k, k): v for k, v in changes.items()}
        try:
            self.session.request(
                "PATCH", f"data/{cls}/{number}", body={"@op": "replace", **body}, if_match=etag
            )
        except RecordChanged:
            now = self.get(record_id)
            if now is None:
                what = "it was deleted"
            else:  # what a person changed; activity and actor move on every change
                stamps = {k for k, prop in self.fields.items() if prop in ("activity", "actor")}
                what = describe_changes(
                    {k: v for k, v in before.items() if k not in stamps},
                    {k: v for k, v in now.fields.items() if k not in stamps},
                )
                actor = next(
                    (now.fields[k] for k, p in self.fields.items() if p == "actor" and k in now.fields), None
                )
                what += f"; by {actor}" if actor else ""
            raise RecordChanged(
                f"{record_id} changed on {self.name} since this run read it ({what}); not updated",
                hint=f"read {record_id} again and decide on its new state",
            ) from None
        self.get(record_id)  # our own change is the version we now know
        return {k: before.get(k) for k in changes}

    def update_fields(
        self, record_id: str, changes: dict[str, Any], *, run_id: str | None, key: str | None
    ) -> dict[str, Any]:
        """Workers' updates through the records API (``ctx.records.update``): ``update``."""
        return self.update(record_id, {k: str(v) for k, v in changes.items()})

    def fingerprint_now(self, record_id: str) -> str | None:
        record = self.get(record_id)
        return record.fingerprint() if record else None

    # -- helpers --

    def _params(self) -> dict[str, Any]:
        props = [self.title_property, *dict.fromkeys(self.fields.values())]
        return {"@verbose": 2, "@fields": ",".join(props)}

    def _record(self, cls: str, number: str, attributes: dict[str, Any]) -> Record:
        fields = {
            name: _plain(attributes.get(prop)) for name, prop in self.fields.items() if prop in attributes
        }
        return Record(
            id=f"{cls}{number}",
            type=cls,
            title=str(attributes.get(self.title_property) or ""),
            fields=fields,
            safe_for_testing=self.safe_for_testing,
            source=self.name,
        )

    def _messages(self, ids: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        out: builtins.list[dict[str, Any]] = []
        for start in range(0, len(ids), 50):
            chunk = ids[start : start + 50]
            params = {"id": chunk, "@fields": "author,date,content,messageid", "@verbose": 3}
            params["@page_size"] = len(chunk)
            out.extend(
                (self.session.get("data/msg", params).data or {}).get("data", {}).get("collection") or []
            )
        return sorted(out, key=lambda m: int(m["id"]))

    def _find_messages(self, mid: str) -> builtins.list[dict[str, Any]]:
        params = {"messageid": mid, "@fields": "author,date,content,messageid", "@verbose": 3}
        return _payload(self.session.get("data/msg", params), self.name, self.url).get("collection") or []

    def _comment(self, record_id: str, msg: dict[str, Any]) -> Comment:
        run_id, key = parse_message_id(msg.get("messageid"))
        return Comment(
            id=f"msg{msg['id']}",
            record_id=record_id,
            text=str(msg.get("content") or ""),
            author=str(_plain(msg.get("author")) or ""),
            created=_iso(str(msg.get("date") or "")),
            run_id=run_id,
            key=key,
        )

    def _link(self, record_id: str, msg_id: str) -> None:
        """Add message ``msg_id`` to the record's messages (a set: adding twice is once).
        The If-Match is the record's version now: a message is not an update of what
        the run read, so someone's change in between is no conflict."""
        cls, number = self.split(record_id) or ("", "")
        with self._lock:
            etag = (self._seen.get(record_id) or (None, {}))[0]
        for attempt in range(6):
            if attempt or etag is None:  # first try: the version last read, a request fewer
                answer = self.session.get(f"data/{cls}/{number}", {"@fields": "messages"})
                held = {str(m["id"]) for m in answer.data["data"]["attributes"].get("messages") or []}
                if msg_id in held:
                    return
                etag = answer.etag or answer.data["data"].get("@etag")
            try:
                self.session.request(
                    "PATCH", f"data/{cls}/{number}", body={"@op": "add", "messages": msg_id}, if_match=etag
                )
                return
            except RecordChanged:
                continue  # changed between our read and our add: read again
            except ResponseLost:
                continue  # the answer to the add was lost: look again
        raise RecordSourceError(
            "source_unavailable",
            f"{self.name}: message msg{msg_id} could not be added to {record_id} (it kept changing)",
            hint="rerun; the message is found again by its key, not written twice",
        )
