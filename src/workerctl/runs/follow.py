"""Following one run as it happens (``workerctl run watch``).

The process executing a run records every transition and every finished
iteration (with its tool calls) in the run's file before the next step starts.
Following is therefore reading that file whenever it changes: a ``stat`` every
few milliseconds costs next to nothing, and a new step is seen within one poll of
its being recorded, whichever process wrote it (this one, a detached child, or
the history catching up with a remote executor).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workerctl.history.store import History
from workerctl.runs.model import FINISHED, Run

POLL_SECONDS = 0.02  # a step shows within this (plus one read) of being recorded
CATCH_UP_SECONDS = 1.0  # crash detection for a local run
REMOTE_CATCH_UP_SECONDS = 0.25  # a remote run's steps reach the history only by catching up


@dataclass
class Event:
    """One thing that happened to a run: a transition, an iteration or a tool call."""

    kind: str  # "transition" | "iteration" | "tool_call"
    at: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "at": self.at, **self.data}


class Tracker:
    """What has been reported of a run so far; ``news`` gives only what is new."""

    def __init__(self) -> None:
        self.transitions = 0
        self.iterations: dict[int, list[int]] = {}  # number -> [reported, tool calls seen]

    def news(self, run: Run) -> list[Event]:
        found: list[tuple[str, int, Event]] = []
        for t in run.transitions[self.transitions :]:
            found.append(
                (
                    t["at"],
                    len(found),
                    Event(
                        "transition",
                        t["at"],
                        {
                            "status": t["status"],
                            **(
                                {"error": {"kind": run.error.kind, "message": run.error.message}}
                                if t["status"] in ("failed", "cancelled") and run.error
                                else {}
                            ),
                        },
                    ),
                )
            )
        self.transitions = len(run.transitions)
        for it in run.iterations:
            state = self.iterations.setdefault(it.number, [0, 0])
            at = it.finished or it.started
            if not state[0] and (it.finished or it.tool_calls):
                state[0] = 1
                found.append(
                    (
                        at,
                        len(found),
                        Event(
                            "iteration",
                            at,
                            {
                                "number": it.number,
                                "usage": dict(it.usage or {}),
                                "text": it.text if it.tool_calls else None,
                            },
                        ),
                    )
                )
            for call in it.tool_calls[state[1] :]:
                found.append(
                    (
                        at,
                        len(found),
                        Event(
                            "tool_call",
                            at,
                            {
                                "iteration": it.number,
                                "name": call.name,
                                "arguments": call.arguments,
                                "category": call.category,
                                "allowed": call.allowed,
                                "ok": call.ok,
                                "reason": call.reason,
                                "result_summary": call.result_summary,
                                "writes": call.writes,
                            },
                        ),
                    )
                )
            state[1] = len(it.tool_calls)
        # a run's last iteration and its finishing transition share one save (and often
        # one millisecond): the iteration comes first
        return [
            event
            for _, _, event in sorted(
                found,
                key=lambda f: (f[0], f[2].kind == "transition" and f[2].data["status"] in FINISHED, f[1]),
            )
        ]


def follow(
    history: History, run_id: str, *, catch_up: Callable[[], None] | None = None, poll: float = POLL_SECONDS
) -> Iterator[Event | Run]:
    """Every event of the run, old ones first, until it has finished; the finished run
    is yielded last. ``catch_up`` brings the history up to date (crashed runs, remote
    executors); it is called now and then, more often for a remote run."""
    tracker = Tracker()
    seen: tuple[int, int] | None = None
    run = history.get(run_id)
    remote = bool((run.owner or {}).get("remote"))
    every = REMOTE_CATCH_UP_SECONDS if remote else CATCH_UP_SECONDS
    next_catch_up = time.monotonic() + every
    while True:
        yield from tracker.news(run)
        if run.finished:
            yield run
            return
        while True:
            time.sleep(poll)
            if catch_up is not None and time.monotonic() >= next_catch_up:
                catch_up()
                next_catch_up = time.monotonic() + every
            stamp = history.file_stamp(run_id)
            if stamp is None:  # replaced this instant (atomic rename): look again
                continue
            if stamp != seen:
                seen = stamp
                break
        run = history.get(run_id)
