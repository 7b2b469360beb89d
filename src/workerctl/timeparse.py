"""Durations (``2h``, ``7d``, ``90d``) and dates from the command line."""

from __future__ import annotations

import datetime as dt
import re

from workerctl.errors import UsageError

UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
# ASCII digits only (re.ASCII): "٣d" is no duration, as digits.py says of every number
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$", re.ASCII)


def parse_duration(text: str) -> dt.timedelta:
    match = DURATION.match(text.strip().lower())
    if not match:
        raise UsageError(f"{text!r} is not a duration", hint="use a number and a unit: 30m, 2h, 7d, 2w")
    try:
        return dt.timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])
    except OverflowError:  # longer than the calendar holds: as long as it holds
        return dt.timedelta.max


def parse_when(text: str, now: dt.datetime | None = None) -> str:
    """A duration ago, or a date / date-time, as an ISO UTC string for comparisons."""
    now = now or dt.datetime.now(dt.UTC)
    if DURATION.match(text.strip().lower()):
        try:
            when = now - parse_duration(text)
        except OverflowError:  # further back than the calendar: its first day, before every run
            when = dt.datetime.min.replace(tzinfo=dt.UTC)
    else:
        try:
            when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"{text!r} is neither a duration nor a date",
                hint="use 2h, 7d, 2026-11-01 or 2026-11-01T08:00",
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
