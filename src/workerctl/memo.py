"""Values made once per key, such as paths joined under a state folder.

A run's commits and reads ask for the same few paths dozens of times, and joining a
path costs more than a dictionary look-up; a long batch asks for new ones with every
record, so what is kept is bounded: past ``limit`` keys it is forgotten all at once
(the next asks make their values again), which keeps the look-up a plain ``dict``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: how many keys a memo keeps before it forgets them all
LIMIT = 4096


class Memo(dict[K, V], Generic[K, V]):
    """``memo[key]``: ``make(key)``, made on the first ask and kept (at most ``limit``
    keys). Safe to share between threads: two that miss at once both make the value,
    and either one is kept."""

    def __init__(self, make: Callable[[K], V], limit: int = LIMIT) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key: K) -> V:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.make(key)
        return value
