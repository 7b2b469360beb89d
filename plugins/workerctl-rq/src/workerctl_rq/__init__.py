"""workerctl-rq: the ``rq`` executor and the ``workerctl rq worker`` command."""

from __future__ import annotations

from workerctl.api import hookimpl
from workerctl_rq.executor import RQExecutor

__all__ = ["RQExecutor"]


@hookimpl
def register_executors(register):
    register(RQExecutor())


@hookimpl
def register_commands(cli):
    from workerctl_rq.cli import rq

    cli.add_command(rq)
