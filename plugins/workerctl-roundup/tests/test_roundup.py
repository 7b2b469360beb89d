"""The Roundup source against a real roundup-server on 127.0.0.1 (see conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from roundup_server import PASSWORD, configure, workerctl, write_worker
from workerctl_roundup.source import message_id, parse_message_id

pytestmark = pytest.mark.slow  # a real roundup-server and workerctl processes

REVIEW = [{"output": "State: waiting on a reply. Next step: ask the reporter. Owner: admin"}]


def _one_line_error(done, *words: str) -> None:
    """A failure a person reads: one line naming it (plus its hint), never a traceback."""
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, done.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in done.stderr, done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_records_show_and_list_read_the_tracker_live(ws, tracker, roundup_env):
    issue = tracker.new_issue("Printer on fire", priority="urgent")
    shown = workerctl("-w", str(ws), "records", "show", issue, "--json", env=roundup_env)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["type"] == "issue" and record["title"] == "Printer on fire"
    assert record["fields"]["priority"] == "urgent" and record["fields"]["status"] == "unread"
    tracker.change(issue, priority="wish")  # another person: the next read sees it
    again = json.loads(workerctl("-w", str(ws), "records", "show", issue, "--json", env=roundup_env).stdout)
    assert again["fields"]["priority"] == "wish"
    listed = workerctl(
        "-w", str(ws), "records", "list", "--type", "issue", "--format", "ids", env=roundup_env
    )
    ids = listed.stdout.split()
    assert issue in ids and len(ids) >= 60  # more than one page of 50? the page size is 100: all of them


def test_records_sources_says_which_answer(ws, tracker, roundup_env, tmp_path):
    done = workerctl("-w", str(ws), "records", "sources", "--json", env=roundup_env)
    assert done.returncode == 0, done.stderr
    by_name = {s["name"]: s for s in json.loads(done.stdout)}
    assert by_name["bugs"]["answers"] is True and by_name["bugs"]["kind"] == "roundup"
    assert by_name["builtin"]["answers"] is True
    offline = {**roundup_env}
    configure(ws, f"http://127.0.0.1:{_closed_port()}/tracker/", retries=1)
    down = workerctl("-w", str(ws), "records", "sources", "--json", env=offline)
    assert down.returncode == 1
    bugs = {s["name"]: s for s in json.loads(down.stdout)}["bugs"]
    assert (
        bugs["answers"] is False
        and "cannot connect" in bugs["status"]
        and "check that the server at" in bugs["status"]
    )


def _closed_port() -> int:
    from workerctl_roundup.local import free_port

    return free_port()  # nothing listens there once the probe socket is closed


def test_a_run_posts_one_message_and_the_guard_reads_the_servers_state(ws, tracker, roundup_env):
    issue = tracker.new_issue("Stale one")
    write_worker(ws, "stale", REVIEW)
    first = workerctl("-w", str(ws), "run", "start", "stale", "--task", issue, "--json", env=roundup_env)
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    messages = tracker.messages(issue)
    assert len(messages) == 1
    assert messages[0]["messageid"] == message_id(run["id"], f"{run['id']}:output")
    assert run["id"] in messages[0]["content"]  # the run id travels with the message
    # the tracker moved the status itself (unread -> chatting) when the message came:
    # that is the run's own write, not someone changing the issue
    assert (
        tracker.rest("GET", f"data/issue/{issue[5:]}?@verbose=2")[0]["data"]["attributes"]["status"]["name"]
        == "chatting"
    )
    again = workerctl("-w", str(ws), "run", "start", "stale", "--task", issue, env=roundup_env)
    assert again.returncode == 5, again.stderr
    assert len(tracker.messages(issue)) == 1
    tracker.change(issue, priority="critical")  # a person changed it: a new look is due
    third = workerctl("-w", str(ws), "run", "start", "stale", "--task", issue, env=roundup_env)
    assert third.returncode == 0, third.stderr
    assert len(tracker.messages(issue)) == 2


@pytest.mark.parametrize("step", ["msg", "link"])
def test_a_response_lost_after_the_write_never_writes_twice(ws, tracker, roundup_env, fault_proxy, step):
    """The server writes, then the answer is lost (the connection drops before it):
    the source looks on the server and finds its message by the run's key."""
    issue = tracker.new_issue(f"Lost answer at {step}")
    if step == "msg":
        proxy = fault_proxy(lambda req: req.startswith(b"POST ") and b"/rest/data/msg " in req)
    else:
        proxy = fault_proxy(lambda req: req.startswith(b"PATCH ") and b'"@op": "add"' in req)
    configure(ws, f"http://127.0.0.1:{proxy.port}/tracker/")
    write_worker(ws, "stale", REVIEW)
    done = workerctl("-w", str(ws), "run", "start", "stale", "--task", issue, "--json", env=roundup_env)
    assert done.returncode == 0, done.stderr
    assert len(proxy.dropped) == 1  # the fault happened
    messages = tracker.messages(issue)
    assert len(messages) == 1, messages  # 0 duplicates
    effects = json.loads(done.stdout)["side_effects"]
    assert [e["state"] for e in effects] == ["committed"]
    assert workerctl("-w", str(ws), "run", "start", "stale", "--task", issue, env=roundup_env).returncode == 5


def test_a_record_changed_between_read_and_write_is_refused_saying_what_changed(
    tracker, roundup_env, tmp_path
):
    from workerctl_roundup.source import RoundupSource

    from workerctl.api import RecordChanged, SourceConfig

    issue = tracker.new_issue("Contested", priority="bug")
    source = RoundupSource(None, SourceConfig("bugs", "roundup", tracker.url))
    assert source.get(issue).fields["priority"] == "bug"  # the run reads it
    tracker.change(issue, priority="critical", status="in-progress")  # someone else, meanwhile
    with pytest.raises(RecordChanged) as refused:
        source.update(issue, {"status": "resolved"})
    assert "priority: bug → critical" in refused.value.message
    assert "status: unread → in-progress" in refused.value.message
    assert source.get(issue).fields["status"] == "in-progress"  # nothing was written
    source.update(issue, {"status": "resolved"})  # read again: now it goes through
    assert source.get(issue).fields["status"] == "resolved"


MEANWHILE = """
import json, os, sys, base64, urllib.request
request = json.load(sys.stdin)
url, issue, password = sys.argv[1], sys.argv[2], os.environ["WORKERCTL_ROUNDUP_PASSWORD"]
def rest(method, path, body=None, etag=None):
    headers = {"Authorization": "Basic " + base64.b64encode(("admin:" + password).encode()).decode(),
               "X-Requested-With": "t", "Referer": url, "Origin": url.split("/tracker/")[0],
               "Content-Type": "application/json"}
    if etag:
        headers["If-Match"] = etag
    req = urllib.request.Request(url + "rest/" + path, method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req) as answer:
        return answer.headers.get("ETag")
step = request["iteration"]
if step == 1:
    print(json.dumps({"tool_calls": [{"name": "read_issue", "arguments": {"issue_id": issue}}]}))
elif step == 2:
    # while the "model" thinks, another person edits the issue
    number = issue[len("issue"):]
    etag = rest("GET", "data/issue/" + number)
    rest("PATCH", "data/issue/" + number, {"@op": "replace", "priority": "critical"}, etag)
    call = {"name": "set_issue_status", "arguments": {"issue_id": issue, "status": "resolved"}}
    print(json.dumps({"tool_calls": [call]}))
else:
    print(json.dumps({"text": json.dumps(request["messages"][-1]["result"])}))
"""


def test_the_update_tool_refuses_an_issue_changed_during_the_run(ws, tracker, roundup_env):
    """The run reads the issue; someone changes it while the run goes on; the run's
    update is refused with what changed, and the executor gets that as the tool result."""
    import sys

    issue = tracker.new_issue("Raced", priority="bug")
    (ws / "meanwhile.py").write_text(MEANWHILE)
    write_worker(ws, "racer", [], output_mode="review_note",
                 executor={"name": "command", "argv": [sys.executable, "meanwhile.py", tracker.url, issue],
                           "pass_env": ["WORKERCTL_ROUNDUP_PASSWORD"]})  # fmt: skip
    done = workerctl("-w", str(ws), "run", "start", "racer", "--task", issue, "--json", env=roundup_env)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert (
        "changed on bugs since this run read it (priority: bug → critical; by admin)"
        in json.loads(run["output"])["error"]
    )
    assert run["side_effects"] == []
    status = tracker.rest("GET", f"data/issue/{issue[5:]}?@verbose=2")[0]["data"]["attributes"]["status"][
        "name"
    ]
    assert status == "unread"  # not resolved over the other person's change


def test_wrong_credentials_fail_in_one_line_naming_the_fix(ws, tracker, roundup_env):
    env = {
        **roundup_env,
        "WORKERCTL_ROUNDUP_USER": "no-such-user",
        "WORKERCTL_ROUNDUP_PASSWORD": "wrong-" + PASSWORD,
    }
    shown = workerctl("-w", str(ws), "records", "show", tracker.issues[0], env=env)
    assert shown.returncode == 2
    _one_line_error(shown, "401", "WORKERCTL_ROUNDUP_USER")
    assert "wrong-" not in shown.stderr
    write_worker(ws, "stale", REVIEW)
    run = workerctl("-w", str(ws), "run", "start", "stale", "--task", tracker.issues[0], env=env)
    assert run.returncode == 2
    _one_line_error(run, "401")


def test_no_credentials_and_a_user_without_rights(ws, tracker, roundup_env):
    env = {**roundup_env, "WORKERCTL_ROUNDUP_USER": "", "WORKERCTL_ROUNDUP_PASSWORD": ""}
    done = workerctl("-w", str(ws), "records", "show", tracker.issues[0], env=env)
    assert done.returncode == 2
    _one_line_error(done, "none were given", "~/.netrc")
    nobody = {**roundup_env, "WORKERCTL_ROUNDUP_USER": "nobody", "WORKERCTL_ROUNDUP_PASSWORD": "nobody-pw"}
    done = workerctl("-w", str(ws), "records", "show", tracker.issues[0], env=nobody)
    assert done.returncode == 2  # Roundup refuses a login without a role: 401
    _one_line_error(done, "401")


def test_a_user_who_may_only_read_fails_the_write_with_a_permission_error(ws, tracker, roundup_env):
    viewer = {**roundup_env, "WORKERCTL_ROUNDUP_USER": "viewer", "WORKERCTL_ROUNDUP_PASSWORD": "viewer-pw"}
    assert workerctl("-w", str(ws), "records", "show", tracker.issues[2], env=viewer).returncode == 0
    write_worker(ws, "stale", REVIEW)
    done = workerctl(
        "-w", str(ws), "run", "start", "stale", "--task", tracker.issues[2], "--json", env=viewer
    )
    assert done.returncode == 1
    run = json.loads(done.stdout)
    assert run["error"]["kind"] == "record_access_denied" and "403" in run["error"]["message"]
    assert run["error"]["detail"].startswith("fix: give the tracker user the permission")
    walk = json.loads(
        workerctl("-w", str(ws), "run", "troubleshoot", "--id", run["id"], "--json", env=viewer).stdout
    )
    causes = {c["key"]: c for c in walk["causes"]}
    assert causes["permissions"]["verdict"] == "fail" and "permission" in causes["permissions"]["action"]
    assert [m for m in tracker.messages(tracker.issues[2]) if "worker:stale" in m["content"]] == []
    assert run["side_effects"] == []  # refused by the server: nothing unknown to settle
    again = workerctl("-w", str(ws), "run", "start", "stale", "--task", tracker.issues[2], env=roundup_env)
    assert again.returncode == 0, again.stderr  # with rights, the next run is not blocked


def test_credentials_from_netrc(ws, tracker, roundup_env, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login admin password {PASSWORD}\n")
    netrc.chmod(0o600)
    env = {**roundup_env, "WORKERCTL_ROUNDUP_USER": "", "WORKERCTL_ROUNDUP_PASSWORD": "", "NETRC": str(netrc)}
    done = workerctl("-w", str(ws), "records", "show", tracker.issues[0], "--json", env=env)
    assert done.returncode == 0, done.stderr


def test_a_missing_issue_is_not_found(ws, tracker, roundup_env):
    done = workerctl("-w", str(ws), "records", "show", "issue99999", env=roundup_env)
    assert done.returncode == 3
    _one_line_error(done, "issue99999")


def test_offline_fails_the_run_with_a_kind_troubleshooting_explains(ws, tracker, roundup_env):
    issue = tracker.issues[1]
    write_worker(ws, "stale", REVIEW, output_mode="review_note")
    (ws / "workers" / "stale.yaml").write_text(
        (ws / "workers" / "stale.yaml").read_text().replace("output: State", "output: State")
    )
    script = [{"tool": "read_issue", "arguments": {"issue_id": issue}}, {"output": "{last_result}"}]
    write_worker(ws, "reader", script, output_mode="review_note")
    configure(ws, f"http://127.0.0.1:{_closed_port()}/tracker/", retries=1)
    done = workerctl("-w", str(ws), "run", "start", "reader", "--json", env=roundup_env)
    assert done.returncode == 1, done.stderr
    run = json.loads(done.stdout)
    assert run["error"]["kind"] == "source_unavailable"
    assert run["error"]["detail"].startswith("fix: check that the server at")
    walk = workerctl("-w", str(ws), "run", "troubleshoot", "--id", run["id"], "--json", env=roundup_env)
    assert walk.returncode == 0, walk.stderr
    causes = {c["key"]: c for c in json.loads(walk.stdout)["causes"]}
    assert causes["connected data"]["verdict"] == "fail"
    assert "check that the server at" in causes["connected data"]["action"]
    assert causes["permissions"]["verdict"] == "pass"
    assert "Traceback" not in walk.stderr + done.stderr


def test_a_write_that_never_started_leaves_nothing_to_settle(ws, tracker, roundup_env, fault_proxy):
    """The tracker stops answering just as the run looks for its message: the run fails
    with source_unavailable, and since nothing was sent to write, the ledger holds no
    unknown write and the next run is not blocked."""
    issue = tracker.new_issue("Looked for, never written")
    proxy = fault_proxy(lambda req: req.startswith(b"GET ") and b"messageid=" in req, times=10)
    configure(ws, f"http://127.0.0.1:{proxy.port}/tracker/", retries=1)
    write_worker(ws, "poster", REVIEW)
    done = workerctl("-w", str(ws), "run", "start", "poster", "--task", issue, "--json", env=roundup_env)
    assert done.returncode == 1, done.stderr
    run = json.loads(done.stdout)
    assert run["error"]["kind"] == "source_unavailable" and run["side_effects"] == []
    assert proxy.dropped
    configure(ws, tracker.url)
    unknown = workerctl("-w", str(ws), "ledger", "list", "--state", "unknown", "--json", env=roundup_env)
    assert json.loads(unknown.stdout or "[]") == []
    again = workerctl("-w", str(ws), "run", "start", "poster", "--task", issue, env=roundup_env)
    assert again.returncode == 0, again.stderr
    assert len(tracker.messages(issue)) == 1


@pytest.mark.slow
def test_a_rate_limited_tracker_is_waited_for_not_failed(make_tracker_with, roundup_env, tmp_path):
    """Roundup's own REST rate limit (10 calls, then five a second): the runs keep under
    it (X-RateLimit-Remaining) or wait as Retry-After says, and all complete."""
    limited = make_tracker_with(issues=2, rate_limit=(10, 2))  # then five calls a second
    root = tmp_path / "limited"
    assert workerctl("init", str(root), env=roundup_env).returncode == 0
    configure(root, limited.url)
    write_worker(root, "stale", REVIEW)
    _burn(limited)  # another client of the same user used the whole budget just now
    done = workerctl(
        "-w", str(root), "run", "start", "stale", *[a for i in limited.issues for a in ("--task", i)],
        "--json", env=roundup_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    for issue in limited.issues:
        assert len(limited.messages(issue)) == 1


def _burn(tracker) -> None:
    """Call the tracker as its admin until it answers 429."""
    import urllib.error

    for _ in range(100):
        try:
            tracker.rest("GET", "data/status", patient=False)
        except urllib.error.HTTPError as refused:
            assert refused.code == 429
            return
    raise AssertionError("the tracker never rate-limited")


def test_a_429_waits_as_retry_after_says(make_tracker_with, roundup_env):
    from workerctl_roundup.source import RoundupSource

    from workerctl.api import SourceConfig

    limited = make_tracker_with(issues=1, rate_limit=(4, 8))  # then one call per 2 s
    source = RoundupSource(None, SourceConfig("bugs", "roundup", limited.url))
    for _ in range(3):  # a token may come back between the burn and our call: try again
        _burn(limited)
        assert source.get(limited.issues[0]) is not None
        if source.session.stats.retries:
            break
    assert source.session.stats.retries >= 1  # it met a 429, waited, and got its answer
    log = (limited.home / "server.log").read_text()
    assert log.count(" 429 ") >= 2  # the burn's and ours


@pytest.mark.slow
def test_a_batch_over_50_issues_writes_one_message_each(ws, tracker, roundup_env):
    write_worker(ws, "sweep", REVIEW)
    batch = tracker.issues[:55]
    ids = ws / "ids.txt"
    ids.write_text("\n".join(batch) + "\n")
    first = workerctl("-w", str(ws), "run", "start", "sweep", "--records-from", str(ids), "--jobs", "4",
                      "--json", env=roundup_env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counts"]["completed"] == 55
    second = workerctl("-w", str(ws), "run", "start", "sweep", "--records-from", str(ids), "--jobs", "4",
                       "--json", env=roundup_env)  # fmt: skip
    counts = json.loads(second.stdout)["counts"]
    assert counts.get("completed", 0) == 0 and counts["skipped"] == 55
    for issue in batch[::11]:
        mine = [m for m in tracker.messages(issue) if "worker:sweep" in m["content"]]
        assert len(mine) == 1


def test_the_password_is_in_no_state_file_and_no_output(ws, tracker, roundup_env):
    write_worker(ws, "stale", REVIEW)
    issue = tracker.new_issue("Secrets")
    outputs = [
        workerctl("-w", str(ws), "run", "start", "stale", "--task", issue, env=roundup_env),
        workerctl("-w", str(ws), "records", "sources", env=roundup_env),
        workerctl("-w", str(ws), "runs", "list", "--json", env=roundup_env),
        workerctl("-w", str(ws), "records", "show", issue, env=roundup_env),
    ]
    bad = {**roundup_env, "WORKERCTL_ROUNDUP_PASSWORD": PASSWORD + "x"}
    outputs.append(workerctl("-w", str(ws), "run", "start", "stale", "--task", tracker.new_issue(), env=bad))
    for done in outputs:
        assert PASSWORD not in done.stdout + done.stderr
    for path in Path(ws, ".workerctl").rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_url_holding_credentials_is_refused_without_echoing_them(ws, roundup_env):
    configure(ws, f"http://admin:{PASSWORD}@127.0.0.1:1/tracker/")
    done = workerctl("-w", str(ws), "records", "list", env=roundup_env)
    assert done.returncode == 2
    assert "holds a user name or password" in done.stderr and PASSWORD not in done.stderr
    assert "Traceback" not in done.stderr


def test_the_record_source_contract(tracker, roundup_env):
    from workerctl_roundup.source import RoundupSource

    from workerctl.api import SourceConfig
    from workerctl.testing import check_record_source

    source = RoundupSource(None, SourceConfig("bugs", "roundup", tracker.url))
    check_record_source(source, record_id=tracker.new_issue("Contract"), missing_id="issue999999")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    run_id=st.text("0123456789abcdefghjkmnpqrstvwxyz", min_size=1, max_size=12),
    key=st.text(min_size=1, max_size=60),
)
def test_message_ids_carry_run_and_key_exactly(run_id, key):
    assert parse_message_id(message_id(run_id, key)) == (run_id, key)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200).filter(str.strip)
)
@example(text="\xa0leading no-break space")  # the tracker trims it: the comment is sent trimmed
def test_generated_texts_round_trip_through_the_tracker_once(tracker, roundup_env, text):
    from workerctl_roundup.source import RoundupSource

    from workerctl.api import SourceConfig

    source = RoundupSource(None, SourceConfig("bugs", "roundup", tracker.url))
    issue = tracker.issues[-1]
    key = f"hyp:{text}"
    first, created = source.add_comment(issue, text, author="w", run_id="hyp1", key=key)
    again, created_again = source.add_comment(issue, text, author="w", run_id="hyp1", key=key)
    assert created and not created_again and first.id == again.id
    mine = [c for c in source.comments(issue) if c.key == key]
    assert len(mine) == 1 and mine[0].text.startswith(text.strip())


def test_a_url_that_is_not_the_trackers_says_so(ws, tracker, roundup_env):
    """Hostile case: url set to the server's root, not the tracker's (HTML, 404)."""
    configure(ws, f"http://127.0.0.1:{tracker.port}/")
    for args in (("records", "show", "issue1"), ("records", "list", "--type", "issue")):
        done = workerctl("-w", str(ws), *args, env=roundup_env)
        assert done.returncode == 1, done.stderr
        _one_line_error(done, "has no Roundup REST API", "web address")
    sources = workerctl("-w", str(ws), "records", "sources", env=roundup_env)
    assert sources.returncode == 1 and "has no Roundup REST API" in sources.stdout


def test_values_the_tracker_refuses_are_tool_results_not_failures(ws, tracker, roundup_env):
    issue = tracker.new_issue("Refusals")
    script = [
        {"tool": "set_issue_status", "arguments": {"issue_id": issue, "status": "no-such-status"}},
        {"tool": "list_issues", "arguments": {"status": "no-such-status"}},
        {"tool": "read_issue", "arguments": {"issue_id": "T-1042"}},
        {"tool": "add_issue_message", "arguments": {"issue_id": issue, "text": "  "}},
        {"output": "done"},
    ]
    write_worker(ws, "refused", script, output_mode="review_note")
    done = workerctl("-w", str(ws), "run", "start", "refused", "--task", issue, "--json", env=roundup_env)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    calls = [c for it in run["iterations"] for c in it.get("tool_calls", [])]
    assert len(calls) == 4 and not any(c["ok"] for c in calls), calls
    assert "no-such-status" in calls[0]["result_summary"] and "not an issue" in calls[2]["result_summary"]
    assert run["side_effects"] == [] and tracker.messages(issue) == []


def test_repeated_wrong_passwords_meet_the_login_limit_in_one_line(make_tracker_with, roundup_env, tmp_path):
    """Hostile case: Roundup locks a login out after failed attempts (429, the wait only in
    words); workerctl neither hammers it with the wrong password nor hides why."""
    locked = make_tracker_with(issues=1, failed_login_limit=2)
    root = tmp_path / "locked"
    assert workerctl("init", str(root), env=roundup_env).returncode == 0
    configure(root, locked.url)
    env = {**roundup_env, "WORKERCTL_ROUNDUP_PASSWORD": "wrong-" + PASSWORD}
    outcomes = [workerctl("-w", str(root), "records", "show", "issue1", env=env) for _ in range(4)]
    assert outcomes[0].returncode == 2  # 401 first
    last = outcomes[-1]
    assert last.returncode == 1, last.stderr
    _one_line_error(last, "429", "credentials")
    log = (locked.home / "server.log").read_text()
    assert log.count("GET /tracker/rest/data/issue/1") <= 4 + 4  # no retry storm: a few tries at most
