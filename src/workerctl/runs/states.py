"""A run's states and the transitions between them, its id, its times, its preview.

pending (asked for) → queued (handed to an executor) → running → completed |
failed; cancelled from any unfinished state; failed also from pending or queued
when a run dies before it starts (its process crashed). No other transitions.

Kept apart from the Run record (``runs.model``) so that reading the history
(``runs list``, the index, the crash sweep) needs no dataclasses: importing them
costs a cold command about 10 ms (``inspect`` and what it pulls in).
"""

from __future__ import annotations

import datetime as dt
import os

PENDING, QUEUED, RUNNING = "pending", "queued", "running"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
STATES = (PENDING, QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
UNFINISHED = (PENDING, QUEUED, RUNNING)
FINISHED = (COMPLETED, FAILED, CANCELLED)
TRANSITIONS = {
    PENDING: (QUEUED, FAILED, CANCELLED),
    QUEUED: (RUNNING, FAILED, CANCELLED),
    RUNNING: (COMPLETED, FAILED, CANCELLED),
    COMPLETED: (),
    FAILED: (),
    CANCELLED: (),
}

ERROR_KINDS = {
    "worker_not_runnable": "(older histories only) the worker was paused, or a draft run on a "
    "record not marked safe for testing without --test; such starts are now refused before a "
    "run exists (exit 5)",
    "record_missing": "the linked record does not exist (any more)",
    "record_access_denied": "the record exists but this worker may not access it",
    "missing_context": "the worker lacks the context source the run needed",
    "tool_not_allowed": "the worker called a tool that was not offered to it (unknown, "
    "or outside its allowed tool categories)",
    "read_refused": "a tool read a record whose type is outside the worker's context sources",
    "write_refused": "a write to a record outside the run's write scope (a possible prompt injection)",
    "source_unavailable": "a record source's server could not be reached, kept failing "
    "(5xx) or asked to wait too long (rate limit)",
    "source_auth_failed": "a record source's server refused the credentials (401)",
    "record_changed": "the record changed on its server since the run read it; the update was refused",
    "provider_unavailable": "the model provider or program could not be reached "
    "(connection refused, DNS, timeouts, 5xx after the client's retries)",
    "rate_limited": "the model provider asked to slow down (HTTP 429) after the client's retries",
    "provider_auth_failed": "the model provider refused the credentials (401/403) or none were set",
    "model_not_installed": "the executor's library does not know the model (its plugin or model "
    "file is not installed)",
    "unsupported_feature": "the model cannot do what the worker needs (tools, schemas, attachments)",
    "context_too_long": "the prompt (instructions, context records, tool results) does not fit "
    "the model's context window",
    "model_refused": "the model or its provider's content filter refused the job",
    "executor_error": "the executor failed while doing a step",
    "state_unusable": "a file workerctl keeps its state in (under .workerctl) could not be used "
    "while the run went on: damaged, a planted link, or refused by the system (full disk, "
    "read-only, permissions); the message names the file",
    "timeout": "the run took longer than the worker's timeout",
    "max_iterations": "the worker used all its iterations without a final answer",
    "invalid_output": "the executor returned something that is not a valid step or output",
    "output_rejected": "the output failed a review check that stands before a write (not an answer "
    "to the task, cut off, personal data from another record): kept on the run, not written",
    "cancelled": "a person or script cancelled the run",
    "crashed": "the process running it died; found and marked by a later command",
    "outcome_unknown": "a remote executor's broker (Redis) lost the run's job before its "
    "result came back: what it did is what it reported before; a write it may have made "
    "is unknown in the ledger until a person settles it",
}

#: the kind of a run (or a batch's record) that met the history's own problem: exit 4
STATE_UNUSABLE = "state_unusable"

# Failures whose cause may be gone by itself (a person stopped it, a process died, a
# provider or a record source was down or slow): the duplicate guard lets an unchanged run of them start
# again. Any other kind repeats as long as nothing changes (``runs.duplicate_guard``).
# outcome_unknown too: its possible write is an unknown effect, which the guard refuses on its own.
# A key set with 'llm keys set' or a model plugin installed is outside what workerctl
# sees change, so those kinds are transient too; so is a state file that could not be
# used (a link removed, space freed: the worker is not the cause).
TRANSIENT_KINDS = frozenset(
    {
        "cancelled",
        "crashed",
        "outcome_unknown",
        "provider_unavailable",
        "state_unusable",
        "rate_limited",
        "provider_auth_failed",
        "model_not_installed",
        "source_unavailable",
        "timeout",
    }
)

# A start refused because the worker was paused (or a draft): older histories recorded
# it as a failed run of this kind. A refusal is not a run: the history's counts keep
# such a run under REFUSED, not under a status, so ``runs stats`` and success rates
# leave it out, while what counts files (``runs prune --dry-run``) still finds it;
# ``runs list`` and troubleshooting still show it.
OLD_REFUSAL_KIND = "worker_not_runnable"
REFUSED = "refused"  # the key old refusals are counted under (not a status)


def is_old_refusal(summary: dict[str, object]) -> bool:
    """Whether a run (its summary) is a refusal an older workerctl recorded as a run."""
    return summary.get("error_kind") == OLD_REFUSAL_KIND


def counted_as(summary: dict[str, object]) -> str:
    """The key a run is counted under in the history's counts: its status, or REFUSED."""
    return REFUSED if is_old_refusal(summary) else str(summary["status"])


# Crockford's base32 without i, l, o, u: easy to read aloud and to type.
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 8
PREVIEW_LENGTH = 240


class TransitionError(Exception):
    """An attempt to move a run along a transition the state machine forbids."""


def new_run_id() -> str:
    # 32 symbols divide 256 evenly, so every symbol is equally likely
    return "".join(ID_ALPHABET[b % 32] for b in os.urandom(ID_LENGTH))


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def preview_of(text: str | None, limit: int = PREVIEW_LENGTH) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
