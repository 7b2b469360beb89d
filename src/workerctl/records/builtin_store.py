"""Business records: the record source interface and the built-in record store.

A run acts on a record (a task, usually). Records come from record sources
registered by plugins; the built-in source keeps them in the workspace on
TinyDB, is seeded by ``init`` and stores the comments workers write, each keyed
so that the same run can never write the same comment twice.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workerctl.digits import whole_number
from workerctl.errors import ConfigError, NotFoundError
from workerctl.jsonvalues import TooDeep, loads, not_json
from workerctl.jsonvalues import where as json_path
from workerctl.memo import Memo
from workerctl.records.model import (
    BUILTIN_CONTEXT_SOURCES,
    BUILTIN_LINK_RULES,
    BUILTIN_TYPES,
    RECORD_KEYS,
    Comment,
    ImportCheck,
    Record,
    RecordSource,
)
from workerctl.storage import fs
from workerctl.storage.filenames import LegacyFiles
from workerctl.storage.lock import lock_for
from workerctl.storage.shapes import Fields, Nested, fields_problem, list_of, map_of, tinydb_file
from workerctl.storage.tinydb_storage import AtomicJSONStorage, open_db

if TYPE_CHECKING:
    from tinydb import TinyDB

    from workerctl.workspace import Workspace

_OPT_STR = (str, type(None))
#: a link: a record id, or a list of them
_LINK = Nested(
    lambda v: type(v) is str or (type(v) is list and all(type(x) is str for x in v)), "an id or a list of ids"
)
#: a record as ``records.json`` holds it: what the reader demands, and what an import checks
#: each record against before anything is written (``_validate_record``)
RECORD_FIELDS: Fields = {
    "id": str,
    "type": str,
    "title": str,
    "fields": dict,
    "links": map_of(_LINK, "an object of links"),
}
RECORD_OPTIONAL: Fields = {
    "safe_for_testing": bool,
    "restricted_to": list_of(str, "a list of worker names, or null", nullable=True),
}
RECORDS_SHAPE = tinydb_file("records", RECORD_FIELDS, optional=RECORD_OPTIONAL, others=True)
COMMENTS_SHAPE = tinydb_file(
    "comments",
    {
        "id": str,
        "record_id": str,
        "text": str,
        "author": str,
        "created": str,
        "run_id": _OPT_STR,
        "key": _OPT_STR,
    },
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """Dates (a plugin's import may hand over date objects) as ISO text, keys as text:
    what the YAML loader builds from a file."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class SeedError(ConfigError):
    """A file of the seed folder ``records/`` is invalid: its own error, never the error of
    the file a command was importing when the seed ran (a valid file was blamed for it)."""


_SEED_HINT = (
    "fix that file in the workspace's records/ folder: it is imported the first time the "
    "workspace is used, before anything else is read"
)


class BuiltinRecordStore(RecordSource):
    """Records and comments in ``.workerctl/records.json`` (TinyDB)."""

    name = "builtin"
    local_writes = True  # a file of this workspace (RecordSource.local_writes)
    record_types = BUILTIN_TYPES
    context_sources = BUILTIN_CONTEXT_SOURCES
    link_rules = BUILTIN_LINK_RULES

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(workspace)
        self.path: Path = workspace.records_file
        self.lock = lock_for(workspace.lock_file)
        self._cache: dict | None = None
        self._cache_stamp: tuple[int, int, int] | None = None
        self._loads = 0  # how many times the records were read into memory: the version
        self._parsed: dict[Path, tuple[bytes, builtins.list[dict]]] = {}  # comments files: bytes, docs
        self._comment_paths: Memo[str, Path] = Memo(self._new_comments_path)
        self._legacy = LegacyFiles(self.workspace.state_dir / "comments")

    def _db(self) -> TinyDB:
        return open_db(self.path, hint=self._hint, shape=RECORDS_SHAPE)

    @property
    def _hint(self) -> str:
        return (
            f"restore {self.path} from a backup, or move it aside and re-import your "
            "records with 'workerctl records import FILE'"
        )

    def _seed_files(self) -> list[Path]:
        folder = self.workspace.root / "records"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json"))

    def _seed(self) -> None:
        """A workspace kept in git holds its records as files in ``records/``; they are
        imported the first time the workspace is used (no ``records.json`` yet)."""
        with self.lock:
            if fs.exists(self.path):
                return
            from workerctl.names import inside

            items = []
            seen: dict[str, str] = {}  # id -> the file that holds it
            for path in self._seed_files():
                inside(self.workspace.root, path, "record file")  # no symlink out
                loaded = load_record_file(path)
                name = f"records/{path.name}"
                # each file checked as itself: "records/b.yaml: record 2", not "records/: record 3"
                try:
                    plan = self.check_records(loaded, name, known=set(seen))
                except ConfigError as bad:
                    raise SeedError(bad.message, bad.problems, hint=_SEED_HINT) from None
                if plan.replaced:
                    twice = plan.replaced[0]
                    raise SeedError(f"{name}: id: {twice} is also in {seen[twice]}", hint=_SEED_HINT)
                seen.update(dict.fromkeys(plan.added, name))
                items.extend(loaded)
            self.import_records(items, "records/")

    def _data(self) -> dict:
        cache = self._cache  # once: a batch's other thread may drop it meanwhile (refresh)
        if cache is None:
            if not fs.exists(self.path) and self._seed_files():
                self._seed()
            self._cache_stamp = _stamp(self.path)
            db = self._db()
            cache = self._cache = {d["id"]: d for d in db.table("records").all()}
            self._loads += 1
        return cache

    def version(self) -> int:
        """Each read of the file into memory is a new version (a write here drops
        the copy in memory, ``refresh`` drops it when another process wrote)."""
        self._data()
        return self._loads

    def comments_path(self, record_id: str) -> Path:
        """Joined once per record id (a run asks about nine times)."""
        return self._comment_paths[record_id]

    def _new_comments_path(self, record_id: str) -> Path:
        from workerctl.storage.filenames import file_name

        return self.workspace.state_dir / "comments" / f"{file_name(record_id)}.json"

    def _legacy_comments(self, record_id: str) -> dict | None:
        """A workspace written before the file names were injective (``storage.filenames``):
        ``record_id``'s comments from its old file, which two ids may share (``T:500`` and
        ``T_500``); the first comment added puts them under the new name, the old file
        stays for the other id. None when there is no old file."""
        old = self._legacy.first(record_id)  # a run asks about nine times
        if old is None:
            return None
        data = AtomicJSONStorage(old, hint=self._comments_hint(old, record_id), shape=COMMENTS_SHAPE).read()
        docs = (data or {}).get("comments", {})
        return {"comments": {k: d for k, d in docs.items() if d.get("record_id") == record_id}}

    def _own(self, data: dict | None, record_id: str) -> dict:
        """The comments file of ``record_id`` as it is to be written back. In a workspace
        an earlier version wrote, its name may be another id's old file (``t:500``'s
        name is ``t_3a500``, the old name of the id ``t_3a500``): that id's comments stay
        in it, and readers keep ``record_id``'s only (``comments``). Until ``record_id``
        has a comment there, its own old file is merged in, so none is lost."""
        if not data:
            return self._legacy_comments(record_id) or {"comments": {}}
        docs = data["comments"]
        if docs and not any(d.get("record_id", record_id) == record_id for d in docs.values()):
            for doc in (self._legacy_comments(record_id) or {"comments": {}})["comments"].values():
                docs[str(max((int(k) for k in docs), default=0) + 1)] = doc
        return data

    @staticmethod
    def _comments_hint(path: Path, record_id: str) -> str:
        return f"restore {path} from a backup, or move it aside (the comments on {record_id} are then lost)"

    def refresh(self) -> None:
        """Drop the records read into memory when the file changed since (its size or
        modification time): the usual case, nothing changed, costs one ``stat``."""
        if self._cache is not None and self._cache_stamp != _stamp(self.path):
            self._cache = None

    def get(self, record_id: str) -> Record | None:
        doc = self._data().get(record_id)
        return _record_from_doc(doc) if doc else None

    def list(self, type: str | None = None) -> list[Record]:
        docs = self._data().values()
        return [_record_from_doc(d) for d in docs if type is None or d["type"] == type]

    def comments(self, record_id: str) -> builtins.list[Comment]:
        """A record's comments as its file holds them now. A run asks about nine times
        (context, snapshots, review, the write); the file is read each time, and parsed
        and checked only when its bytes differ from the last read (``_parsed``)."""
        from workerctl.errors import StorageError
        from workerctl.storage.atomic import parse_json

        path = self.comments_path(record_id)
        try:
            raw = fs.read_bytes(path)
        except (FileNotFoundError, NotADirectoryError):
            legacy = self._legacy_comments(record_id)
            return [Comment(**c) for c in legacy["comments"].values()] if legacy else []
        except OSError as exc:
            raise StorageError(path, exc, "read") from None
        seen = self._parsed.get(path)
        if seen is None or seen[0] != raw:
            data = parse_json(path, raw, hint=self._comments_hint(path, record_id), shape=COMMENTS_SHAPE)
            if len(self._parsed) >= 256:
                self._parsed.clear()
            seen = self._parsed[path] = (raw, builtins.list(data["comments"].values()))
        # the file may be another id's old one (``_own``): its comments are not these
        mine = [c for c in seen[1] if c.get("record_id", record_id) == record_id]
        if seen[1] and not mine:
            legacy = self._legacy_comments(record_id)
            mine = builtins.list(legacy["comments"].values()) if legacy else []
        return [Comment(**c) for c in mine]

    def add_comment(
        self,
        record_id: str,
        text: str,
        *,
        author: str,
        run_id: str | None,
        key: str | None,
        created: str | None = None,
    ) -> tuple[Comment, bool]:
        """Comments live in one small file per record, so a write stays cheap however
        many runs have commented elsewhere; the key makes a retried run's write a no-op."""
        with self.lock:
            path = self.comments_path(record_id)
            storage = AtomicJSONStorage(path, hint=self._comments_hint(path, record_id), shape=COMMENTS_SHAPE)
            data = self._own(storage.read(), record_id)
            docs = data["comments"]  # TinyDB's layout: table -> id -> doc
            if key:
                for existing in docs.values():
                    if existing.get("key") == key:
                        return Comment(**existing), False
            numbers = [d["id"][2:] for d in docs.values() if str(d.get("id", "")).startswith("c-")]
            comment = Comment(
                id=f"c-{max((n for n in map(whole_number, numbers) if n is not None), default=0) + 1}",
                record_id=record_id,
                text=text,
                author=author,
                created=created or _now(),
                run_id=run_id,
                key=key,
            )
            docs[str(max((int(k) for k in docs), default=0) + 1)] = asdict(comment)
            storage.write(data)  # one read and one write (TinyDB's insert reads twice)
            return comment, True

    def check_records(
        self,
        items: builtins.list[Any],
        origin: str,
        positions: builtins.list[int] | None = None,
        *,
        known: set[str] | None = None,
    ) -> ImportPlan:
        """Validate every item (all problems, not the first) and say what an import
        would add and replace; nothing is written."""
        docs, comments, problems = [], [], []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            number = positions[index] if positions else index + 1
            where = f"{origin}: record {number}"
            try:
                doc, seeded = _validate_record(item, where)
            except ConfigError as bad:
                problems.append(bad.message)
                continue
            if doc["id"] in seen:
                problems.append(f"{where}: id: {doc['id']} is also record {seen[doc['id']]}")
                continue
            seen[doc["id"]] = number
            docs.append(doc)
            comments.extend(seeded)
        if problems:
            raise ConfigError(
                f"{origin}: {len(problems)} invalid record(s); nothing was imported:",
                [_Line(p) for p in problems],
                hint="fix the file and import it again (--dry-run checks it without writing)",
            )
        existing = set(self._data()) if known is None else known
        return ImportPlan(
            docs=docs,
            comments=comments,
            added=[d["id"] for d in docs if d["id"] not in existing],
            replaced=[d["id"] for d in docs if d["id"] in existing],
        )

    def import_records(self, items: builtins.list[dict], origin: str) -> tuple[int, int]:
        """Insert or replace records by id; returns (added, replaced)."""
        added = replaced = 0
        with self.lock:
            self._cache = None
            storage = AtomicJSONStorage(self.path, hint=self._hint, shape=RECORDS_SHAPE)
            data = storage.read() or {}
            records = {d["id"]: d for d in data.get("records", {}).values()}
            plan = self.check_records(items, origin, known=set(records))
            for doc in plan.docs:
                if doc["id"] in records:
                    replaced += 1
                else:
                    added += 1
                records[doc["id"]] = doc
            # one atomic write (TinyDB's truncate + insert would be two: a crash
            # between them would leave no records at all)
            data["records"] = {str(n): doc for n, doc in enumerate(records.values(), start=1)}
            storage.write(data)
            for record_id, c in plan.comments:
                digest = hashlib.sha1(str(c.get("text")).encode("utf-8", "surrogatepass")).hexdigest()[:8]
                created = _plain(c.get("created"))
                # a comment exported by 'records show --json' keeps its key: importing
                # it back is a no-op, not a second copy
                self.add_comment(
                    record_id,
                    str(c.get("text", "")),
                    author=str(c.get("author", "someone")),
                    run_id=c.get("run_id"),
                    key=c.get("key") or f"import:{record_id}:{created or ''}:{digest}",
                    created=str(created) if created else None,
                )
            self._cache = None
        return added, replaced

    def delete(self, record_id: str) -> bool:
        from tinydb import Query

        with self.lock:
            self._cache = None
            removed = self._db().table("records").remove(Query().id == record_id)
            self._cache = None
        return bool(removed)


def _record_from_doc(doc: dict) -> Record:
    return Record(
        id=doc["id"],
        type=doc["type"],
        title=doc.get("title", ""),
        fields=dict(doc.get("fields", {})),
        links=dict(doc.get("links", {})),
        safe_for_testing=bool(doc.get("safe_for_testing", False)),
        restricted_to=doc.get("restricted_to"),
        source="builtin",
    )


@dataclass
class ImportPlan(ImportCheck):
    """What an import of the built-in store would write: the checked records and the
    comments they carry, besides the ids it would add and replace."""

    docs: list[dict] = field(default_factory=list)
    comments: list[tuple[str, dict]] = field(default_factory=list)


class _Line(str):
    """A problem line for ``ConfigError`` (printed as is)."""


# keys of 'records show --json' that are not record fields
SHOWN_KEYS = {"fields", "source"}


def _validate_record(item: Any, where: str) -> tuple[dict, list]:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be a mapping with at least id, type and title")
    item = _plain(item)  # a date object a plugin's import hands over is its ISO text, as in YAML
    nested = item.get("fields", {})
    if not isinstance(nested, dict):
        raise ConfigError(f"{where}: fields: must be a mapping like {{status: open}}")
    clash = sorted(k for k in set(nested) & (set(item) - SHOWN_KEYS) if item[k] != nested[k])
    if clash:
        raise ConfigError(f"{where}: {clash[0]}: given both at the top and under 'fields'")
    bad = [k for k in nested if not isinstance(k, str) or k in RECORD_KEYS | SHOWN_KEYS]
    if bad:
        raise ConfigError(f"{where}: fields: {bad[0]!r} cannot be a field name")
    # the shape 'records show --json' prints (fields nested) is read back as fields
    item = {**{k: v for k, v in item.items() if k not in SHOWN_KEYS}, **nested}
    if item.get("comments") is not None and not isinstance(item.get("comments"), list):
        raise ConfigError(f"{where}: comments: must be a list")
    for n, comment in enumerate(item.get("comments") or [], start=1):
        if not isinstance(comment, dict) or not str(comment.get("text") or "").strip():
            raise ConfigError(f"{where}: comments[{n}]: must be a mapping with a text")
    for key in ("id", "type", "title"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ConfigError(f"{where}: {key}: missing or not a text value")
    from workerctl.names import RECORD_ID

    if not RECORD_ID.ok(item["id"]):
        shown = item["id"] if len(item["id"]) <= 60 else item["id"][:57] + "..."
        raise ConfigError(
            f"{where}: id: {shown!r} is not a valid record id (a record id is {RECORD_ID.explain})"
        )
    if item["type"] not in BUILTIN_TYPES:
        raise ConfigError(
            f"{where}: type: unknown record type {item['type']!r} (one of {', '.join(BUILTIN_TYPES)})"
        )
    links = item.get("links", {})
    if not isinstance(links, dict):
        raise ConfigError(f"{where}: links: must be a mapping like {{project: P-1}}")
    for name, target in links.items():
        if not isinstance(name, str) or not _LINK.fits(target):
            raise ConfigError(
                f"{where}: links.{name}: {_short(target)} is not a record id or a list of them",
                hint="write the linked record's id as text, e.g. {project: P-7}",
            )
    safe = item.get("safe_for_testing", False)
    if not isinstance(safe, bool):
        raise ConfigError(
            f"{where}: safe_for_testing: {_short(safe)} is not true or false",
            hint="write true or false without quotes",
        )
    found = not_json(item)
    if found is not None:
        raise ConfigError(f"{where}: {json_path(found[0])}: {found[1]}", hint=_NOT_JSON_HINT)
    restricted = item.get("restricted_to")
    if restricted is not None and not (
        isinstance(restricted, list) and all(isinstance(w, str) for w in restricted)
    ):
        raise ConfigError(f"{where}: restricted_to: must be a list of worker names")
    comments = item.get("comments") or []
    doc = {
        "id": item["id"],
        "type": item["type"],
        "title": item["title"],
        "fields": {k: v for k, v in item.items() if k not in RECORD_KEYS},
        "links": links,
        "safe_for_testing": safe,
        "restricted_to": restricted,
    }
    problem = fields_problem(doc, RECORD_FIELDS, RECORD_OPTIONAL)  # what the reader will demand
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return doc, [(item["id"], c) for c in comments if isinstance(c, dict)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NOT_JSON_HINT = "write text, a number, true/false, null, a list or a mapping there (quote a date)"


def read_stdin_records() -> str:
    """Records on standard input (``records import -``): at most a record file's size
    limit, as a file of them (``handed.read_handed``)."""
    from workerctl.handed import read_handed
    from workerctl.workers.yaml_positions import RECORD_FILE

    raw = read_handed("-", RECORD_FILE.max_bytes, "records")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise ConfigError(
            f"<stdin>: not UTF-8 text (byte 0x{raw[bad.start]:02x} at offset {bad.start})"
        ) from None


def load_record_file(path: Path, text: str | None = None) -> list[dict]:
    """Read records: a YAML or JSON list, ``{records: [...]}``, one record (what
    ``records show --json`` prints) or JSON lines; ``text`` given: read from it
    (standard input).

    Record files often come from elsewhere (an export, another tool), so they go
    through the same limited loader as worker files, with a larger size limit:
    a YAML bomb, deep nesting, NUL, invalid UTF-8 or a key given twice is refused
    at its line and column.
    """
    from workerctl.workers.yaml_positions import RECORD_FILE, parse_yaml, read_yaml_text

    file = str(path)
    if text is None:
        try:
            text, problems = read_yaml_text(path, file, RECORD_FILE)
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        if text is None:
            raise ConfigError(
                f"{path}: cannot load records:", problems, hint="fix the file and run the command again"
            )
    data: Any
    if path.suffix == ".jsonl" or _looks_like_json_lines(text):
        _check_json_size(text, file)
        data = [
            _load_json(line, file, number)
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    elif path.suffix == ".json" or _is_json(text):
        # JSON read as JSON wherever it comes from (standard input has no suffix): YAML
        # refuses the surrogate-pair escapes json.dumps writes for emoji (\ud83d\ude00)
        _check_json_size(text, file)
        data = _load_json(text, file)
    else:
        data, _, problems = parse_yaml(text, file, RECORD_FILE, positions=False)
        if problems:
            raise ConfigError(
                f"{path}: cannot load records:", problems, hint="fix the file and run the command again"
            )
    _check_loaded(data, file)
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    elif isinstance(data, dict) and "id" in data:
        data = [data]
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of records (or a mapping with 'records')")
    return data


def _check_loaded(data: Any, file: str) -> None:
    """The limits of the YAML loader for any record file (JSON has no streaming pass):
    nesting depth and number of values; and text that is text: a lone surrogate
    (``"\\udc80"`` in JSON, which no UTF-8 file can hold) is refused, naming where.
    One iterative walk, so a deep document cannot exhaust the stack here."""
    from workerctl.workers.model import Problem
    from workerctl.workers.yaml_positions import RECORD_FILE

    def refuse(where: str, message: str, fix: str) -> None:
        where = where if len(where) <= 80 else f"{where[:50]}…{where[-25:]}"
        raise ConfigError(f"{file}: cannot load records:", [Problem(file, 1, 1, where, message, fix)])

    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    values = 0
    while stack:
        value, where, depth = stack.pop()
        values += 1
        if values > RECORD_FILE.max_nodes:
            refuse(
                "(file)",
                f"more than {RECORD_FILE.max_nodes:,} values",
                "split the records over several files",
            )
        if depth > RECORD_FILE.max_depth:
            refuse(
                where or "(file)",
                f"nested more than {RECORD_FILE.max_depth} levels deep",
                "flatten the structure",
            )
        if isinstance(value, str):
            bad = _lone_surrogate(value)
            if bad is not None:
                refuse(
                    where or "(file)",
                    f"holds a lone surrogate ({bad}), which is not text",
                    "write the character it stands for, or remove it",
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and _lone_surrogate(key) is not None:
                    refuse(
                        where or "(file)",
                        f"a key holds a lone surrogate ({_lone_surrogate(key)})",
                        "fix the key",
                    )
                stack.append((item, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{n}]", depth + 1) for n, item in enumerate(value))


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text``, escaped for a message; None if none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"
    return None


def _check_json_size(text: str, file: str) -> None:
    from workerctl.workers.model import Problem
    from workerctl.workers.yaml_positions import RECORD_FILE

    if len(text) > RECORD_FILE.max_bytes:  # characters: at least as many bytes
        raise ConfigError(
            f"{file}: cannot load records:",
            [
                Problem(
                    file,
                    1,
                    1,
                    "(file)",
                    f"more than {RECORD_FILE.max_bytes // (1024 * 1024)} MiB, the limit for a record file",
                    "split the records over several files",
                )
            ],
        )


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a rewritten records file (an atomic write is a new inode)."""
    try:
        info = fs.lstat(path)
    except (OSError, fs.PlantedLink):
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _is_json(text: str) -> bool:
    """Whether ``text`` is a JSON array or object (a YAML flow list that is not JSON,
    ``[a, b]``, is not)."""
    if text.lstrip()[:1] not in ("[", "{"):
        return False
    try:
        loads(text)
    except ValueError:
        return False
    return True


def _load_json(text: str, file: str, line_offset: int = 1) -> Any:
    """JSON records, refusing what the YAML loader refuses: duplicate keys, deep nesting."""
    from workerctl.workers.model import Problem

    def pairs(items: list) -> dict:
        seen: dict = {}
        for key, value in items:
            if key in seen:
                raise ConfigError(
                    f"{file}: cannot load records:",
                    [Problem(file, 1, 1, str(key), "key given twice in one object", "keep only one of them")],
                )
            seen[key] = value
        return seen

    try:
        return loads(text, object_pairs_hook=pairs)
    except TooDeep:
        raise ConfigError(
            f"{file}: cannot load records:",
            [Problem(file, 1, 1, "(json)", "nested too deeply to read", "flatten the structure")],
        ) from None
    except ValueError as exc:
        line, col = getattr(exc, "lineno", 1) + line_offset - 1, getattr(exc, "colno", 1)
        raise ConfigError(
            f"{file}: cannot load records:",
            [
                Problem(
                    file,
                    line,
                    col,
                    "(json)",
                    f"invalid JSON: {getattr(exc, 'msg', exc)}",
                    "fix the syntax at this position",
                )
            ],
        ) from None


def _looks_like_json_lines(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not all(line.lstrip().startswith("{") for line in lines):
        return False
    try:
        loads(lines[0])
    except ValueError:
        return False
    return True
