#!/usr/bin/env bash
# A Roundup tracker with 12 sample issues on 127.0.0.1 and a workspace that reads it:
#   plugins/workerctl-roundup/scripts/demo-tracker.sh DIR        make (once) and start it
#   plugins/workerctl-roundup/scripts/demo-tracker.sh DIR stop   stop its server
# Needs the plugin with its test extra: pip install -e "plugins/workerctl-roundup[test]".
# The tracker's admin password is a throw-away demo one (admin-demo); the workspace gets
# it from the environment, as it would a real one.
set -euo pipefail
dir=$(realpath -m "${1:?usage: demo-tracker.sh DIR [stop]}")
here=$(cd "$(dirname "$0")/../../.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
if [ "${2:-}" = stop ]; then exec "$py" -m workerctl_roundup.local "$dir/tracker" --stop; fi
url=$("$py" -m workerctl_roundup.local "$dir/tracker" --detach)
if [ ! -e "$dir/ws/workerctl.yaml" ]; then
  "$py" -m workerctl init "$dir/ws" >/dev/null
  printf 'record_sources:\n  - name: bugs\n    kind: roundup\n    url: %s\n' "$url" >>"$dir/ws/workerctl.yaml"
fi
cat <<EOT
roundup-server runs at $url (stop it: $0 $1 stop)
  export WORKERCTL_WORKSPACE=$dir/ws WORKERCTL_ROUNDUP_USER=admin WORKERCTL_ROUNDUP_PASSWORD=admin-demo
  workerctl records sources
  workerctl records list --type issue
  workerctl worker new stale --template tracker-stale-review
EOT
