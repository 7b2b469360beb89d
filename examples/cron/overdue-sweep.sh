#!/usr/bin/env bash
# Run a worker on every overdue task, wait for all runs, and report the failures.
#
#   WORKERCTL_WORKSPACE=/srv/workers overdue-sweep.sh [WORKER]
#
# Exit status: 0 when every run completed, 1 when any failed (cron mails the output),
# 2 on bad usage. A task the worker already commented on, unchanged since, is skipped
# (run start exits 5: the duplicate guard), so a daily sweep never posts the same
# summary twice. Needs workerctl and jq on PATH.
set -euo pipefail

worker="${1:-overdue-task-review}"
workerctl="${WORKERCTL:-workerctl}"
wait_seconds="${WAIT_SECONDS:-2}"
today="$(date -u +%Y-%m-%d)"

command -v jq >/dev/null || { echo "overdue-sweep: jq is not installed" >&2; exit 2; }

# Overdue: a task with a due date before today that is not done or cancelled.
mapfile -t tasks < <("$workerctl" records list --type task --json \
  | jq -r --arg today "$today" \
      '.[] | select(.due != null and .due < $today
                    and (.status // "") != "done" and (.status // "") != "cancelled") | .id')

if [ "${#tasks[@]}" -eq 0 ]; then
  echo "overdue-sweep: no overdue tasks on $today"
  exit 0
fi

since="$(date -u +%Y-%m-%dT%H:%M:%S)"  # before the first run starts
run_ids=()
skipped=()
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
for task in "${tasks[@]}"; do
  if id="$("$workerctl" run start "$worker" --task "$task" --detach --trigger cron \
             --reason "overdue sweep $today" 2>"$errors")"; then
    run_ids+=("$id")
  else
    code=$?
    # 5: the duplicate guard (already done on this unchanged task, or running now)
    if [ "$code" -ne 5 ]; then cat "$errors" >&2; exit "$code"; fi
    skipped+=("$task")
  fi
done
if [ "${#skipped[@]}" -gt 0 ]; then
  echo "overdue-sweep: skipped ${#skipped[@]} task(s) $worker already handled, unchanged" \
       "since: ${skipped[*]}"
fi
if [ "${#run_ids[@]}" -eq 0 ]; then
  echo "overdue-sweep: nothing new to review on $today"
  exit 0
fi
echo "overdue-sweep: started ${#run_ids[@]} run(s) of $worker: ${run_ids[*]}"

# Wait until every run has finished; --exit-status makes the exit code 1 if any failed.
status=0
"$workerctl" runs list --worker "$worker" --since "$since" --limit 0 \
  --watch "$wait_seconds" --exit-status --format ids >/dev/null || status=$?
if [ "$status" -gt 1 ]; then
  echo "overdue-sweep: could not read the run history (exit $status)" >&2
  exit "$status"
fi

failed=0
for id in "${run_ids[@]}"; do
  state="$("$workerctl" run inspect --id "$id" --json | jq -r '.status')"
  if [ "$state" != "completed" ]; then
    failed=$((failed + 1))
    "$workerctl" run troubleshoot --id "$id" --json | jq -r --arg id "$id" '
      .steps[0] as $first
      | "FAILED \($id): \($first.evidence[0])\n  first step: \($first.title)\n  fix: \($first.action)"'
  fi
done

echo "overdue-sweep: $(( ${#run_ids[@]} - failed )) completed, $failed failed"
[ "$failed" -eq 0 ]
