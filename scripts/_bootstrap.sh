# Shared set-up for scripts/serve.sh and scripts/test.sh. Source it, then call
#   bootstrap_venv REQUIREMENTS_FILE
# It makes sure .venv/ exists (Python 3.11+) and holds REQUIREMENTS_FILE's packages, and leaves the
# shell in the project root. pip runs only when a requirements*.txt file changed since the last
# successful install for that file (a sha256 stamp in .venv/), so a second run is fast.

set -euo pipefail

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="$PROJECT_ROOT/.venv"
VENV_PYTHON="$VENV_DIR/bin/python"

die() {
    echo "error: $*" >&2
    exit 1
}

# True when the interpreter $1 runs and is Python 3.11 or newer.
_is_python_311_plus() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

# Print the interpreter to build .venv with: python3.11, else python3 if it is 3.11+.
_find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && _is_python_311_plus "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    die "Messaging Lab needs Python 3.11 or newer, but neither python3.11 nor python3 is one." \
        "Install Python 3.11 (e.g. 'apt-get install python3.11 python3.11-venv') and run this again."
}

# sha256 over the names and contents of every requirements*.txt (requirements-test.txt includes
# requirements.txt with -r, so a change to either must count).
_requirements_digest() {
    (cd "$PROJECT_ROOT" && sha256sum requirements*.txt | sha256sum | cut -d' ' -f1)
}

bootstrap_venv() {
    local requirements="$1"
    cd "$PROJECT_ROOT"
    [[ -f "$requirements" ]] || die "no $requirements in $PROJECT_ROOT"

    if [[ ! -x "$VENV_PYTHON" ]]; then
        local python
        python="$(_find_python)"
        echo "Creating .venv with $python ($("$python" --version 2>&1))" >&2
        "$python" -m venv "$VENV_DIR"
    elif ! _is_python_311_plus "$VENV_PYTHON"; then
        die ".venv/ exists but its Python is not 3.11+ (or does not run). Remove .venv/ and run this again."
    fi

    local stamp="$VENV_DIR/.requirements-stamp-$requirements"
    local digest
    digest="$(_requirements_digest)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$digest" ]]; then
        echo "Installing $requirements into .venv/" >&2
        "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check -r "$requirements"
        # Written only after pip succeeded, so a failed install is retried next time.
        echo "$digest" >"$stamp.tmp"
        mv "$stamp.tmp" "$stamp"
    fi

    mkdir -p "$PROJECT_ROOT/var"
}
