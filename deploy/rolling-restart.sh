#!/bin/sh
# Restarts the app's instances one at a time, each serving again before the next one
# stops, so nginx always has an instance to send requests to (docs/zero-downtime.md):
#
#   sudo sh deploy/rolling-restart.sh 8000 8001
#
# It stops at the first instance that is not ready within READY_TIMEOUT seconds (30),
# leaving the others on the code they run. RESTART_COMMAND replaces systemctl for
# another supervisor: a printf format, %s the port.
set -eu
restart=${RESTART_COMMAND:-"systemctl restart flask-app@%s"}
timeout=${READY_TIMEOUT:-30}
[ "$#" -gt 0 ] || { echo "usage: $0 PORT [PORT ...]" >&2; exit 2; }
for port in "$@"; do
    # shellcheck disable=SC2059 # the format comes from RESTART_COMMAND on purpose
    sh -c "$(printf "$restart" "$port")"
    # systemctl returns once gunicorn listens; /readyz says 200 once a worker serves.
    if ! python3 - "$port" "$timeout" <<'PY'
import sys, time, urllib.request

port, limit = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
PY
    then
        echo "rolling-restart: the instance on port $port is not ready after ${timeout}s;" \
            "the instances after it were not restarted (journalctl -u flask-app@$port)" >&2
        exit 1
    fi
    echo "rolling-restart: port $port restarted and ready"
done
