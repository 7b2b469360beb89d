"""The Run record: its configuration, iterations, tool calls, output, error, review.

Its states and transitions are ``runs.states`` (imported here too, so that the
record and its state machine read as one model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workerctl.runs.states import (
    CANCELLED,
    COMPLETED,
    ERROR_KINDS,
    FAILED,
    FINISHED,
    ID_ALPHABET,
    ID_LENGTH,
    PENDING,
    PREVIEW_LENGTH,
    QUEUED,
    RUNNING,
    STATES,
    TRANSITIONS,
    UNFINISHED,
    TransitionError,
    new_run_id,
    now_iso,
    parse_iso,
    preview_of,
)

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "ERROR_KINDS",
    "FAILED",
    "FINISHED",
    "ID_ALPHABET",
    "ID_LENGTH",
    "PENDING",
    "PREVIEW_LENGTH",
    "QUEUED",
    "RUNNING",
    "STATES",
    "TRANSITIONS",
    "UNFINISHED",
    "Iteration",
    "Review",
    "Run",
    "RunError",
    "ToolCallRecord",
    "TransitionError",
    "new_run_id",
    "now_iso",
    "parse_iso",
    "preview_of",
]


@dataclass
class RunError:
    kind: str
    message: str
    detail: str = ""


@dataclass
class ToolCallRecord:
    name: str
    arguments: Any
    category: str | None
    allowed: bool
    ok: bool = False
    result_summary: str = ""
    reason: str = ""
    writes: bool = False
    records_read: list[dict[str, str]] = field(default_factory=list)  # [{type, id}]
    records_written: list[dict[str, str]] = field(default_factory=list)  # [{kind, type, id}]
    error: str = ""  # what the tool (or the gate) answered when the call failed; "" when it did not
    # a read or write the records API refused: {what: read|write, id, type}
    refused_record: dict[str, str] | None = None
    # the id the executor gave the call ("" if none): a replayed step gives it again
    id: str = ""
    # a read tool's answer as the run got it, {ok, result} (a write's is not kept):
    # ``worker try --reads recorded`` gives it again; None in older runs
    read_result: dict[str, Any] | None = None


@dataclass
class Iteration:
    number: int
    started: str
    finished: str = ""
    text: str | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""
    # why the step ended ("stop", "tool_calls", "length", "content_filter", ...; see
    # engine.step.FINISH_REASONS); None in runs recorded before it was kept
    finish_reason: str | None = None
    # the fingerprint of the request this step answered (``engine.replay.fingerprint``):
    # ``worker try --replay`` reuses the answer of a step whose request is the same;
    # None in runs recorded before it was kept, and for a step that got no answer
    request: str | None = None


def _iteration(data: dict[str, Any], output: str | None) -> Iteration:
    values = {**data, "tool_calls": [ToolCallRecord(**c) for c in data.get("tool_calls", [])]}
    if values.pop("text_is_output", False):
        values["text"] = output  # the same string object: held once in memory too
    return Iteration(**values)


@dataclass
class Review:
    verdict: str  # approved | needs_changes | rejected
    reviewer: str
    time: str
    answers: dict[str, Any] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    note: str = ""


@dataclass
class Run:
    id: str
    worker: str
    config_hash: str
    config: dict[str, Any]
    executor: str
    created: str
    status: str = PENDING
    transitions: list[dict[str, str]] = field(default_factory=list)
    record_id: str | None = None
    record_type: str | None = None
    record_fingerprint: str | None = None
    record_title: str | None = None
    trigger: str = "manual"
    reason: str = ""
    test: bool = False
    rerun_of: str | None = None
    plugins: dict[str, str] = field(default_factory=dict)
    needs_review: bool = False
    review_reasons: list[str] = field(default_factory=list)  # why it needs a person
    # "waiting": it holds writes for a person (runs/approval.py); then "approved"/"rejected"
    approval: str | None = None
    output_mode: str = ""
    iterations: list[Iteration] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    side_effects: list[dict[str, Any]] = field(default_factory=list)
    # every record the run read, in order: {type, id, by} with by "context" or
    # "tool" (then also tool and call "ITERATION.INDEX"); None for runs recorded
    # before reads were kept, so a check can tell "read nothing" from "not known"
    reads: list[dict[str, str]] | None = None
    output: str | None = None
    error: RunError | None = None
    review: Review | None = None
    owner: dict[str, Any] = field(default_factory=dict)
    worker_version: int | None = None  # the stored worker version it started with
    usage: dict[str, Any] = field(default_factory=dict)  # tokens in total and per model
    cost: dict[str, Any] | None = None  # an estimate from the workspace's price table
    # what review compares an output with (None in runs recorded before it was kept,
    # so a check can tell "saw nothing" from "not known"):
    # record id -> its snapshot when the run first read it (``runs.evidence.snapshot``:
    # type, title, fields, fingerprints of fields and comments, comment authors, ...)
    seen: dict[str, dict[str, Any]] | None = None
    # the linked record's snapshot at the moment the output mode wrote to it
    record_at_write: dict[str, Any] | None = None
    # the automatic review checks decided when the run finished: [{key, title, verdict,
    # evidence}] (evidence kept for checks that did not pass); None: not checked
    checks: list[dict[str, Any]] | None = None

    # -- state machine --

    def move(self, status: str, at: str | None = None) -> None:
        if status not in TRANSITIONS[self.status]:
            raise TransitionError(f"run {self.id}: {self.status} → {status} is not allowed")
        self.status = status
        self.transitions.append({"status": status, "at": at or now_iso()})

    def time_of(self, status: str) -> str | None:
        for t in self.transitions:
            if t["status"] == status:
                return t["at"]
        return None

    @property
    def finished_at(self) -> str | None:
        return self.transitions[-1]["at"] if self.status in FINISHED and self.transitions else None

    @property
    def started_at(self) -> str | None:
        return self.time_of(RUNNING)

    @property
    def duration(self) -> float | None:
        start = self.started_at or self.created
        end = self.finished_at
        if not end:
            return None
        return max(0.0, (parse_iso(end) - parse_iso(start)).total_seconds())

    @property
    def preview(self) -> str:
        return preview_of(self.output)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    # -- serialisation --

    def to_dict(self) -> dict[str, Any]:
        """Like ``dataclasses.asdict`` without its deep copies (this is on the hot path)."""
        data = dict(self.__dict__)
        data["iterations"] = [
            {**it.__dict__, "tool_calls": [dict(c.__dict__) for c in it.tool_calls]} for it in self.iterations
        ]
        data["error"] = dict(self.error.__dict__) if self.error else None
        data["review"] = asdict(self.review) if self.review else None
        return data

    def to_stored(self) -> dict[str, Any]:
        """``to_dict`` as the run file holds it: the final answer is stored once, as
        ``output``; the iteration that gave it says ``text_is_output`` instead of a
        second copy (a 1 MB output is a 1 MB run file, not 2 MB)."""
        data = self.to_dict()
        if self.output is not None and data["iterations"]:
            last = data["iterations"][-1]
            if last.get("text") is self.output or last.get("text") == self.output:
                data["iterations"][-1] = {**last, "text": None, "text_is_output": True}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """A run from its stored form, every part held to the type declared here
        (``runs.typed``): a ValueError naming the first that is not."""
        from workerctl.runs.typed import run_problem

        problem = run_problem(data, cls)
        if problem:
            raise ValueError(problem)
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["iterations"] = [_iteration(it, data.get("output")) for it in data.get("iterations", [])]
        if data.get("error"):
            values["error"] = RunError(**data["error"])
        if data.get("review"):
            values["review"] = Review(**data["review"])
        return cls(**values)

    def comment_text(self, effect: dict[str, Any]) -> str:
        """The text of one of this run's comment writes (an output mode's is the run's
        output, stored once): what it posted, or will post once a person approves it."""
        return str(self.output or "") if effect.get("text_is_output") else str(effect.get("text") or "")

    def summary(self) -> dict[str, Any]:
        """The small index document kept apart from the run body (see store.py)."""
        return {
            "id": self.id,
            "worker": self.worker,
            "status": self.status,
            "created": self.created,
            "started": self.started_at,
            "finished": self.finished_at,
            "duration": self.duration,
            "record_id": self.record_id,
            "record_type": self.record_type,
            "trigger": self.trigger,
            "executor": self.executor,
            "config_hash": self.config_hash,
            "preview": preview_of(self.output, 160),
            "error_kind": self.error.kind if self.error else None,
            "error_message": preview_of(self.error.message, 160) if self.error else None,
            "needs_review": self.needs_review,
            "review": self.review.verdict if self.review else None,
            "rerun_of": self.rerun_of,
            "iterations": len(self.iterations),
            "tokens": sum(
                (it.usage.get("input_tokens") or 0) + (it.usage.get("output_tokens") or 0)
                for it in self.iterations
            ),
            "input_tokens": self.usage.get("input_tokens"),
            "output_tokens": self.usage.get("output_tokens"),
            "model": _main_model(self.usage),
            "cost": self.cost.get("amount") if self.cost else None,
            "currency": self.cost.get("currency") if self.cost else None,
            "side_effects": len(self.side_effects),
            "failed_checks": failed_checks(self.checks),
        }


def failed_checks(checks: list[dict[str, Any]] | None) -> list[str] | None:
    """The keys of the automatic checks that failed when the run finished; None when
    they were not decided (a run still going, or recorded before checks were kept)."""
    if checks is None:
        return None
    return [c["key"] for c in checks if c.get("verdict") == "fail"]


#: ``runs list --json``: each run summary's fields (``Run.summary``) and what they mean;
#: docs/json.md's table is these rows (tests/test_json_docs.py)
SUMMARY_FIELDS: dict[str, str] = {
    "id": "the run id (8 characters; any unique prefix works with `--id`)",
    "worker": "the worker's name",
    "status": "`pending`, `queued`, `running`, `completed`, `failed` or `cancelled`",
    "created": "when the run was asked for",
    "started": "when it started running, or null",
    "finished": "when it finished, or null",
    "duration": "seconds from start (or creation) to finish, or null",
    "record_id": "the linked record, or null for a run tied to no record",
    "record_type": "that record's type (`task`, ...), or null",
    "trigger": "`manual`, `cron`, `script` or `rerun`",
    "executor": "the executor's name",
    "config_hash": "the hash of the worker configuration it ran with",
    "preview": "the first 160 characters of the output",
    "error_kind": "the error kind of a failed or cancelled run, or null",
    "error_message": "the first 160 characters of its message, or null",
    "needs_review": (
        "true when the output can influence a customer response, an invoice, a project "
        "update or a support decision (see `review_reasons` in `run inspect`)"
    ),
    "review": "the review verdict (`approved`, `needs_changes`, `rejected`), or null",
    "rerun_of": "the id of the run this one reran, or null",
    "iterations": "how many iterations it made",
    "tokens": "input plus output tokens over all iterations",
    "input_tokens, output_tokens": (
        "the tokens its executor reported, in total, or null when it reported none (echo, command)"
    ),
    "model": "the model that used the most tokens in the run, or null",
    "cost": (
        "the estimated cost from the workspace's price table (`prices.yaml`), or null "
        "without one; an estimate, never a bill"
    ),
    "currency": "the currency of `cost`, or null",
    "side_effects": "how many side effects it recorded",
    "failed_checks": (
        "the keys of the automatic review checks that failed when the run finished (`[]`: none "
        "failed), or null when they were not decided (a run still going, or recorded before they "
        "were kept); the table marks such a completed run `✗ key,…` before its preview"
    ),
    "output": (
        "the full output text, or null (read from the run files only when printed: a bare "
        "`--json`, `--jq`, or `--json` naming it)"
    ),
}

#: ``run inspect --json``: the stored run's fields (``Run.to_dict``) and what they mean;
#: ``runs.changes.CARD_FACT_FIELDS`` follow them in docs/json.md
RUN_FIELDS: dict[str, str] = {
    (
        "id, worker, status, created, record_id, record_type, trigger, executor, config_hash, "
        "rerun_of, needs_review"
    ): "as in `runs list`",
    "config": "the worker configuration the run started with",
    "transitions": "`[{status, at}]`, one per state change",
    "record_title": "the record's title when the run started",
    "record_fingerprint": "a hash of the record's content when the run started",
    "reason": "the reason given with `--reason`",
    "test": "true when started with `--test`",
    "plugins": "plugin name → version when the run started",
    "output_mode": "the worker's output mode",
    "iterations": (
        "`[{number, started, finished, text, tool_calls, usage, stderr, finish_reason, request}]` "
        "(`finish_reason`: why the step ended, `stop`, `tool_calls`, `length`, `content_filter` "
        "or the provider's word; null in older runs; `request`: the fingerprint of the request the "
        "step answered, for `worker try --replay`, null in older runs and for a step with no "
        "answer); `tool_calls`: `[{name, arguments, "
        "category, allowed, ok, result_summary, reason, writes, records_read, records_written, "
        "error, refused_record, id, read_result}]` (`records_read`: `[{type, id}]` the records the "
        "call read; `records_written`: "
        "`[{kind, type, id}]` the writes it made; `error`: what the tool or the gate answered "
        'when the call failed, else ""; `id`: the call\'s id as the executor gave it; '
        "`read_result`: a read tool's answer `{ok, result}`, for `worker try --reads recorded`, "
        "null for a write and in older runs); `usage`: `{model, input_tokens, output_tokens, latency_ms}`, "
        "each as the executor reported it (the echo executor reports no tokens; `{}` for a step that "
        "did not finish)"
    ),
    "context": (
        "`{sources, records: [{type, id}], missing_links}`, or `{}` when the run stopped "
        "before its context was assembled (its worker or record was refused)"
    ),
    "reads": (
        "the run's whole read log, in order: `[{type, id, by}]`, `by` is `context` or `tool` "
        "(then also `tool`, the tool's name, and `call`, `ITERATION.INDEX`); null for runs "
        "recorded before reads were kept"
    ),
    "review_reasons": (
        "why the run needs a person's review (worker: tool categories, context sources, "
        "output mode; run: records read and written, sends); empty when it does not"
    ),
    "approval": (
        "`waiting` while the run holds writes for a person (`workerctl run approve ID`), then "
        "`approved` or `rejected`; null for a run that held nothing (docs/permissions.md)"
    ),
    "side_effects": (
        "`[{kind, record_id, comment_id, key, created, by, state, at, committed_at}]` "
        "(`created` false: already there, not written again; `state`: `intended` before the "
        "write, `committed` after it, `unknown` when the process died in between, `held` while "
        "it waits for a person (with `held_because` and `seen`, the record as the run saw it), "
        "`not_written` when rejected (`rejected_by`, `rejected_at`) or refused by the test "
        "sandbox (`reason`); an approved one has `approved_by`, `approved_at`; a settled one "
        "(`workerctl ledger settle`, or the next start reading the record) has `settled: {as, by, "
        "at, note}`, its state `committed` or `not_written`; a tool's comment "
        "also keeps its `text` and the `tool` that wrote it, an output mode's says `text_is_output`; "
        "an `intended` one has no `comment_id`, `created` or `committed_at` yet)"
    ),
    "output": "the full output text, or null",
    "error": "`{kind, message, detail}`, or null",
    "review": "`{verdict, reviewer, time, answers, checks, note}`, or null",
    "owner": (
        "the process that executes (or executed) it: `{pid, host, proc_start, boot_id, pid_ns}` "
        "(`boot_id` and `pid_ns`: the machine's boot and the PID namespace, within which alone a "
        "pid names one process; null where the system does not say; plus `remote` for a task queue)"
    ),
    "usage": (
        "`{input_tokens, output_tokens, models: {model: {input_tokens, output_tokens}}}` as "
        "the executor reported them (per iteration in `iterations[].usage`), or `{}` when it "
        "reported none"
    ),
    "cost": (
        "`{estimate: true, amount, currency, price_table, unpriced_models}`: `price_table` "
        "is the table's `version`; null without a price table"
    ),
    "worker_version": (
        "the stored worker version it started with (`workerctl worker restore NAME --run ID` "
        "brings it back), or null for runs stored before versions were kept"
    ),
    "seen": (
        "record id → the record as the run first read it: `{type, title, fields, fingerprint: "
        "{fields, comments}, comments, last_comment, authors, personal, at, by}` (`personal`: "
        "digests of the personal data it held; comments the run wrote are left out); null for "
        "runs recorded before it was kept"
    ),
    "record_at_write": (
        "the linked record's snapshot (the same shape) at the moment the output mode wrote, or null"
    ),
    "checks": (
        "the automatic review checks decided when the run finished: `[{key, title, verdict, "
        "evidence}]` (evidence kept for the checks that did not pass), or null"
    ),
}


def _main_model(usage: dict[str, Any]) -> str | None:
    from workerctl.runs.usage import main_model

    return main_model(usage)
