"""The plugin contract with real installed distributions (dist-info on sys.path)."""

from __future__ import annotations

import json

import pytest

from helpers import install_plugin as install
from helpers import plugin_env as env_with
from helpers import run_workerctl

GOOD = """
from workerctl import hookimpl
from workerctl.engine.step import Step
from workerctl.engine.tools import Tool


class Shout:
    name = "shout"
    description = "Answers with the instructions in capitals"

    def step(self, request):
        return Step(text=request.instructions.upper())


class Clash:
    name = "echo"
    description = "tries to replace the built-in echo"

    def step(self, request):
        return Step(text="hijacked")


def read_weather(ctx, city):
    return {"city": city, "sky": "clear"}


@hookimpl
def register_executors(register):
    register(Shout())
    register(Clash())


@hookimpl
def register_tool_categories(register):
    register("weather", "Read the weather")


@hookimpl
def register_tools(register):
    register(Tool("read_weather", "weather", "Read the weather of a city", read_weather,
                  {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}))
"""

BROKEN = "import this_module_does_not_exist\n"


@pytest.mark.slow
def test_installed_plugins_register_through_the_hooks(workspace, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "goodplugin", GOOD)
    install(site, "brokenplugin", BROKEN)
    env = env_with(site)
    plugins = run_workerctl("plugins", "list", "--json", workspace=workspace, env=env)
    assert plugins.returncode == 0, plugins.stderr
    rows = {p["name"]: p for p in json.loads(plugins.stdout)}
    assert rows["goodplugin"]["version"] == "1.2.3"
    assert set(rows["goodplugin"]["hooks"]) == {
        "register_executors",
        "register_tools",
        "register_tool_categories",
    }
    assert "No module named 'this_module_does_not_exist'" in rows["brokenplugin"]["error"]
    assert rows["workerctl.plugins.builtin.echo_executor"]["builtin"] is True
    assert "plugin 'brokenplugin' skipped" in plugins.stderr
    assert (
        "plugin 'goodplugin' registers executor 'echo', already registered by plugin "
        "'workerctl.plugins.builtin.echo_executor'"
    ) in plugins.stderr

    executors = json.loads(run_workerctl("executors", "list", "--json", workspace=workspace, env=env).stdout)
    owners = {e["name"]: e["plugin"] for e in executors}
    assert owners["shout"] == "goodplugin" and owners["echo"] == "workerctl.plugins.builtin.echo_executor"
    tools = json.loads(run_workerctl("tools", "list", "--json", workspace=workspace, env=env).stdout)
    weather = next(t for t in tools if t["name"] == "read_weather")
    assert weather["category"] == "weather" and weather["writes"] is False

    (workspace.workers_dir / "loud.yaml").write_text(
        "name: loud\nstatus: active\ninstructions: say hello\noutput_mode: review_note\n"
        "tool_categories: [weather]\nexecutor: {name: shout}\n"
    )
    assert run_workerctl("worker", "validate", "loud", workspace=workspace, env=env).returncode == 0
    ran = run_workerctl("run", "start", "loud", "--json", workspace=workspace, env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == "SAY HELLO"
    without = run_workerctl("worker", "validate", "loud", workspace=workspace)
    assert without.returncode == 2
    assert "unknown tool category 'weather'" in without.stdout
    assert "unknown executor 'shout'" in without.stdout


def test_builtin_plugins_are_listed_with_their_hooks(wcli):
    rows = {p["name"]: p for p in json.loads(wcli("plugins", "list", "--json").output)}
    assert rows["workerctl.plugins.builtin.record_tools"]["hooks"] == ["register_tools"]
    assert rows["workerctl.plugins.builtin.command_executor"]["hooks"] == ["register_executors"]
    tools = {t["name"]: t for t in json.loads(wcli("tools", "list", "--json").output)}
    expected = {
        "read_task": "productivity",
        "list_project_tasks": "productivity",
        "add_task_comment": "productivity",
        "read_contact": "crm",
        "read_company": "crm",
        "read_invoice": "finance",
        "read_doc": "docs",
        "read_product": "products",
    }
    for name, category in expected.items():
        assert tools[name]["category"] == category
    assert tools["add_task_comment"]["writes"] is True
    assert tools["read_task"]["writes"] is False
    table = wcli("tools", "list").output
    assert "write" in table and "read" in table
