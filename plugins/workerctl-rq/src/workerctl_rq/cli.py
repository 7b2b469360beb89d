"""``workerctl rq worker``: RQ's own worker, executing workerctl runs."""

from __future__ import annotations

import os

import click


@click.group()
def rq():
    """Run workers on a pool of machines through RQ (Redis Queue)."""


@rq.command("worker")
@click.option("--queue", "queues", multiple=True, required=True, help="Queue to take runs from (repeatable).")
@click.option("--redis-url", help="Redis URL (default: $WORKERCTL_REDIS_URL, else redis://127.0.0.1:6379/0).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", help="Worker name (default: RQ's).")
@click.pass_context
def worker(ctx, queues, redis_url, burst, name):
    """Execute queued runs with this machine's workspace (-w or WORKERCTL_WORKSPACE)."""
    from redis.exceptions import RedisError
    from rq import Queue, Worker

    from workerctl.api import HistoryError, UsageError, find_workspace
    from workerctl_rq.connection import connect, safe_url
    from workerctl_rq.connection import redis_url as default_url

    workspace = find_workspace(ctx.find_root().params.get("workspace"))
    os.environ["WORKERCTL_WORKSPACE"] = str(workspace.root)  # for the work horses
    url = redis_url or default_url({})
    connection = connect(url)
    try:
        connection.ping()
    except RedisError as exc:
        raise HistoryError(
            f"cannot reach Redis at {safe_url(url)}: {exc}", hint="start Redis or pass --redis-url"
        ) from None
    if not queues:
        raise UsageError("name at least one --queue")
    rq_worker = Worker([Queue(q, connection=connection) for q in queues], connection=connection, name=name)
    click.echo(f"rq worker for {', '.join(queues)} at {safe_url(url)}, workspace {workspace.root}", err=True)
    rq_worker.work(burst=burst, logging_level="WARNING")
