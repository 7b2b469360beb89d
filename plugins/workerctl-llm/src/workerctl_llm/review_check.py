"""A model-judged review check: a configured model answers each checklist item with
a quote from the output.

The model is the ``review_model`` setting in ``workerctl.yaml`` (an ``llm`` model
id; ``WORKERCTL_REVIEW_MODEL`` overrides it). Without one the check says
``cannot_tell``, never ``pass``. The model must answer every item ``yes`` or
``no`` with a quote copied from the output; an answer whose quote is not in the
output, or that does not parse, decides nothing (``cannot_tell``). The model, the
prompt and the answer are kept in the check's ``details``. It runs only in
``run review`` (``at_finish=False``): a run's end never waits on a model.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from workerctl.api import CANNOT_TELL, FAIL, PASS, Check, ReviewCheck, ReviewEvidence, read_json

KEY = "model_judged"
TITLE = "A model judges the checklist items, quoting the output"
ITEMS = {
    "addresses_task": "The output does the task the instructions give (it is not a greeting, a question "
    "back to the user, a refusal or a template)",
    "matches_instructions": "The output matches the worker instructions (form, scope, what not to do)",
    "supported_by_records": "Every fact the output states is supported by the records shown",
    "next_action_clear": "The next human action is clear",
}
SYSTEM = (
    "You review the output of an AI worker. For each checklist item answer yes or no and quote, "
    "word for word, the part of the output that decides it. Reply with JSON only: "
    '{"items": [{"key": "...", "answer": "yes" or "no", "quote": "..."}]}'
)
TIMEOUT = 60.0


def review_model(settings: dict[str, Any]) -> str | None:
    found = os.environ.get("WORKERCTL_REVIEW_MODEL") or settings.get("review_model")
    return found.strip() if isinstance(found, str) and found.strip() else None


def build_prompt(evidence: ReviewEvidence) -> str:
    run = evidence.run
    records = [
        {"id": rid, "type": s.type, "title": s.title, "fields": s.fields} for rid, s in evidence.seen.items()
    ][:20]
    items = "\n".join(f"- {key}: {text}" for key, text in ITEMS.items())
    return (
        f"Worker instructions:\n{(run.config or {}).get('instructions', '')}\n\n"
        f"Records the worker read:\n{json.dumps(records, ensure_ascii=False, default=str)[:8000]}\n\n"
        f"Output to review:\n<<<\n{evidence.output}\n>>>\n\nChecklist items:\n{items}\n"
    )


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .\"'“”")


def parse_answer(text: str) -> list[dict[str, Any]]:
    """The items of the model's JSON answer (the first ``{`` to the last ``}``)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the answer holds no JSON object")
    data = read_json(text[start : end + 1])
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('the answer has no "items" list')
    return [i for i in items if isinstance(i, dict)]


def ask(model_id: str, prompt: str) -> str:
    import llm

    model = llm.get_model(model_id)
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["text"] = model.prompt(prompt, system=SYSTEM, stream=False).text()
        except BaseException as exc:  # re-raised below, in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():
        raise TimeoutError(f"model {model_id} did not answer within {TIMEOUT:g}s")
    if "error" in box:
        raise box["error"]
    return str(box["text"])


def judge(evidence: ReviewEvidence) -> Check:
    model_id = review_model(evidence.settings)
    if model_id is None:
        return Check(
            KEY,
            TITLE,
            CANNOT_TELL,
            ["no review model is configured: set review_model in workerctl.yaml (an llm model id)"],
        )
    if not evidence.output.strip():
        return Check(KEY, TITLE, CANNOT_TELL, ["the run has no output to judge"])
    prompt = build_prompt(evidence)
    details: dict[str, Any] = {"model": model_id, "prompt": prompt, "answer": None}
    try:
        answer = ask(model_id, prompt)
    except Exception as exc:
        return Check(
            KEY,
            TITLE,
            CANNOT_TELL,
            [f"model {model_id} failed: {type(exc).__name__}: {exc}"],
            details=details,
        )
    details["answer"] = answer
    try:
        items = parse_answer(answer)
    except ValueError as exc:
        return Check(
            KEY,
            TITLE,
            CANNOT_TELL,
            [f"model {model_id} answered something that is not the checklist: {exc}"],
            details=details,
        )
    output = _norm(evidence.output)
    by_key = {str(i.get("key")): i for i in items}
    failed, passed, undecided = [], [], []
    for key, text in ITEMS.items():
        item = by_key.get(key)
        if item is None:
            undecided.append(f"{key}: the model did not answer it")
            continue
        said = str(item.get("answer", "")).strip().lower()
        quote = str(item.get("quote") or "")
        quoted = bool(_norm(quote)) and _norm(quote) in output
        line = f'{key} ({text}): {said or "?"}, quoting "{quote[:160]}"'
        if not quoted:
            undecided.append(f"{line} — not a quote from the output, so it decides nothing")
        elif said == "no":
            failed.append(line)
        elif said == "yes":
            passed.append(line)
        else:
            undecided.append(f"{line} — neither yes nor no")
    head = f"judged by model {model_id}"
    if failed:
        return Check(KEY, TITLE, FAIL, [head, *failed, *undecided, *passed], details=details)
    if undecided:
        return Check(KEY, TITLE, CANNOT_TELL, [head, *undecided, *passed], details=details)
    return Check(KEY, TITLE, PASS, [head, *passed], details=details)


CHECK = ReviewCheck(KEY, TITLE, judge, at_finish=False)
