#!/usr/bin/env bash
# The production entry: Replit's deploy button runs it ([deployment] run in .replit),
# and it works anywhere else the same way: bash flask_deploy.sh
#
# Everything comes from the environment (see .env.example and `python main.py config`):
# REPLIT_DEPLOYMENT=1, which Replit sets in deployments, makes APP_ENV production; PORT=80,
# if the platform sets it, is replaced by the internal port .replit maps to 80 (5000),
# because this unprivileged process may not bind port 80 (one log line says so).
#
# Nothing slow happens before the server listens: Replit's promotion check waits for an
# answer on GET / and gives up after a few seconds, so install dependencies at build
# time, never here. `exec` replaces this shell with gunicorn, so gunicorn's master is
# the process the platform started (PID 1 of the deployment): the platform's SIGTERM
# reaches it directly and it drains requests in flight before exiting.
set -euo pipefail

# gunicorn_config.py and wsgi.py are found relative to this script, whatever the cwd.
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v gunicorn >/dev/null 2>&1; then
    echo "flask_deploy.sh: gunicorn is not installed in this environment (not on PATH)." \
        "Install the dependencies at build time: python3 -m pip install -r requirements.txt" >&2
    exit 127
fi

exec gunicorn -c gunicorn_config.py wsgi:app
