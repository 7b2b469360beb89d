#!/usr/bin/env bash
# Run WORKER (default overdue-task-review) on every overdue task, 4 at a time, in one
# process; prints a summary and each failure with its fix. Exit 0 when every run
# completed, 1 when any failed (cron mails the output), 2 bad usage, 3 unknown worker.
exec "${WORKERCTL:-workerctl}" run start "${1:-overdue-task-review}" --type task --jobs 4 --trigger cron --reason "overdue sweep" \
  --where '.due != null and .due < (now | strftime("%Y-%m-%d")) and .status != "done" and .status != "cancelled"'
