"""Choosing the records a batch runs on: ids from a file, or a jq filter over records.

``--records-from`` takes what scripts already have: one id per line, JSON lines
with an ``id`` (``records list --format ndjson``), or a JSON array of either.
``--where`` is a jq expression evaluated on each record as ``records list --json``
prints it (``.id``, ``.type``, ``.title``, ``.fields``, ``.links``, and ``.status``
and ``.due`` at the top); a record is chosen as jq's ``select`` chooses: when the
expression gives any value other than ``false`` or ``null`` (``--where .due`` chooses
the records that have a due date).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workerctl.errors import UsageError
from workerctl.jsonvalues import TooDeep, loads

if TYPE_CHECKING:
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Record


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the ids' JSON, a key given twice refused (one reader takes the first
    ``id``, another the last: the run went to a record nobody named last)."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            raise ValueError(f"the key {key!r} is given twice in one object (keep only one of them)")
        out[key] = value
    return out


def ids_from_text(text: str, origin: str) -> list[str]:
    """Record ids from one id per line, JSON lines, or a JSON array; blank lines and
    ``#`` comments are skipped."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = loads(stripped, object_pairs_hook=_pairs)
        except TooDeep:  # an array nested thousands deep: no list of ids
            raise UsageError(
                f"{origin}: JSON nested too deeply to read",
                hint="give a flat array of ids, or one id per line",
            ) from None
        except ValueError as exc:
            raise UsageError(f"{origin}: not a JSON array: {exc}") from None
        return [_id_of(item, f"{origin}: item {n}") for n, item in enumerate(data, start=1)]
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                item = loads(line, object_pairs_hook=_pairs)
            except TooDeep:
                raise UsageError(
                    f"{origin}:{number}: JSON nested too deeply to read", hint='give one {"id": ...} per line'
                ) from None
            except ValueError as exc:
                raise UsageError(f"{origin}:{number}: not a JSON object: {exc}") from None
            ids.append(_id_of(item, f"{origin}:{number}"))
        else:
            ids.append(line)
    return ids


def _id_of(item: Any, where: str) -> str:
    if isinstance(item, str) and item.strip():
        return item.strip()
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].strip():
        return item["id"].strip()
    raise UsageError(f'{where}: expected a record id or an object with an "id"')


def record_document(record: Record) -> dict[str, Any]:
    """A record as ``records list --json`` shows it (what ``--where`` sees)."""
    return {**record.to_dict(), "status": record.fields.get("status"), "due": record.fields.get("due")}


def select(book: RecordBook, where: str | None, record_type: str | None = None) -> list[str]:
    """Ids of the records (of ``record_type``) the jq expression selects."""
    records = sorted(book.list(record_type), key=lambda r: r.id)
    if not where:
        return [r.id for r in records]
    import jq

    from workerctl.jqrun import results as jq_results
    from workerctl.sanitize import for_jq

    try:
        program = jq.compile(where)
    except ValueError as exc:
        raise UsageError(
            f"--where: {str(exc).strip()}",
            hint="a jq expression over one record, e.g. "
            '--where \'.status == "open" and .due < "2026-12-01"\'',
        ) from None
    chosen = []
    for record in records:
        try:
            results = jq_results(program, for_jq(record_document(record)))
        except ValueError as exc:
            raise UsageError(f"--where on {record.id}: {str(exc).strip()}") from None
        if truthy(results):
            chosen.append(record.id)
    return chosen


def truthy(results: list[Any]) -> bool:
    """jq's truthiness, as ``select(f)`` applies it: any output but false and null."""
    return any(value is not None and value is not False for value in results)
