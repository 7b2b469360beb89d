"""Troubleshooting a failed run, step by step, in the original product's order.

Each step is checked against the data (the stored run, the worker now, the
record now) and its verdict says whether that step found the cause: ``fail``
(the cause is here, with the action that fixes it), ``pass`` (checked: the cause
is not here) or ``cannot_tell`` (the data does not decide), with the evidence
used. Step 1 reads the error: it finds the cause itself only for error kinds no
later step examines (a provider, a program, a timeout, a crash); for the others
it points at the step that does. The causes to rule out are attributed from the
error kind and the executor actually used (the inner executor of a remote one):
a timeout of the ``echo`` executor, which calls no provider, is never put down
to provider availability. The walk ends with the rerun advice: what changed
since the run failed, and what earlier runs already wrote.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.runs.changes import changes_since, earlier_side_effects
from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.injection import NEVER_WIDEN, RefusedCall, refused_calls
from workerctl.runs.model import ERROR_KINDS, FINISHED, Run
from workerctl.runs.states import TRANSIENT_KINDS

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.workspace import Workspace


KIND_ACTIONS = {
    "worker_not_runnable": "activate the worker ('workerctl worker activate NAME'), or run a "
    "draft with --test or on a record marked safe_for_testing",
    "record_missing": "check the record id; if the record was deleted, run the worker on the "
    "record that replaced it",
    "record_access_denied": "run a worker that may access the record, or ask its owner to "
    "allow this worker (restricted_to)",
    "missing_context": "add the needed context source to the worker (workerctl worker edit NAME)",
    "tool_not_allowed": "if the instructions ask for the tool, add its category to "
    "tool_categories if the worker should do it, or narrow the "
    "instructions so it does not try",
    "read_refused": "if the worker should read such records, add their context source "
    "(workerctl worker edit NAME); if not, narrow the instructions or remove the tool "
    "category that reads them",
    "write_refused": "if the worker's instructions ask for writes to other records, widen "
    "write_scope in the worker file; otherwise treat the text that asked for it as untrusted",
    "provider_unavailable": "check the provider or program: connection, API key, rate limit; then rerun",
    "rate_limited": "wait for the provider's limit to reset (the message gives the retry time), or "
    "raise the limit with the provider; then rerun: nothing in the worker is wrong",
    "provider_auth_failed": "set the model's key ('llm keys set NAME', or its environment variable) "
    "or fix the credentials the provider refused; then rerun: nothing in the worker is wrong",
    "model_not_installed": "install the llm plugin that provides the model ('llm install PLUGIN'; "
    "'llm models list' shows the ids) or fix executor.model in the worker; then rerun",
    "unsupported_feature": "choose a model that supports what the run asked for (the message names it), "
    "or remove what needs it from the worker (tool_categories for tools)",
    "context_too_long": "make the prompt smaller (fewer context_sources, or shorter records: the "
    "message names the largest parts) or use a model with a larger context window (executor.model); "
    "the instructions are not the cause",
    "model_refused": "read the refusal (workerctl run inspect --id ID): if the instructions or a record "
    "ask for something the model's policy refuses, reword the job or remove that record; otherwise "
    "use another model",
    "source_unavailable": "start the record source's server or fix its url in workerctl.yaml "
    "('workerctl records sources' shows whether each answers); then rerun",
    "source_auth_failed": "set the source's user and password in the environment or ~/.netrc "
    "('workerctl records sources' checks them); then rerun",
    "record_changed": "read the record again (workerctl records show ID) and rerun on its new state",
    "executor_error": "read the detail (stderr or traceback) and fix the executor or its settings",
    "state_unusable": "fix the state file the message names (remove a planted link, free disk space "
    "('workerctl runs prune'), restore a damaged file from a backup); then rerun: the worker and "
    "its executor are not the cause",
    "timeout": "raise the worker's timeout, or make the job smaller",
    "max_iterations": "narrow the instructions, or raise max_iterations if the job needs more steps",
    "invalid_output": "fix the program or prompt so that the final step returns text",
    "output_rejected": "read the output and the failed check ('workerctl run review --id ID'); make the "
    "instructions say what to answer (or give the model more room), then rerun: nothing was written",
    "cancelled": "nothing to fix unless the cancel was a mistake; rerun when ready",
    "crashed": "find why the process died (machine restart, out of memory, killed); rerun",
    "outcome_unknown": "see what the remote wrote ('workerctl ledger list --state unknown'), settle it "
    "('workerctl ledger settle RUN --written' or --not-written), then rerun; keep Redis's data "
    "(persistence) across restarts",
}


# error kinds a later step examines: kind -> (step number, step key)
LATER_STEP = {
    "worker_not_runnable": (3, "record_access"),
    "record_missing": (3, "record_access"),
    "record_access_denied": (3, "record_access"),
    "missing_context": (4, "context"),
    "read_refused": (4, "context"),
    "tool_not_allowed": (5, "tools"),
    "write_refused": (5, "tools"),
    "max_iterations": (6, "instructions"),
    "output_rejected": (6, "instructions"),
}


@dataclass
class Report:
    run_id: str
    status: str
    applicable: bool
    message: str = ""
    steps: list[Check] = field(default_factory=list)
    causes: list[Check] = field(default_factory=list)
    rerun: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the steps -----------------------------------------------------------------


def _tools_named(text: str, registry: Registry) -> list[str]:
    """Tool names, or verbs that need a write tool, that the instructions mention."""
    lowered = text.lower()
    return [name for name in registry.tools if re.search(rf"\b{re.escape(name)}\b", lowered)]


def first_fix(
    run: Run, *, history: History, records: RecordBook, registry: Registry, workspace: Workspace
) -> str:
    """The action of the first step of the walk that found the cause ("" when none
    did): what a batch's summary prints under each failed run."""
    report = troubleshoot(run, history=history, records=records, registry=registry, workspace=workspace)
    return next((step.action for step in report.steps if step.verdict == "fail" and step.action), "")


def troubleshoot(
    run: Run, *, history: History, records: RecordBook, registry: Registry, workspace: Workspace
) -> Report:
    if run.status not in ("failed", "cancelled"):
        what = "has not finished yet" if run.status not in FINISHED else "did not fail"
        return Report(
            run.id,
            run.status,
            False,
            f"run {run.id} is {run.status}: it {what}. Troubleshooting is for failed "
            f"runs; review its output with 'workerctl run review --id {run.id}'.",
        )
    config = run.config or {}
    sources = list(config.get("context_sources") or [])
    categories = list(config.get("tool_categories") or [])
    kind = run.error.kind if run.error else None
    report = Report(run.id, run.status, True)
    refused = refused_calls(run, records)
    used = executor_used(run, registry)
    report.steps = [
        _step_error(run, kind, refused, used),
        _step_record_link(run, registry, records),
        _step_record_access(run, records, config),
        _step_context(run, registry, sources, kind, refused),
        _step_tools(run, registry, config, categories, refused),
        _step_instructions(run, registry, config, categories, kind, used),
    ]
    report.causes = _causes(run, kind, report.steps, refused, used)
    report.rerun = _rerun_advice(
        run,
        changes_since(run, workspace=workspace, registry=registry, records=records),
        earlier_side_effects(run, history),
    )
    return report


def _injection_action(refused: list[RefusedCall]) -> str:
    """What to do about refused calls nothing in the instructions asked for."""
    sources = sorted({c.source for c in refused if c.possible_injection and c.source})
    where = (
        f"fix or remove the request in {'; '.join(sources)} before rerunning"
        if sources
        else "find what made the executor ask for it (its prompt or program, or a tool result it read)"
    )
    writes = any((c.refused_record or {}).get("what") == "write" for c in refused if c.possible_injection)
    never = (
        "do not widen write_scope for it: that would grant the request; treat the text that "
        "asked for it as untrusted"
        if writes
        else NEVER_WIDEN
    )
    return f"possible prompt injection: {never}; {where}"


def executor_used(run: Run, registry: Registry) -> tuple[str, bool | None]:
    """(name, calls_provider) of the executor that did the steps: a remote executor's
    ``inner`` one. ``calls_provider`` is the executor's own declaration: True (a model
    provider), False (no provider, like ``echo``) or None (unknown, like a program)."""
    from workerctl.engine.remote import as_remote

    name = run.executor
    settings = (run.config or {}).get("executor")
    executor = registry.executors.get(name)
    if as_remote(executor) is not None and isinstance(settings, dict):
        inner = settings.get("inner")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            name = inner["name"]
            executor = registry.executors.get(name)
    declared = getattr(executor, "calls_provider", None)
    return name, declared if isinstance(declared, bool) else None


def _timeout_evidence(name: str, provider: bool | None) -> tuple[str, str]:
    """What a timeout means for the executor that ran: (evidence, action)."""
    if provider is False:
        return (
            f"executor {name} calls no model provider: the run's own steps took longer than its timeout",
            "raise the worker's timeout, or make the job (or the script) shorter",
        )
    if provider:
        return (
            f"executor {name} waits on a model provider: a slow or overloaded provider, "
            "or a job too long for the timeout",
            "check the provider's status, then raise the timeout or make the job smaller",
        )
    return (
        f"executor {name} runs a program: it, or whatever it calls, took longer than the timeout",
        "time the program on its own; raise the timeout or make it faster",
    )


def _step_error(
    run: Run, kind: str | None, refused: list[RefusedCall], used: tuple[str, bool | None]
) -> Check:
    title = "Read the error message on the run card"
    if run.error is None:
        return Check(
            "error",
            title,
            UNKNOWN,
            ["the run failed without an error record"],
            "inspect it: workerctl run inspect --id " + run.id,
        )
    evidence = [
        f"kind: {kind} — {ERROR_KINDS.get(kind or '', 'an error kind from a plugin')}",
        f"message: {run.error.message}",
        f"executor: {used[0]}",
    ]
    if run.error.detail:
        evidence.append("detail: " + run.error.detail.strip().splitlines()[-1][:300])
    if kind in LATER_STEP:
        number, _key = LATER_STEP[kind]
        evidence.append(f"the cause of a {kind} error is looked for in step {number}")
        action = (
            _injection_action(refused)
            if kind in ("tool_not_allowed", "write_refused") and any(c.possible_injection for c in refused)
            else KIND_ACTIONS.get(kind or "", "")
        )
        return Check("error", title, PASS, evidence, action)
    action = _fix_of(run) or KIND_ACTIONS.get(kind or "", "read the detail")
    if kind == "timeout":
        said, action = _timeout_evidence(*used)
        evidence.append(said)
    elif kind == "invalid_output" and used[1] is not True:
        evidence.append(
            f"executor {used[0]} builds its steps from its program or script, "
            "not from a model reading the instructions"
        )
        action = "fix the program or script so that its final step returns text"
    return Check("error", title, FAIL, evidence, action)


def _step_record_link(run: Run, registry: Registry, records: RecordBook) -> Check:
    title = "Open the linked task or source record, if present"
    if run.record_id and records.peek(run.record_id) is None:
        # no command that would exit 3 is suggested: the record is gone
        return Check(
            "record_link",
            title,
            FAIL,
            [
                f"linked {run.record_type or 'record'} {run.record_id}",
                f"{run.record_id} no longer exists in any record source (deleted, or its source is gone)",
            ],
            "'workerctl records list' shows the records that exist; rerun on the record that "
            f"replaced {run.record_id}",
        )
    if run.record_id:
        return Check(
            "record_link",
            title,
            PASS,
            [f"linked {run.record_type or 'record'} {run.record_id}"],
            f"open it: workerctl records show {run.record_id}",
        )
    needs = registry.output_modes.get(run.output_mode)
    if needs is not None and needs.needs_record:
        return Check(
            "record_link",
            title,
            FAIL,
            [f"output mode {run.output_mode} needs a linked record and none was given"],
            "start the run with --task ID",
        )
    return Check(
        "record_link",
        title,
        PASS,
        ["the run was tied to no record (a sweep); its output stays on the run"],
        "nothing to open; read the output with workerctl run inspect --id " + run.id,
    )


def _step_record_access(run: Run, records: RecordBook, config: dict) -> Check:
    title = "Confirm the record still exists and the worker can access it"
    if not run.record_id:
        return Check("record_access", title, UNKNOWN, ["no linked record to check"], "")
    from workerctl.records.http import RecordSourceError

    try:
        record = records.peek(run.record_id)
    except RecordSourceError as exc:  # the record's server does not answer now
        return Check(
            "record_access",
            title,
            FAIL if exc.kind == run_kind(run) else UNKNOWN,
            [exc.message],
            exc.hint or "",
        )
    if record is None:
        return Check(
            "record_access",
            title,
            FAIL,
            [f"{run.record_id} does not exist in any record source now"],
            "check the id with 'workerctl records list'; rerun on the right record",
        )
    evidence = [f"{record.id} exists (source: {record.source})"]
    verdict, action = PASS, ""
    denied = not record.accessible_by(run.worker)
    if denied:
        verdict = FAIL
        evidence.append(f"{record.id} is restricted to {', '.join(record.restricted_to or [])}")
        action = "use a worker that may access it, or change restricted_to on the record"
    status = config.get("status")
    # restricted_to binds drafts and --test runs alike: over a denied record the
    # draft's advice (--test) would fail the same way, so it is given only without one
    if status == "draft" and not run.test and not record.safe_for_testing and not denied:
        verdict = FAIL
        evidence.append(f"the worker was a draft and {record.id} is not marked safe for testing")
        action = "run with --test, use a safe-for-testing record, or activate the worker"
    if status == "paused":
        verdict = FAIL
        evidence.append("the worker was paused when the run started")
        action = f"activate it: workerctl worker activate {run.worker}"
    if verdict == PASS:
        evidence.append(
            f"worker {run.worker} may access it" + (" (safe for testing)" if record.safe_for_testing else "")
        )
    return Check("record_access", title, verdict, evidence, action)


def run_kind(run: Run) -> str | None:
    return run.error.kind if run.error else None


def _fix_of(run: Run) -> str:
    """The fix a record source named for this very failure (``fix: ...`` in the detail)."""
    detail = (run.error.detail if run.error else "") or ""
    return detail[len("fix: ") :].strip() if detail.startswith("fix: ") else ""


def _step_context(
    run: Run, registry: Registry, sources: list[str], kind: str | None, refused: list[RefusedCall]
) -> Check:
    from workerctl.engine.context import source_for_type

    title = "Check that the worker has the needed context source"
    given = ", ".join(f"{r['type']} {r['id']}" for r in run.context.get("records", [])) or "none"
    evidence = [f"context sources: {', '.join(sources) or 'none'}", f"records given: {given}"]
    reads = [c for c in refused if (c.refused_record or {}).get("what") == "read"]
    if reads:
        target = reads[0].refused_record or {}
        needed = source_for_type(target.get("type", ""), registry)
        what = f"{target.get('type')} {target.get('id')}".strip() if target.get("id") else target.get("type")
        return Check(
            "context",
            title,
            FAIL,
            [
                *evidence,
                f"refused: {reads[0].name} read {what} (iteration {reads[0].iteration}): {reads[0].reason}",
            ]
            + ([reads[0].describe()] if reads[0].possible_injection and reads[0].source else []),
            f"add {' or '.join(needed) or target.get('type')} to context_sources if the worker should "
            f"read it (workerctl worker edit {run.worker}); otherwise narrow the instructions",
        )
    if run.record_type:
        needed = source_for_type(run.record_type, registry)
        if not set(needed) & set(sources):
            return Check(
                "context",
                title,
                FAIL,
                [
                    *evidence,
                    f"a {run.record_type} needs the context source {' or '.join(needed) or run.record_type}",
                ],
                f"add {' or '.join(needed)} to context_sources (workerctl worker edit {run.worker})",
            )
    missing = run.context.get("missing_links", [])
    if missing:
        return Check(
            "context",
            title,
            FAIL,
            [*evidence, *(f"missing: {m['link']} {m['id']}" for m in missing)],
            "fix the broken links on the record, or import the missing records",
        )
    if not run.context and kind in ("worker_not_runnable", "record_missing", "record_access_denied"):
        return Check(
            "context",
            title,
            UNKNOWN,
            [*evidence, "the run stopped before its context was assembled"],
            "fix the steps above first",
        )
    return Check("context", title, PASS, evidence, "")


def _step_tools(
    run: Run, registry: Registry, config: dict, categories: list[str], refused: list[RefusedCall]
) -> Check:
    """Refused calls the instructions asked for get the "allow it?" advice; the others
    are named as possible prompt injection and never get it."""
    title = "Check that the allowed tool categories include the action it was asked to perform"
    evidence = [f"allowed categories: {', '.join(categories) or 'none'}"]
    refused = [c for c in refused if (c.refused_record or {}).get("what") != "read"]  # step 4's
    for call in refused:
        if call.refused_record:
            evidence.append(f"refused: {call.name} {call.asked_for}: {call.reason}")
        else:
            evidence.append(
                f"refused: {call.name} (category {call.category or 'none: unknown tool'}) in the run"
            )
        if call.possible_injection:
            evidence.append(call.describe())
    named = [
        t
        for t in _tools_named(config.get("instructions", ""), registry)
        if registry.tools[t].category not in categories
    ]
    for name in named:
        evidence.append(
            f"the instructions name {name}, in category {registry.tools[name].category}, which is not allowed"
        )
    if refused or named:
        wanted = sorted(
            {c.category for c in refused if c.category and not c.possible_injection and not c.refused_record}
            | {registry.tools[t].category for t in named}
        )
        actions = []
        if wanted:
            actions.append(
                f"allow {', '.join(wanted)} if the worker should do that, or remove it from the instructions"
            )
        if any(c.refused_record and not c.possible_injection for c in refused):
            actions.append(
                f"the instructions ask for writes outside the run's record: set write_scope "
                f"(linked or context) if the worker should make them (workerctl worker edit {run.worker})"
            )
        if any(c.possible_injection for c in refused):
            actions.append(_injection_action(refused))
        return Check("tools", title, FAIL, evidence, "; ".join(actions))
    calls = sum(len(it.tool_calls) for it in run.iterations)
    if not run.iterations:
        return Check("tools", title, UNKNOWN, [*evidence, "the run made no step"], "")
    evidence.append(f"{calls} tool call(s), all allowed")
    return Check("tools", title, PASS, evidence, "")


def _step_instructions(
    run: Run,
    registry: Registry,
    config: dict,
    categories: list[str],
    kind: str | None,
    used: tuple[str, bool | None],
) -> Check:
    title = "Edit the worker instructions if they are too broad or ask for unsupported work"
    evidence, verdict = [], PASS
    if kind == "max_iterations":
        verdict = FAIL
        evidence.append(
            f"it used all {config.get('max_iterations')} iterations without an "
            "answer: the job may be too broad"
        )
    named = [
        t
        for t in _tools_named(config.get("instructions", ""), registry)
        if registry.tools[t].category not in categories
    ]
    if named:
        verdict = FAIL
        evidence.append(f"asks for {', '.join(named)}, outside the allowed categories")
    mode = registry.output_modes.get(run.output_mode)
    wrong_type = run.record_type is not None and run.record_type not in (mode.needs_record if mode else ())
    if mode is not None and mode.needs_record and (run.record_id is None or wrong_type):
        verdict = FAIL
        evidence.append(
            f"output mode {run.output_mode} cannot carry output for a "
            f"{run.record_type or 'run without a record'}"
        )
    if kind == "output_rejected" and run.error is not None:
        verdict = FAIL
        evidence.append(f"{run.error.message}: the output was kept on the run and nothing was written")
        evidence.extend(run.error.detail.splitlines()[:3])
    if kind == "invalid_output" and used[1] is True:
        verdict = FAIL
        evidence.append(
            f"the model behind {used[0]} gave no usable output text: the "
            "instructions may not say clearly what to return"
        )
    text = config.get("instructions", "")
    if verdict == PASS:
        if "do not" not in text.lower() and "stop" not in text.lower():
            verdict = UNKNOWN
            evidence.append("the instructions say neither what not to do nor when to stop")
        else:
            evidence.append("the instructions fit the allowed tools and output mode")
    action = f"edit the instructions: workerctl worker edit {run.worker}" if verdict != PASS else ""
    return Check("instructions", title, verdict, evidence, action)


CAUSES = (
    "permissions",
    "tool access",
    "connected data",
    "provider availability",
    "instructions scope",
    "executor or program",
)
CAUSE_KINDS = {
    "permissions": ("worker_not_runnable", "record_access_denied", "source_auth_failed"),
    "tool access": ("tool_not_allowed", "write_refused"),
    "connected data": (
        "context_too_long",
        "record_missing",
        "missing_context",
        "source_unavailable",
        "record_changed",
        "read_refused",
    ),
    "provider availability": (
        "provider_unavailable",
        "rate_limited",
        "provider_auth_failed",
        "model_not_installed",
    ),
    "instructions scope": ("max_iterations", "output_rejected", "model_refused"),
    "executor or program": ("executor_error", "unsupported_feature", "context_too_long"),
}


def _causes(
    run: Run, kind: str | None, steps: list[Check], refused: list[RefusedCall], used: tuple[str, bool | None]
) -> list[Check]:
    """Each cause the original product names, decided from the error kind and the
    executor that ran: ``fail`` it is the cause, ``pass`` it is ruled out."""
    name, provider = used
    suspect = kind in ("tool_not_allowed", "write_refused") and any(c.possible_injection for c in refused)
    by_key = {s.key: s for s in steps}
    out = []
    for cause in CAUSES:
        verdict, evidence, action = PASS, [f"error kind {kind} is not about {cause}"], ""
        if kind in CAUSE_KINDS[cause]:
            verdict, evidence = (
                FAIL,
                [f"error kind {kind}" + (" (possible prompt injection)" if suspect else "")],
            )
            action = _injection_action(refused) if suspect else _fix_of(run) or KIND_ACTIONS.get(kind, "")
        elif kind is None:
            verdict, evidence = UNKNOWN, ["the run has no error record"]
        elif cause == "provider availability":
            verdict, evidence, action = _provider_cause(kind, name, provider)
        elif (
            cause == "instructions scope"
            and by_key.get("instructions") is not None
            and by_key["instructions"].verdict == FAIL
            and kind not in ("cancelled", "crashed", *PROVIDER_KINDS)
        ):
            verdict, evidence = FAIL, by_key["instructions"].evidence
            action = by_key["instructions"].action
        elif (
            cause == "executor or program" and kind in ("timeout", "invalid_output") and provider is not True
        ):
            verdict = FAIL
            evidence = [
                f"error kind {kind} from executor {name}, which "
                + ("calls no provider" if provider is False else "runs a program")
            ]
            action = (
                _timeout_evidence(name, provider)[1]
                if kind == "timeout"
                else "fix the program or script so that its final step returns text"
            )
        elif cause == "executor or program" and kind == "crashed":
            verdict, evidence = UNKNOWN, ["the process executing the run died; the detail may say why"]
        out.append(Check(cause, cause, verdict, evidence, action))
    return out


# what the model or its provider said, not what the instructions asked: the walk never
# puts these down to the instructions (they have their own fix in KIND_ACTIONS)
PROVIDER_KINDS = (
    "provider_unavailable",
    "rate_limited",
    "provider_auth_failed",
    "model_not_installed",
    "unsupported_feature",
    "context_too_long",
)


def _provider_cause(kind: str, name: str, provider: bool | None) -> tuple[str, list[str], str]:
    if kind not in ("timeout", "executor_error", "invalid_output"):
        return PASS, [f"error kind {kind} is not about provider availability"], ""
    if provider is False:
        return PASS, [f"executor {name} calls no model provider"], ""
    if provider is None:
        return (
            UNKNOWN,
            [f"error kind {kind} from executor {name}, a program that may or may not call a provider"],
            "",
        )
    if kind == "timeout":
        said, action = _timeout_evidence(name, provider)
        return UNKNOWN, [said], action
    return (
        UNKNOWN,
        [
            f"error kind {kind} from executor {name}, which calls a model provider: "
            "the detail says whether the provider answered"
        ],
        "",
    )


def _rerun_advice(run: Run, changes: dict[str, Any], effects: list[dict[str, Any]]) -> dict[str, Any]:
    # only what was written counts: an effect settled as not written did not happen,
    # and an unknown one is named as such
    written = [e for e in effects if e.get("created", True) and e.get("state", "committed") == "committed"]
    unknown = [e for e in effects if e.get("state") in ("unknown", "intended")]
    if changes["anything"]:
        what = [k for k in ("worker", "record", "plugins") if changes[k]["changed"]]
        advice = (
            f"{', '.join(what)} changed since the run failed: a rerun may behave "
            f"differently ('workerctl run rerun --id {run.id}')"
        )
    else:
        advice = (
            "nothing changed since the run failed (same worker configuration, record "
            "and plugins): fix the cause before rerunning; the duplicate guard refuses "
            "the rerun without --allow-repeat"
        )
        if run.error is not None and run.error.kind in TRANSIENT_KINDS:
            advice = (
                f"{run.error.kind} is transient: once its cause is gone a rerun may complete "
                f"('workerctl run rerun --id {run.id}')"
            )
    if written:
        advice += (
            f". Earlier runs of {run.worker} on {run.record_id} already wrote "
            f"{len(written)} side effect(s); a rerun may duplicate them"
        )
    if unknown:
        advice += (
            f". {len(unknown)} side effect(s) of earlier runs are unknown: settle them first "
            f"('workerctl ledger list --record {run.record_id} --state unknown')"
        )
    return {"changes": changes, "side_effects": effects, "advice": advice}
