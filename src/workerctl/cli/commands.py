"""The command table: each built-in command's module and short help.

The group (``cli.root``) lists the short help in ``workerctl --help`` without
importing any command's module, and imports a module only when its command runs.
"""

from __future__ import annotations

#: name -> (module:attribute, short help)
COMMANDS = {
    "init": ("workerctl.cli.init:init", "Make a new workspace with sample workers and records."),
    "workers": ("workerctl.cli.workers:workers", "List workers."),
    "worker": ("workerctl.cli.workers:worker", "Show, create, edit, validate and version a worker."),
    "templates": ("workerctl.cli.templates:templates", "The catalogue of worker templates."),
    "run": ("workerctl.cli.run:run", "Start, watch, inspect, diff, troubleshoot, review, rerun or cancel."),
    "runs": ("workerctl.cli.runs:runs", "List, search, watch, count, prune, rerun and cancel runs."),
    "ledger": ("workerctl.cli.ledger:ledger", "Side effects runs made; settle unknown ones."),
    "records": ("workerctl.cli.records:records", "The business records runs act on."),
    "plugins": ("workerctl.cli.plugins:plugins", "Installed plugins and the hooks they implement."),
    "tools": ("workerctl.cli.plugins:tools", "Tools workers can call, by category."),
    "executors": ("workerctl.cli.plugins:executors", "Installed executors."),
    "completion": ("workerctl.cli.completion:completion", "Print a shell completion script."),
}
