"""Durations and dates from the command line: any duration the pattern takes is a time,
never a traceback (a duration longer than the calendar reaches back to its first day)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.errors import UsageError
from workerctl.timeparse import UNITS, parse_duration, parse_when

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


@given(st.integers(min_value=0, max_value=10**400), st.sampled_from(sorted(UNITS)))
def test_any_duration_is_a_time_no_later_than_now(amount, unit):
    when = parse_when(f"{amount}{unit}", now=NOW)
    assert when <= NOW.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert parse_duration(f"{amount}{unit}") >= dt.timedelta(0)


@given(st.text(max_size=30))
def test_anything_else_is_a_usage_error_or_a_time(text):
    try:
        when = parse_when(text, now=NOW)
    except UsageError:
        return
    assert dt.datetime.fromisoformat(when.replace("Z", "+00:00")).tzinfo is not None


def test_a_duration_beyond_the_calendar_is_everything():
    assert parse_when("99999999999999d", now=NOW).startswith("0001-01-01")
    assert parse_duration("1" + "0" * 400 + "w") == dt.timedelta.max


def test_huge_durations_on_the_command_line_exit_0(one_run):
    """The adversarial report: ``runs list --since 1000000d`` ended in an OverflowError
    traceback, and so did --until, runs stats --since and prune --older-than."""
    workspace, run_id = one_run
    listed = run_workerctl("runs", "list", "--since", "1000000d", "--json", "id", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [run_id]
    for args in (
        ("runs", "list", "--until", "99999999999999d"),
        ("runs", "stats", "--since", "99999999h"),
        ("runs", "prune", "--older-than", "99999999999999d", "--dry-run"),
    ):
        done = run_workerctl(*args, workspace=workspace)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
    assert run_workerctl("run", "inspect", run_id, workspace=workspace).returncode == 0


@pytest.mark.parametrize("value", ["", "  "])
@pytest.mark.parametrize(
    "args", [("runs", "list", "--since"), ("runs", "list", "--until"), ("runs", "stats", "--since")]
)
def test_an_empty_time_is_a_usage_error_not_no_bound(one_run, args, value):
    """``--since ''`` was taken as no --since at all (exit 0, every run): a script whose
    variable was empty got a wider answer than it asked for (the fourth fresh-brief attack)."""
    workspace, _ = one_run
    done = run_workerctl(*args, value, workspace=workspace)
    assert done.returncode == 2 and "neither a duration nor a date" in done.stderr, done.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "0", "soon"])
def test_a_watch_interval_that_is_no_number_of_seconds_is_a_usage_error(one_run, value):
    """``--watch nan`` was taken and crashed once a run was running; ``inf`` too."""
    workspace, _ = one_run
    done = run_workerctl("runs", "list", "--watch", value, workspace=workspace)
    assert done.returncode == 2, (value, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "--watch" in done.stderr


# digits of other scripts that Python's int() and float() read as numbers
_OTHER_DIGITS = st.sampled_from(["٣", "۳", "३", "৩", "３", "𝟑", "᠓"])


@settings(max_examples=200, deadline=None)
@given(
    digit=_OTHER_DIGITS,
    unit=st.sampled_from(["s", "m", "h", "d", "w"]),
    before=st.sampled_from(["", "1", "2"]),
)
def test_durations_and_the_lock_timeout_are_ascii_digits_only(digit, unit, before):
    """Only ASCII digits are numbers (``digits.py``): "٣d" is no duration and
    WORKERCTL_LOCK_TIMEOUT=٣ no timeout, though float() reads both as 3."""
    import os

    from workerctl.storage.lock import resolve_timeout

    with pytest.raises(UsageError):
        parse_duration(f"{before}{digit}{unit}")
    old = os.environ.get("WORKERCTL_LOCK_TIMEOUT")
    os.environ["WORKERCTL_LOCK_TIMEOUT"] = f"{before}{digit}"
    try:
        with pytest.raises(UsageError, match="not a number"):
            resolve_timeout(None)
    finally:
        if old is None:
            del os.environ["WORKERCTL_LOCK_TIMEOUT"]
        else:
            os.environ["WORKERCTL_LOCK_TIMEOUT"] = old
