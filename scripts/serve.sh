#!/usr/bin/env bash
# Install what is needed into .venv/, migrate, collect static files, and serve Messaging Lab with
# Daphne on http://127.0.0.1:8000 (override with LAB_HOST / LAB_PORT). Safe to run again.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"
bootstrap_venv requirements.txt

"$VENV_PYTHON" manage.py migrate --noinput
"$VENV_PYTHON" manage.py collectstatic --noinput --verbosity 0

host="${LAB_HOST:-127.0.0.1}"
port="${LAB_PORT:-8000}"
echo "Serving Messaging Lab on http://$host:$port/ (Ctrl-C to stop)" >&2
exec "$VENV_DIR/bin/daphne" -b "$host" -p "$port" messaging_lab.asgi:application
