#!/usr/bin/env bash
# Install what is needed (including test tools) into .venv/ and run every test, on every core
# (pytest-xdist; TEST_WORKERS=0 runs in one process). Arguments go to pytest, e.g.
#   ./scripts/test.sh -q tests/test_project.py
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"
bootstrap_venv requirements-test.txt

# --dist loadgroup keeps the browser tests (xdist_group "browser") on one worker: one chromium at a time.
exec "$VENV_PYTHON" -m pytest -n "${TEST_WORKERS:-auto}" --dist loadgroup "$@"
