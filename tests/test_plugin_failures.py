"""A broken plugin never breaks workerctl: whatever its code does while the registry is
built (its import, its hooks), the commands keep working, ``--json`` stays one
document, and the problem is one line naming the plugin. And the command ``--help``
lists is the command that runs.

The rule holds at one place, ``plugins.manager.call_plugin``, through which every call
into a plugin's code passes while the registry is built. Each case below was found by a
fresh-brief attack (real processes): ``sys.exit`` at import or in a hook, a
``BaseException`` of the plugin's own, an exception whose ``__str__`` raises, a print at
import, a message over several lines, two packages declaring one command.
"""

from __future__ import annotations

import json

import pytest

from helpers import install_plugin, plugin_env, run_workerctl

BROKEN = {
    # at import
    "exiting": 'import sys\nsys.exit("exiting refuses to load")\n',
    "unreadable": (
        "class Weird(Exception):\n    def __str__(self):\n        raise ValueError('no')\nraise Weird()\n"
    ),
    "chatty": "print('chatty loading')\nfrom workerctl.api import hookimpl\n",
    "multiline": "raise RuntimeError('first line\\nsecond line')\n",
    # in a hook
    "hookexit": (
        "import sys\nfrom workerctl.api import hookimpl\n\n"
        "@hookimpl\ndef register_tools(register):\n    sys.exit('no tools today')\n"
    ),
    "hookbase": (
        "from workerctl.api import hookimpl\n\nclass Mine(BaseException):\n    pass\n\n"
        "@hookimpl\ndef register_tool_categories(register):\n    raise Mine('mine')\n"
    ),
    "cmdexit": (
        "import sys\nfrom workerctl.api import hookimpl\n\n"
        "@hookimpl\ndef register_commands(cli):\n    sys.exit(0)\n"
    ),
}


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for name, source in BROKEN.items():
        install_plugin(site, name, source)
    typo = site / "typo-1.0.dist-info"  # a declaration without "="
    typo.mkdir()
    (typo / "METADATA").write_text("Metadata-Version: 2.1\nName: typo\nVersion: 1.0\n")
    (typo / "entry_points.txt").write_text("[workerctl]\ntypo_plugin\n")
    return site


def test_broken_plugins_leave_every_command_working_with_one_line_each(workspace, broken_site):
    env = plugin_env(broken_site)
    listed = run_workerctl("plugins", "list", "--json", workspace=workspace, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {p["name"]: p for p in json.loads(listed.stdout)}  # one document: nothing printed into it
    assert rows["exiting"]["error"] == "failed to load: SystemExit: exiting refuses to load"
    assert rows["unreadable"]["error"] == "failed to load: Weird: (its message could not be read: ValueError)"
    assert rows["multiline"]["error"] == "failed to load: RuntimeError: first line second line"
    assert rows["chatty"]["error"] is None
    assert rows["typo"]["error"].endswith(
        "entry_points.txt:2: no '=' in 'typo_plugin': write it as 'name = module'"
    )
    assert "chatty loading" in listed.stderr and "chatty loading" not in listed.stdout
    warnings = [line for line in listed.stderr.splitlines() if "plugin '" in line]
    assert any(
        "plugin 'hookexit' failed in register_tools: SystemExit: no tools today" in w for w in warnings
    )
    assert any("plugin 'hookbase' failed in register_tool_categories: Mine: mine" in w for w in warnings)
    assert "Traceback" not in listed.stderr

    tools = run_workerctl("tools", "list", "--json", workspace=workspace, env=env)
    assert tools.returncode == 0, tools.stderr
    assert any(t["name"] == "read_task" for t in json.loads(tools.stdout))
    started = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace, env=env
    )
    assert started.returncode == 0, started.stderr
    typo = run_workerctl("nosuchcommand", workspace=workspace, env=env)
    assert typo.returncode == 2 and "No such command" in typo.stderr  # not exit 0 from cmdexit's sys.exit


ALPHA = """
import click
from workerctl.api import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command()
    def forecast():
        click.echo("forecast by {who}")
"""

BROKEN_FIRST = "raise RuntimeError('aaa is broken, unrelated')\n"

FAILS_TO_ADD = """
from workerctl.api import hookimpl

@hookimpl
def register_commands(cli):
    raise ValueError("zzz cannot add weather")
"""


def test_the_command_that_runs_is_the_one_help_lists(workspace, tmp_path):
    """Two packages declare ``forecast``: --help lists the first on sys.path, and
    running ``forecast`` must run that one, not the plugin whose name sorts first."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    install_plugin(first, "zed", ALPHA.format(who="zed"), commands={"forecast": "zed:forecast"})
    install_plugin(second, "abe", ALPHA.format(who="abe"), commands={"forecast": "abe:forecast"})
    env = {"PYTHONPATH": f"{first}:{second}"}
    shown = run_workerctl("--help", env=env)
    assert "(zed)" in shown.stdout and "(abe)" not in shown.stdout
    ran = run_workerctl("forecast", workspace=workspace, env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "forecast by zed"


def test_a_declared_command_that_fails_names_its_own_plugins_problem(workspace, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "aaa", BROKEN_FIRST)
    install_plugin(site, "zzz", FAILS_TO_ADD, commands={"weather": "zzz:weather"})
    ran = run_workerctl("weather", workspace=workspace, env=plugin_env(site))
    assert ran.returncode == 1
    line = [x for x in ran.stderr.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "zzz cannot add weather" in line[0], ran.stderr
    assert "aaa is broken" not in line[0]
