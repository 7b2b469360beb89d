"""The history's file formats: what a shard, a run file and a marker hold, and the
constants of the layout (``store`` and ``reindex`` both write these files).

Kept apart from ``store`` so that the modules that write the files import their
format from one place, and none of them imports ``store`` (which calls them).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workerctl.digits import whole_number
from workerctl.errors import DamagedFile, StorageError
from workerctl.names import STORED_ID
from workerctl.runs.states import STATES, now_iso
from workerctl.storage import fs
from workerctl.storage.atomic import read_json, write_text_atomic
from workerctl.storage.shapes import FieldSpec, json_object, list_of, text_of, tinydb_file

SHARD_BYTES = 64 * 1024  # a new shard starts past this size: bounded rewrite cost
TABLE = "runs"
COMPLETE = "complete"  # written last into a folder a reindex built, before its swap
#: while a reindex runs: one note per run changed meanwhile (``History.note_change``)
JOURNAL = "reindexing"
JOURNAL_OWNER = ".owner"  # the reindex's process (pid, start, host): a dead one's journal is swept
STAGE = "reindex.stage"  # the new index and cross-run indexes a reindex builds, swapped in
#: in ``index/``: the newest shard's number, believed only while the folder agrees (that
#: shard exists, the next does not): a hint that spares listing the folder, which grows
#: with the history (11,628 files at a million runs)
TOP_NOTE = ".top"

_STATUS = frozenset(STATES)
_OPT_STR = (str, type(None))
#: an id read from a state file that becomes a path (``runs/ab/ID.json``, a marker): the
#: stored-id rule, so that no state file can name a path elsewhere (``storage.fs``
#: refuses a climbing path too, whatever made it)
RUN_ID = text_of("A-Za-z0-9_-", STORED_ID.max_length, "a run id (letters, digits, '-' and '_')")
_OPT_NUMBER = (int, float, type(None))
_OPT_COUNT = (int, type(None))
#: every field of ``Run.summary()`` must be there and of its kind: renderers, ``--json``,
#: the stats of a history read without its indexes index them directly, so a summary
#: holding the wrong kind (a ``preview`` of 5, a ``duration`` of "x") is a damaged shard,
#: exit 4 naming it, not a traceback in whichever command meets it first. (All of them
#: checked, a column at a time: about 0.13 ms for a 64 KB shard, which takes 0.32 ms to parse.)
SUMMARY_FIELDS: dict[str, FieldSpec] = {
    "id": RUN_ID,
    "worker": str,
    "status": _STATUS,
    "created": str,
    "started": _OPT_STR,
    "finished": _OPT_STR,
    "duration": _OPT_NUMBER,
    "record_id": _OPT_STR,
    "record_type": _OPT_STR,
    "trigger": _OPT_STR,
    "executor": _OPT_STR,
    "config_hash": _OPT_STR,
    "preview": _OPT_STR,
    "error_kind": _OPT_STR,
    "error_message": _OPT_STR,
    "needs_review": (bool, type(None)),
    "review": _OPT_STR,
    "rerun_of": _OPT_STR,
    "iterations": int,
    "tokens": int,
    "side_effects": int,
}
#: fields later versions added: of their kind where a summary holds them
SUMMARY_ADDED: dict[str, FieldSpec] = {
    "input_tokens": _OPT_COUNT,
    "output_tokens": _OPT_COUNT,
    "model": _OPT_STR,
    "cost": _OPT_NUMBER,
    "currency": _OPT_STR,
    "failed_checks": list_of(str, "a list of check names, or null", nullable=True),
}
SHARD_SHAPE = tinydb_file(TABLE, SUMMARY_FIELDS, optional=SUMMARY_ADDED)
RUN_SHAPE = json_object(
    {
        "id": RUN_ID,
        "worker": str,
        "status": _STATUS,
        "created": str,
        "config": dict,
        "config_hash": str,
        "executor": str,
        "transitions": list,
        "iterations": list,
        "context": dict,
        "side_effects": list,
        "owner": dict,
        "_shard": int,
        "_doc": int,
    }
)
MARKER_SHAPE = json_object(
    {
        "id": RUN_ID,
        "shard": int,
        "doc": int,
        "status": _STATUS,
        "pid": (int, type(None)),
        "host": _OPT_STR,
    }
)
PRUNE_SHAPE = json_object({"ids": list_of(RUN_ID, "a list of run ids"), "cutoff": str})


def marker_doc(
    run_id: str, status: str, worker: str, record_id: str | None, slot: tuple[int, int], owner: dict
) -> dict:
    """A run's marker. One whose content was lost in a power cut reads as ownerless,
    and its run is settled from its run file, which is what it needs after a power
    cut; so its data is not fsynced."""
    return {
        "id": run_id,
        "shard": slot[0],
        "doc": slot[1],
        "status": status,
        "worker": worker,
        "record_id": record_id,
        "pid": owner.get("pid"),
        "host": owner.get("host"),
        "proc_start": owner.get("proc_start"),
        "boot_id": owner.get("boot_id"),
        "pid_ns": owner.get("pid_ns"),
        "remote": owner.get("remote"),
        "since": now_iso(),
    }


def any_damaged(folder: Path) -> bool:
    """Whether a shard in ``folder`` does not read as one (kept aside for a person)."""
    for path in fs.glob(folder, "*.json"):
        try:
            read_json(path, shape=SHARD_SHAPE)
        except DamagedFile:
            return True
    return False


def numbered(names: Iterable[str]) -> list[int]:
    """The numbers of the numbered files (``NNNNNN.json``: index shards, ref logs) among
    ``names``, sorted, each once."""
    found = (whole_number(n[:-5]) for n in names if n.endswith(".json"))
    return sorted({n for n in found if n is not None})


def write_top_note(index: Path, shard: int) -> None:
    """Note ``shard`` as the newest of the index folder ``index`` (``TOP_NOTE``). After
    it the note says ``shard`` or is gone: one that cannot be written is removed, so a
    note never falls behind the newest shard (a stale one left beside a new shard, then
    a prune's hole above it, would be believed: ``History._top_shard``). Only if it can
    be neither written nor removed does the caller's write stop."""
    note = index / TOP_NOTE
    try:
        # not a numbered write point: written only when missing or behind, so the
        # fault-injection tests' numbering would shift; any note is checked when read
        write_text_atomic(note, str(shard), sync_data=False, cache=True)
    except (OSError, StorageError):
        fs.unlink(note, missing_ok=True)  # a full disk still removes a file
