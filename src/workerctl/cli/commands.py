"""The command table and the top-level help text, kept apart from click.

Both the click group (``cli.root``) and the fast path (``cli.fast``, which answers
``workerctl --help`` without importing click) read them, so the two cannot drift.
"""

from __future__ import annotations

# name -> (module:attribute, short help)
COMMANDS = {
    "init": ("workerctl.cli.init:init", "Make a new workspace with sample workers and records."),
    "workers": ("workerctl.cli.workers:workers", "List workers."),
    "worker": ("workerctl.cli.workers:worker", "Show, create, edit, validate and version a worker."),
    "templates": ("workerctl.cli.templates:templates", "The catalogue of worker templates."),
    "run": ("workerctl.cli.run:run", "Start, watch, inspect, diff, troubleshoot, review, rerun or cancel."),
    "runs": ("workerctl.cli.runs:runs", "List, watch, count, prune, rerun and cancel runs."),
    "ledger": ("workerctl.cli.ledger:ledger", "Side effects runs made; settle unknown ones."),
    "records": ("workerctl.cli.records:records", "The business records runs act on."),
    "plugins": ("workerctl.cli.plugins:plugins", "Installed plugins and the hooks they implement."),
    "tools": ("workerctl.cli.plugins:tools", "Tools workers can call, by category."),
    "executors": ("workerctl.cli.plugins:executors", "Installed executors."),
    "completion": ("workerctl.cli.completion:completion", "Print a shell completion script."),
}

ROOT_HELP = """Run AI workers, record every run, troubleshoot failures and review output.

Exit codes: 0 ok; 1 a run failed; 2 bad usage or invalid configuration;
3 not found; 4 the history is locked or damaged; 5 a start refused as a
duplicate (nothing ran); 130 interrupted (Ctrl-C).
"""

#: the group's own options as (flags, metavar, help), in the order help lists them
ROOT_OPTIONS = (
    (
        "-w, --workspace",
        "DIR",
        "Workspace folder (default: $WORKERCTL_WORKSPACE, else the "
        "nearest parent folder holding workerctl.yaml).",
    ),
    ("--version", None, "Show the version and exit."),
    ("-h, --help", None, "Show this message and exit."),
)

PLUGIN_COMMANDS_NOTE = "Plugins may add more ('workerctl plugins list' shows them)."
