"""One verdict type for every check a person reads: troubleshooting steps and review items.

A check is decided from recorded data and says what it saw (``evidence``) and,
when it did not pass, what to do (``action``). ``cannot_tell`` is an honest
answer: the data does not decide it, and a person must. (Reviews stored before
the verdict was spelled ``cannot_tell`` say ``cannot tell``; ``normal`` reads both.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, UNKNOWN = "pass", "fail", "cannot_tell"
VERDICTS = (PASS, FAIL, UNKNOWN)


def normal(verdict: str) -> str:
    """A verdict as spelled today (older stored reviews wrote ``cannot tell``)."""
    return UNKNOWN if verdict == "cannot tell" else verdict


@dataclass
class Check:
    key: str
    title: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    action: str = ""
    # what a check wants kept beside its verdict (a model-judged check: the model,
    # the prompt and the answer)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
