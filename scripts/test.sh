#!/usr/bin/env bash
# Install what is needed (including test tools) into .venv/ and run every test.
# Arguments go to pytest, e.g.  ./scripts/test.sh -q tests/test_project.py
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"
bootstrap_venv requirements-test.txt

exec "$VENV_PYTHON" -m pytest "$@"
