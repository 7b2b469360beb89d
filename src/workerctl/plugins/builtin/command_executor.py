"""The ``command`` executor: one program invocation per step, never a shell.

Protocol (version 1): the step request goes to the program's stdin as one JSON
object (see ``StepRequest.to_json``: protocol, run_id, worker, instructions,
context, tools, messages, iteration, time_left, ...). The program prints one JSON
object on stdout: ``{"text": "..."}`` for the final answer, or
``{"tool_calls": [{"name": "read_task", "arguments": {...}}]}``; optionally
``"usage": {...}`` and ``"finish_reason"`` (why the step ended: ``stop``,
``tool_calls``, ``length`` when the model behind the program hit its token
limit, ``content_filter``; by default the step's shape says it). A final text
cut because the program flooded stdout has finish reason ``length``. Exit status
0 means success.

The program runs in its own session, and nothing of its process group outlives
the step or the run: the group is swept (TERM, then KILL) after every step, on
timeout and on cancel, and a watchdog kills it if workerctl itself dies
(``step_processes``). Only an allow-listed environment is passed on, and only
the tail of stderr is kept. Both streams are read as they come, holding at most
4 × ``max_field_bytes`` of stdout and the tail of stderr: a program that floods
either does not grow this process (a final text past that is kept cut, with a
"truncated, N bytes" note).

Settings::

    executor:
      name: command
      argv: [python3, scripts/triage.py]   # relative paths: from the workspace
      timeout: 60          # per step, seconds (the run's timeout still applies)
      env: {MODE: draft}   # extra variables
      pass_env: [OPENAI_API_KEY]   # variables passed through from the caller
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workerctl.api import (
    ExecutorFailure,
    InvalidOutput,
    JSONTooDeep,
    ProviderUnavailable,
    Step,
    StepRequest,
    StepTimeout,
    hookimpl,
    read_json,
    step_from_json,
)
from workerctl.plugins.builtin.step_processes import run_in_group

SAFE_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SYSTEMROOT",
)
STDERR_TAIL = 4000
SETTINGS = {"argv", "timeout", "env", "pass_env", "cwd"}


#: what the system takes as a program's argument, variable or folder: text with no NUL
#: that the file system's encoding can write (``os.fsencode``); anything else would
#: end the step in a ValueError from ``subprocess`` instead of a refused setting
NOT_OS_TEXT = "{what} holds a NUL character or text the system cannot pass on"
ENV_RULE = "a variable's name is text without '=' or NUL, and its value text without NUL"


def _os_text(value: str) -> bool:
    try:
        return b"\0" not in os.fsencode(value)
    except UnicodeError:
        return False


def _env_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "=" not in name and _os_text(name)


class CommandExecutor:
    name = "command"
    description = "Runs a program per step: JSON request on stdin, JSON step on stdout"
    #: it kills its program's process group at the run's deadline, on cancel and on
    #: Ctrl-C itself, so the engine calls it on the run's own thread (engine.loop)
    bounds_itself = True

    def check_settings(self, settings: dict[str, Any]) -> list[tuple[str, ...]]:
        known = ", ".join(sorted(SETTINGS))
        problems: list[tuple[str, ...]] = [
            (k, f"unknown command setting {k!r}", f"known: {known}") for k in settings if k not in SETTINGS
        ]
        argv = settings.get("argv")
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            problems.append(
                ("argv", "needs 'argv': a non-empty list of strings", "e.g. argv: [python3, scripts/step.py]")
            )
        elif not all(_os_text(a) for a in argv):
            problems.append(
                ("argv", NOT_OS_TEXT.format(what="an argument"), "write each argument as plain text")
            )
        timeout = settings.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            problems.append(("timeout", "must be a positive number of seconds"))
        env = settings.get("env")
        if env is not None and not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
            problems.append(("env", "must map names to text values"))
        elif env is not None:
            bad = [k for k, v in env.items() if not (_env_name(k) and _os_text(v))]
            if bad:
                problems.append(("env", f"{bad[0]!r}: {ENV_RULE}", "use names such as MODE or API_URL"))
        pass_env = settings.get("pass_env")
        if pass_env is not None and not (
            isinstance(pass_env, list) and all(isinstance(v, str) for v in pass_env)
        ):
            problems.append(("pass_env", "must be a list of variable names"))
        elif pass_env is not None and not all(map(_env_name, pass_env)):
            problems.append(("pass_env", f"each name: {ENV_RULE}"))
        cwd = settings.get("cwd")
        if cwd is not None and not (isinstance(cwd, str) and _os_text(cwd)):
            problems.append(("cwd", "must be a folder's path as text", "e.g. cwd: scripts"))
        return problems

    def _environment(self, settings: dict) -> dict[str, str]:
        names = (*SAFE_ENV, *settings.get("pass_env", []))
        env = {k: os.environ[k] for k in names if k in os.environ}
        env.update(settings.get("env", {}))
        return env

    def step(self, request: StepRequest) -> Step:
        settings = request.settings
        workspace = Path(request.workspace)
        argv = list(settings["argv"])
        first = Path(argv[0])
        if not first.is_absolute() and (workspace / first).exists():
            argv[0] = str(workspace / first)
        cwd = workspace / settings.get("cwd", ".")
        limit = min(float(settings.get("timeout", request.time_left)), request.time_left)
        payload = json.dumps(request.to_json()).encode()
        head_bytes = 4 * int(getattr(request, "max_field_bytes", 1_000_000)) + 65536
        started = time.monotonic()
        try:
            done = run_in_group(
                argv,
                cwd=cwd,
                env=self._environment(settings),
                payload=payload,
                limit=limit,
                head_bytes=head_bytes,
                tail_bytes=STDERR_TAIL * 4,
                halted=request.halted,
            )
        except FileNotFoundError:
            raise ProviderUnavailable(
                f"program not found: {argv[0]}",
                "check 'argv' in the worker's executor settings and that the program is "
                "installed and on PATH",
            ) from None
        except PermissionError:
            raise ProviderUnavailable(
                f"program is not executable: {argv[0]}",
                "make it executable (chmod +x) or run it through its interpreter, e.g. [python3, script.py]",
            ) from None
        if done.timed_out:
            raise StepTimeout(
                f"the program ran longer than {limit:.3g}s and was killed with its process group",
                _tail(done.stderr),
            )
        out, err = done.stdout, done.stderr
        latency = round((time.monotonic() - started) * 1000, 1)
        stderr = _tail(err)
        if done.returncode != 0:
            raise ExecutorFailure(f"the program exited with status {done.returncode}", stderr)
        if done.stdout_total > len(out):
            step = _salvage(out, done.stdout_total, request)
        else:
            try:
                data = read_json(out.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                why = "nested deeper than Python reads" if isinstance(exc, JSONTooDeep) else exc
                raise InvalidOutput(
                    f"the program's stdout is not one JSON object: {why}",
                    f"stdout began: {out[:300]!r}\n{stderr}",
                ) from None
            step = step_from_json(data)
        step.stderr = stderr
        step.usage = {"latency_ms": latency, **step.usage}
        if step.finish_reason is None:
            step.finish_reason = "tool_calls" if step.tool_calls else "stop"
        return step


def _salvage(head: bytes, total: int, request: StepRequest) -> Step:
    """A step whose stdout went past what is held: when the part read is the start
    of ``{"text": "..."}``, keep that text (cut, with its note); otherwise the
    step is invalid, saying how much was written."""
    from workerctl.engine.limits import cap_text

    text = head.decode("utf-8", errors="ignore")
    for cut in range(8):  # the head may end inside an escape sequence
        try:
            data = read_json(text[: len(text) - cut] + '"}')
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("text"), str) and not data.get("tool_calls"):
            limit = int(getattr(request, "max_field_bytes", 1_000_000))
            return Step(text=cap_text(data["text"], limit, total=total), finish_reason="length")
        break
    raise InvalidOutput(
        f"the program wrote {total} bytes on stdout, more than the {len(head)} read "
        '(4 × max_field_bytes), and they do not begin a final {"text": ...} step',
        f"stdout began: {head[:300]!r}",
    )


def _tail(data: bytes | None) -> str:
    text = (data or b"").decode("utf-8", errors="replace")
    return text[-STDERR_TAIL:]


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register(CommandExecutor())
