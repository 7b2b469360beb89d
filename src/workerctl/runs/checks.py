"""One verdict type for every check a person reads: troubleshooting steps and review items.

A check is decided from recorded data and says what it saw (``evidence``) and,
when it did not pass, what to do (``action``). ``cannot tell`` is an honest
answer: the data does not decide it, and a person must.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, UNKNOWN = "pass", "fail", "cannot tell"
VERDICTS = (PASS, FAIL, UNKNOWN)


@dataclass
class Check:
    key: str
    title: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
