"""Run cards: the text a person reads for one run (``run start``, ``run inspect``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workerctl import render
from workerctl.history.ledger import effects_as_stated
from workerctl.runs.model import Run

if TYPE_CHECKING:
    from workerctl.runs.checks import Check
    from workerctl.runs.follow import Event
    from workerctl.runs.troubleshoot import Report


def effect_text(effect: dict[str, Any], run_id: str = "ID") -> str:
    """One side effect in words: "comment c-4 on T-1042 (written)"."""
    not_written = "not written (settled)"
    if effect.get("rejected_by"):
        not_written = f"not written: rejected by {effect['rejected_by']}"
    elif effect.get("reason"):
        not_written = f"not written: {effect['reason']}"
    state = {
        "intended": "intended, not confirmed yet",
        "unknown": "UNKNOWN: the process died during the write; settle it with 'workerctl ledger settle'",
        "not_written": not_written,
        "held": f"HELD for a person: {effect.get('held_because') or 'the run needs review'}; "
        f"'workerctl run approve {run_id}' writes it, 'workerctl run reject {run_id}' drops it",
    }.get(effect.get("state") or "")
    if state is None:
        state = "written" if effect.get("created", True) else "already there, not written again"
    what = " ".join(x for x in (effect["kind"], effect.get("comment_id", "")) if x)
    return f"{what} on {effect.get('record_id')} ({state})"


def _arguments(arguments: Any) -> str:
    """Tool arguments as ``record_id=T-1042, text="…"``: never a Python dict."""
    import json

    if isinstance(arguments, dict):
        return ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in arguments.items()
        )
    return json.dumps(arguments, ensure_ascii=False, default=str)


def _time(iso: str | None) -> str:
    return iso[11:23] if iso else "-"


def _known(value: object) -> str:
    """A part a run file may leave out (``runs.typed``: usage's counts, cost's currency)."""
    return "?" if value is None else str(value)


def run_card(run: Run, facts: dict[str, Any], *, full_output: bool = True) -> str:
    lines = []
    head = (
        f"{render.status_cell(run.status)}  run {render.colour(run.id, bold=True)}  "
        f"worker {run.worker}  created {render.ago(run.created)} ({run.created})"
    )
    lines.append(head)

    def row(key: str, value: str) -> None:
        lines.append(f"  {key:<13}{value}")

    lines.extend(verdict_lines(run))

    if run.record_id:
        exists = {True: "still exists", False: "NO LONGER EXISTS", None: "unknown"}[
            facts.get("record_exists")
        ]
        title = f' "{run.record_title}"' if run.record_title else ""
        row(
            "record",
            f"{run.record_type or 'record'} {run.record_id}{title} ({exists}; "
            f"workerctl records show {run.record_id})",
        )
    else:
        row("record", "none (a run tied to no record)")
    row(
        "trigger",
        run.trigger
        + (f" — {run.reason}" if run.reason else "")
        + (" [test]" if run.test else "")
        + (f" [rerun of {run.rerun_of}]" if run.rerun_of else ""),
    )
    row("executor", run.executor)
    drift = str(facts.get("worker_now"))
    drift_text = {
        "unchanged": "worker unchanged since",
        "changed": f"worker CHANGED since (workerctl worker diff {run.worker} --run {run.id})",
        "invalid now": "worker file is invalid now",
        "deleted": "worker deleted since",
    }
    row("config", f"{run.config_hash} ({drift_text.get(drift, drift)})")
    times = " → ".join(f"{t['status']} {_time(t['at'])}" for t in run.transitions)
    row("times", f"{times}  ({render.duration(run.duration)})")
    if run.usage:
        tokens = [_known(run.usage.get(kind)) for kind in ("input_tokens", "output_tokens")]
        used = f"{tokens[0]} input + {tokens[1]} output tokens"
        cost = run.cost or {}
        if cost.get("amount") is not None:
            used += (
                f"; estimated cost {cost['amount']:.4f} {_known(cost.get('currency'))} (price table "
                f"{_known(cost.get('price_table'))}"
                + (
                    f"; no price for {', '.join(cost['unpriced_models'])}"
                    if cost.get("unpriced_models")
                    else ""
                )
                + ")"
            )
        elif cost.get("error"):
            used += f"; no cost estimate: {cost['error']}"
        row("tokens", used)
    if run.approval == "waiting":
        held = sum(1 for e in run.side_effects if e.get("state") == "held")
        row(
            "approval",
            f"WAITING for a person: {held} write(s) held; "
            f"'workerctl run approve {run.id}' or 'workerctl run reject {run.id}'",
        )
    elif run.approval:
        row("approval", run.approval)
    if run.error:
        row("error", render.colour(f"{run.error.kind}: {run.error.message}", "failed"))
        if run.error.detail:
            detail = run.error.detail.rstrip().splitlines()
            for line in detail[-12:]:
                lines.append(f"  {'':<13}{line}")
    ctx = run.context or {}
    if ctx:
        recs = ", ".join(f"{r['type']} {r['id']}" for r in ctx.get("records", [])) or "none"
        row("context", f"sources {', '.join(ctx.get('sources', [])) or 'none'}; records {recs}")
        for miss in ctx.get("missing_links", []):
            row(
                "",
                f"missing: {miss['link']} {miss['id']} linked from {miss['from']}"
                + (f" ({miss['reason']})" if miss.get("reason") else ""),
            )
    judged = {(c["iteration"], c["name"]): c for c in facts.get("refused_calls", [])}
    if run.iterations:
        lines.append("  iterations")
        for it in run.iterations:
            usage = it.usage or {}
            bits = [
                f"{usage['latency_ms']:g} ms" if usage.get("latency_ms") is not None else "",
                usage.get("model") or "",
                (
                    f"{usage.get('input_tokens', 0)}+{usage.get('output_tokens', 0)} tokens"
                    if usage.get("input_tokens") is not None
                    else ""
                ),
            ]
            lines.append(f"    {it.number}. " + " · ".join(b for b in bits if b))
            if usage.get("ignored"):
                left_out = "; ".join(map(str, usage["ignored"]))
                lines.append(f"       usage the executor reported that was left out: {left_out}")
            for call in it.tool_calls:
                verdict = (
                    ("allowed" + (" ✓" if call.ok else " ✗"))
                    if call.allowed
                    else render.colour("REFUSED", "failed")
                )
                lines.append(
                    f"       tool {call.name}({render.cut(_arguments(call.arguments), 60)}) "
                    f"[{call.category or 'unknown'}{', writes' if call.writes else ''}] "
                    f"{verdict}"
                )
                if call.reason:
                    lines.append(f"         {call.reason}")
                suspect = judged.get((it.number, call.name)) if not call.allowed else None
                if suspect and suspect.get("possible_injection"):
                    lines.extend(_injection_lines(suspect))
                elif call.result_summary:
                    lines.append(f"         → {render.cut(call.result_summary, 100)}")
                if call.records_read:
                    lines.append(
                        "         read "
                        + render.cut(", ".join(f"{r['type']} {r['id']}" for r in call.records_read), 100)
                    )
                if call.records_written:
                    lines.append(
                        "         wrote "
                        + ", ".join(
                            f"{w['kind']} on {w['type'] or 'record'} {w['id']}" for w in call.records_written
                        )
                    )
            if it.text and it.tool_calls:
                lines.append(f"       says: {render.cut(it.text, 100)}")
            if it.stderr:
                lines.append(f"       stderr: {render.cut(it.stderr, 100)}")
    if run.side_effects:
        lines.append("  side effects")
        for se in effects_as_stated(run):
            lines.append(f"    {effect_text(se, run.id)}; key {se.get('key')}")
            if se.get("approved_by"):
                lines.append(f"      approved by {se['approved_by']} at {se.get('approved_at')}")
    else:
        row("side effects", "none")
    if run.output:
        if full_output:
            lines.append("  output")
            output_lines = run.output.splitlines()
            while output_lines and not output_lines[-1].strip():  # blank lines at the end, not spaces
                output_lines.pop()
            lines.extend(f"    {line}" for line in output_lines)
        else:
            row("output", render.cut(run.preview, 100))
    if run.review:
        rv = run.review
        row(
            "review",
            f"{rv.verdict} by {rv.reviewer} {render.ago(rv.time)}" + (f" — {rv.note}" if rv.note else ""),
        )
    elif facts.get("review_pending"):
        row(
            "review", render.colour("needs human review", "failed") + f" (workerctl run review --id {run.id})"
        )
        for reason in run.review_reasons:
            row("", f"· {reason}")
    if run.status == "failed":
        lines.append(f"  next         workerctl run troubleshoot --id {run.id}")
    return "\n".join(lines)


def verdict_lines(run: Run) -> list[str]:
    """The card's first lines: the automatic checks' verdict as the run finished; each
    failing check with its first evidence line."""
    if run.checks is None:
        if run.status in ("completed", "failed"):
            return [
                f"  {'verdict':<13}not checked (recorded before checks were kept): "
                f"workerctl run review --id {run.id}"
            ]
        return []
    failed = [c for c in run.checks if c.get("verdict") == "fail"]
    unsure = [c["key"] for c in run.checks if c.get("verdict") == "cannot_tell"]
    if not failed:
        tail = f"; cannot tell: {', '.join(unsure)}" if unsure else ""
        return [f"  {'verdict':<13}{render.colour('✓', 'completed')} no automatic check failed{tail}"]
    lines = [
        f"  {'verdict':<13}"
        + render.colour(f"✗ {len(failed)} check(s) FAILED: {', '.join(c['key'] for c in failed)}", "failed")
        + f" (workerctl run review --id {run.id})"
    ]
    for c in failed:
        first = (c.get("evidence") or [c.get("title", "")])[0]
        lines.append(f"  {'':<13}✗ {c['key']}: {render.cut(first, 110)}")
    return lines


def _injection_lines(call: dict[str, Any]) -> list[str]:
    from workerctl.runs.injection import NEVER_WIDEN

    where = (
        f'the request is in {call["source"]}: "{call["quote"]}"'
        if call.get("source")
        else "no record text given to the run names it"
    )
    target = call.get("refused_record") or {}
    asked = f"a {target.get('what', 'write')} of {target.get('id')}" if target else call["name"]
    never = (
        "do not widen write_scope for it: that would grant the request; treat the text "
        "that asked for it as untrusted"
        if target.get("what") == "write"
        else NEVER_WIDEN
    )
    return [
        f"         {render.colour('POSSIBLE PROMPT INJECTION', 'failed')}: nothing in the "
        f"worker's instructions asks for {asked}; {where}",
        f"         {never}",
    ]


VERDICT_MARK = {
    "pass": "✓ pass",
    "fail": "✗ fail",
    "cannot_tell": "? cannot tell",
    "cannot tell": "? cannot tell",
}
# in the troubleshooting walk a verdict says whether the step found the cause
CAUSE_MARK = {
    "pass": "✓ pass: not the cause",
    "fail": "✗ fail: the cause is here",
    "cannot_tell": "? cannot tell",
    "cannot tell": "? cannot tell",
}


def check_lines(
    number: int | str,
    check: Check,
    *,
    evidence: list[str],
    action: str = "",
    marks: dict[str, str] = VERDICT_MARK,
) -> list[str]:
    verdict = render.colour(marks.get(check.verdict, check.verdict), check.verdict)
    lines = [f"{number}. {check.title}  [{verdict}]"]
    lines.extend(f"     · {line}" for line in evidence)
    if action:
        lines.append(f"     → {action}")
    return lines


def troubleshooting_text(report: Report) -> list[list[str]]:
    """The walk as blocks: one per step, then the causes, then the rerun advice."""
    blocks = [
        check_lines(n, step, evidence=step.evidence, action=step.action, marks=CAUSE_MARK)
        for n, step in enumerate(report.steps, start=1)
    ]
    causes = ["Causes to rule out (" + ", ".join(c.title for c in report.causes) + "):"]
    marks = {
        "pass": "✓ ruled out",
        "fail": "✗ the cause",
        "cannot_tell": "? cannot tell",
        "cannot tell": "? cannot tell",
    }
    for cause in report.causes:
        mark = render.colour(marks.get(cause.verdict, cause.verdict), cause.verdict)
        causes.append(f"   {cause.title:<22} {mark}  {'; '.join(cause.evidence)}")
        if cause.verdict == "fail" and cause.action:
            causes.append(f"   {'':<22} → {cause.action}")
    blocks.append(causes)
    rerun = report.rerun
    advice = ["Before rerunning:", f"   {rerun['advice']}"]
    for effect in rerun["side_effects"]:
        when = f", {effect['at']}" if effect.get("at") else ""
        advice.append(f"   · run {effect['run_id']}{when}: {effect_text(effect)}")
    blocks.append(advice)
    return blocks


def review_text(run: Run, items: list[Check], human: dict[str, str]) -> list[str]:
    lines = [
        f"Review of run {run.id} ({run.worker}"
        + (f" on {run.record_id}" if run.record_id else "")
        + f", {run.status})"
    ]
    for n, item in enumerate(items, start=1):
        lines.extend(check_lines(n, item, evidence=item.evidence))
    start = len(items) + 1
    for offset, (key, title) in enumerate(human.items()):
        lines.append(f"{start + offset}. {title}  [a person decides: --{key.replace('_', '-')}]")
    if run.needs_review:
        lines.append(
            "This output can influence a customer response, an invoice, a project "
            "update or a support decision: read the source record before acting on it"
            + (f" (workerctl records show {run.record_id})." if run.record_id else ".")
        )
        lines.extend(f"   · {reason}" for reason in run.review_reasons)
    return lines


def event_line(event: Event) -> str:
    """One line of ``run watch``: a transition, an iteration or a tool call."""
    data = event.data
    stamp = _time(event.at)
    if event.kind == "transition":
        status = data["status"]
        line = f"{stamp}  {render.status_cell(status)}"
        if data.get("error"):
            line += f"  {data['error']['kind']}: {data['error']['message']}"
        return line
    if event.kind == "iteration":
        usage = data.get("usage") or {}
        bits = [
            f"{usage['latency_ms']:g} ms" if usage.get("latency_ms") is not None else "",
            usage.get("model") or "",
            (
                f"{usage.get('input_tokens', 0)}+{usage.get('output_tokens', 0)} tokens"
                if usage.get("input_tokens") is not None
                else ""
            ),
        ]
        line = f"{stamp}  iteration {data['number']}"
        shown = " · ".join(b for b in bits if b)
        if shown:
            line += f": {shown}"
        if data.get("text"):
            line += f" — says: {render.cut(data['text'], 80)}"
        return line
    verdict = (
        ("allowed" + (" ✓" if data["ok"] else " ✗"))
        if data["allowed"]
        else render.colour("REFUSED", "failed")
    )
    line = (
        f"{stamp}    tool {data['name']}({render.cut(_arguments(data['arguments']), 60)}) "
        f"[{data['category'] or 'unknown'}{', writes' if data['writes'] else ''}] {verdict}"
    )
    tail = data.get("reason") or (f"→ {data['result_summary']}" if data.get("result_summary") else "")
    return line + (f"  {render.cut(tail, 80)}" if tail else "")


def _step_cell(step: dict[str, Any] | None) -> list[str]:
    if step is None:
        return ["(no iteration)"]
    lines = []
    for call in step["tool_calls"]:
        mark = ("✓" if call["ok"] else "✗") if call["allowed"] else "REFUSED"
        lines.append(f"tool {call['name']}({render.cut(_arguments(call['arguments']), 36)}) {mark}")
    if step["text"] is not None:
        lines.append(f"final: {render.cut(step['text'], 44)}")
    if step.get("input_tokens") is not None:
        lines.append(f"{step['input_tokens']}+{step.get('output_tokens') or 0} tokens")
    return lines or ["(empty)"]


def _signed(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.3f}{unit}"
    return f"{value:+d}{unit}"


def _config_value(value: Any) -> str:
    import json

    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def run_diff_text(diff: dict[str, Any]) -> str:
    """``run diff A B`` for a person: configuration, steps side by side, output, figures."""
    a, b = diff["a"], diff["b"]
    lines = [
        f"A {a['id']}  {render.status_cell(a['status'])}  {a['worker']} on "
        f"{a['record_id'] or 'no record'}" + (f"  ({a['error_kind']})" if a["error_kind"] else ""),
        f"B {b['id']}  {render.status_cell(b['status'])}  {b['worker']} on "
        f"{b['record_id'] or 'no record'}" + (f"  ({b['error_kind']})" if b["error_kind"] else ""),
    ]
    config = diff["config"]
    lines.append("")
    if config["same"]:
        lines.append(f"configuration: the same ({config['config_hash']['a']})")
    else:
        lines.append(
            f"configuration: {config['config_hash']['a']} → "
            f"{config['config_hash']['b']}; changed: {', '.join(config['changed'])}"
        )
        for key, values in config["fields"].items():
            if key == "instructions":
                continue
            lines.append(f"  {key}: {_config_value(values['a'])} → {_config_value(values['b'])}")
        if config["instructions_diff"]:
            lines.extend(f"  {line}" for line in config["instructions_diff"].rstrip().splitlines())
    record = diff["record"]
    lines.append("record: " + ("the same" if record["same"] else "different, or changed between the runs"))
    lines.append("")
    rows = []
    for it in diff["iterations"]:
        left, right = _step_cell(it["a"]), _step_cell(it["b"])
        for n in range(max(len(left), len(right))):
            rows.append(
                [
                    str(it["number"]) if n == 0 else "",
                    "" if n or it["same"] else "≠",
                    left[n] if n < len(left) else "",
                    right[n] if n < len(right) else "",
                ]
            )
    if rows:
        lines.append(render.table(rows, ["it.", "", f"A {a['id']}", f"B {b['id']}"]))
    else:
        lines.append("no iterations in either run")
    lines.append("")
    output = diff["output"]
    if output["same"]:
        lines.append("output: the same")
    else:
        lines.append("output:")
        lines.extend(f"  {line}" for line in output["diff"].rstrip().splitlines())
    lines.append("")
    dur = diff["duration"]
    lines.append(
        f"duration: {render.duration(dur['a'])} → {render.duration(dur['b'])} ({_signed(dur['delta'], ' s')})"
    )
    tin, tout = diff["tokens"]["input"], diff["tokens"]["output"]
    if tin["a"] is not None or tin["b"] is not None:
        lines.append(
            f"tokens: input {tin['a'] if tin['a'] is not None else '-'} → "
            f"{tin['b'] if tin['b'] is not None else '-'} ({_signed(tin['delta'])}), "
            f"output {tout['a'] if tout['a'] is not None else '-'} → "
            f"{tout['b'] if tout['b'] is not None else '-'} ({_signed(tout['delta'])})"
        )
    else:
        lines.append("tokens: none reported by either run's executor")
    cost = diff["cost"]
    if cost["a"] is not None or cost["b"] is not None:
        lines.append(f"estimated cost: {cost['a']} → {cost['b']} ({_signed(cost['delta'])})")
    return "\n".join(lines)
