#!/usr/bin/env bash
# Each morning: WORKER (default stale-review, made from the tracker-stale-review template)
# on every open issue of the Roundup tracker that nobody touched for DAYS days (default 7),
# 4 at a time in one process. One message per issue, never two: the duplicate guard skips
# an issue the worker already wrote on unless someone changed it since (the tracker's
# own reaction to the message does not count), and a message whose answer was lost is
# found on the tracker by its run's key, not posted again.
# Credentials: WORKERCTL_ROUNDUP_USER / WORKERCTL_ROUNDUP_PASSWORD or ~/.netrc.
# Exit 0 when every run completed or was skipped, 1 when any failed (cron mails the output).
days=${DAYS:-7}
case $days in '' | *[!0-9]*) echo "DAYS must be a whole number of days, not '$days'" >&2; exit 2 ;; esac
exec "${WORKERCTL:-workerctl}" run start "${1:-stale-review}" --type issue --jobs 4 --trigger cron \
  --reason "stale issue review (no activity for $days days)" \
  --where ".fields.status != \"resolved\" and .fields.activity < ((now - $days * 86400) | todate)"
