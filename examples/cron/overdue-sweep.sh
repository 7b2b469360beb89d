#!/usr/bin/env bash
# Run WORKER (default overdue-task-review) on every overdue task, 4 at a time, in one
# process. Cron mails whatever a job prints, so it prints nothing when no run failed
# (tasks the duplicate guard skips, and every task of a paused worker, are not
# failures) and one line per failure otherwise, with its fix. Exit 0 when no run
# failed, 1 when any failed, 2 bad usage, 3 unknown worker. Drop --quiet for the table.
exec "${WORKERCTL:-workerctl}" run start "${1:-overdue-task-review}" --type task --jobs 4 --quiet \
  --trigger cron --reason "overdue sweep" \
  --where '.due != null and .due < (now | strftime("%Y-%m-%d")) and .status != "done" and .status != "cancelled"'
