#!/usr/bin/env bash
# Create/refresh the project virtualenv (.venv) with the dev dependencies and the agent installed
# editable. Reinstalls only when requirements-dev.txt, agent/pyproject.toml or this script changed
# (a stamp file in the venv holds their hash); a no-op run takes a fraction of a second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.fleetbgp-setup-stamp"
INPUTS=(requirements-dev.txt agent/pyproject.toml scripts/setup-venv.sh)

log() { printf 'setup-venv: %s\n' "$*" >&2; }

want=$(cat "${INPUTS[@]}" | sha256sum | cut -d' ' -f1)

# Fast path: the venv's interpreter still runs and the stamp matches.
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(<"$STAMP")" == "$want" ]] \
    && "$VENV/bin/python" -c '' 2>/dev/null; then
    exit 0
fi

# Serialise concurrent runs (several make targets or people in the same tree).
exec 9>".setup.lock"
flock 9
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(<"$STAMP")" == "$want" ]]; then
    exit 0
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    log "need Python >= 3.11 as '$PYTHON' (found: $("$PYTHON" -V 2>&1 || echo none))"
    exit 1
fi

if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    [[ -e "$VENV" ]] && log "$VENV is broken, recreating it"
    rm -rf "$VENV"
    log "creating $VENV with $("$PYTHON" -V 2>&1) ($(command -v "$PYTHON"))"
    "$PYTHON" -m venv "$VENV"
fi

rm -f "$STAMP"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)
# This machine kind's pip.conf names local index mirrors that may be absent: drop pip's
# "Location ... is ignored" noise about them, keep every other message.
quiet_pip() { "${pip[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
log "installing requirements-dev.txt"
quiet_pip install --progress-bar off -r requirements-dev.txt
log "installing agent/ (editable)"
quiet_pip install --progress-bar off --no-build-isolation --no-deps -e agent/
"${pip[@]}" check >/dev/null || { "${pip[@]}" check; exit 1; }
printf '%s\n' "$want" >"$STAMP"
log "ready: $("$VENV/bin/python" -V), fleetbgp $("$VENV/bin/python" -c \
    'import fleetbgp; print(fleetbgp.__version__)')"
