#!/usr/bin/env bash
# test-collection.sh [--sanity-only|--units-only] [ansible-test sanity options...]
#
# The Ansible collection's own tests: `ansible-test sanity` and the module unit tests. Exits
# non-zero if either fails (both always run, unless one is chosen).
#
# Sanity runs on what the collection ships: `ansible-galaxy collection build` (galaxy.yml's
# build_ignore leaves out the agent's tests, the lab, bench, scripts, ...) unpacked into a temporary
# .../ansible_collections/fleet/bgp, minus agent/ (see AGENT_REASON below), with
# `ansible-test sanity --local --python 3.11`. Every sanity test runs; none is skipped with
# --skip-test. Unavoidable exceptions are in tests/sanity/ignore-2.19.txt, each with its reason.
#
# ansible-test installs each sanity test's tools (pylint, pycodestyle, voluptuous, yamllint, ...) from
# the package index into its own cached virtualenvs (~/.ansible/test/venv): the first run takes a
# minute or two, later runs reuse them. No container, no network beyond the package index.
#
# The unit tests (tests/unit/plugins) run with the repository's pytest, not `ansible-test units`:
# they drive the modules against the agent's real control server (agent/src) with the fake speaker
# of the agent's own tests (tests/agent/control_fakes.py), which are not part of the built
# collection. tests/unit/plugins/conftest.py sets up the collection loader as ansible-test does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

VENV=${VENV:-.venv}
PY="$ROOT/$VENV/bin/python"
SANITY_PYTHON=${SANITY_PYTHON:-3.11}
AGENT_REASON="agent/ is the agent's own Python package (Python >= 3.11 only; linted by ruff and tested
    by pytest in 'make lint' and 'make unit'). The collection ships it as source for the agent role
    to build wheels from: it is not Ansible plugin code, and ansible-test's rules for plugins
    (pylint with Ansible's configuration, pep8 at 160 columns, shebangs) do not apply to it.
    Links into it are replaced by copies first, so plugins/module_utils/fleetbgp_control.py (a
    symlink to agent/src/fleetbgp/control_client.py) is checked in full, as a plugin file."

run_sanity=1
run_units=1
case "${1:-}" in
    --sanity-only) run_units=0; shift ;;
    --units-only) run_sanity=0; shift ;;
esac

log() { printf '== %s\n' "$*"; }

if [[ ! -x "$PY" ]]; then
    echo "test-collection: $VENV is missing; run 'make setup-venv' first" >&2
    exit 1
fi
export PATH="$ROOT/$VENV/bin:$PATH"

# ansible-test puts pip into each new virtualenv with a get-pip.py it downloads from a host this
# machine cannot reach. It takes a cached copy first: put a stand-in there that installs the pip
# that ships with Python (ensurepip), then the requested pip from the package index.
ensure_get_pip() {
    local version cache marker="fleet.bgp get-pip stand-in v1"
    version=$("$PY" -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3"))["pip"])')
    cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
    [[ -f "$cache" ]] && return 0  # the real one, or this stand-in from an earlier run
    mkdir -p "$(dirname "$cache")"
    cat >"$cache.tmp" <<EOF
"""$marker (scripts/test-collection.sh of the fleet.bgp collection).

ansible-test runs get-pip.py to put pip into an empty virtual environment; the original comes from a
host this machine cannot reach. This installs the pip bundled with Python (ensurepip), then the
requested packages (pip==$version) from the package index with it."""
import ensurepip
import os
import subprocess
import sys

ENV = dict(os.environ)  # ensurepip drops PIP_* and points PIP_CONFIG_FILE at /dev/null in os.environ
ensurepip.bootstrap(upgrade=True)
ARGS = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + ARGS,
                         env=ENV))
EOF
    mv "$cache.tmp" "$cache"
}

sanity() {
    local work tree tarball
    work=$(mktemp -d "${TMPDIR:-/tmp}/fleetbgp-sanity.XXXXXX")
    trap 'rm -rf "$work"' RETURN
    tree="$work/ansible_collections/fleet/bgp"
    mkdir -p "$tree" "$work/build"

    log "sanity: building the collection (galaxy.yml, build_ignore applied)"
    "$ROOT/$VENV/bin/ansible-galaxy" collection build --output-path "$work/build" "$ROOT" >/dev/null
    tarball=$(echo "$work"/build/*.tar.gz)
    tar -xzf "$tarball" -C "$tree"

    # Links into agent/ become copies, then agent/ goes (see AGENT_REASON).
    while IFS= read -r -d '' link; do
        target=$(readlink -f "$link")
        case "$target" in
            "$tree"/agent/*) cp --remove-destination "$target" "$link" ;;
        esac
    done < <(find "$tree" -type l -print0)
    rm -rf "$tree/agent"
    printf 'sanity: left out of the sanity tree:\n    %s\n' "$AGENT_REASON"
    printf 'sanity: left out by galaxy.yml build_ignore (not shipped): %s\n' \
        "$("$PY" -c 'import sys, yaml; print(", ".join(yaml.safe_load(open(sys.argv[1])).get("build_ignore") or []))' galaxy.yml)"
    ensure_get_pip
    log "sanity: ansible-test sanity --local --python $SANITY_PYTHON $*"
    local rc=0
    (cd "$tree" && "$ROOT/$VENV/bin/ansible-test" sanity --local --python "$SANITY_PYTHON" --color no "$@") \
        || rc=1

    # The modules and module_utils run on the target's Python: the two tests that depend on the
    # Python version (compile, import) also run on every other version ansible-test supports that is
    # installed here (as pythonX.Y on PATH, or under pyenv); the others are named as not tested.
    local v dir missing=()
    for v in $("$PY" -c 'from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS as V
print(" ".join(V))'); do
        [[ "$v" == "$SANITY_PYTHON" ]] && continue
        if ! dir=$(python_dir "$v"); then
            missing+=("$v")
            continue
        fi
        log "sanity: compile and import on Python $v ($dir/python$v)"
        (cd "$tree" && PATH="$dir:$PATH" "$ROOT/$VENV/bin/ansible-test" sanity --local --python "$v" \
            --test compile --test import --color no) || rc=1
    done
    if ((${#missing[@]})); then
        echo "sanity: compile and import not run on Python ${missing[*]}: not installed here"
    fi
    return "$rc"
}

# The directory of a working pythonX.Y: on PATH (a pyenv shim only counts if it runs), or pyenv's.
python_dir() {
    local v=$1 exe
    if exe=$(command -v "python$v") && "$exe" -c '' 2>/dev/null; then
        dirname "$exe"
        return 0
    fi
    for exe in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/"python$v"; do
        if [[ -x "$exe" ]] && "$exe" -c '' 2>/dev/null; then
            dirname "$exe"
            return 0
        fi
    done
    return 1
}

units() {
    # tests/unit/plugins: the modules; tests/unit/roles: the tools the roles ship (e.g. the backup tool).
    local rc=0 d
    for d in tests/unit/plugins tests/unit/roles; do
        log "units: pytest $d"
        scripts/run-pytest.sh "$d" || rc=1
    done
    return $rc
}

failed=()
if ((run_sanity)); then sanity "$@" || failed+=(sanity); fi
if ((run_units)); then units || failed+=(units); fi
if ((${#failed[@]})); then
    echo "test-collection: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test-collection: passed ($( ((run_sanity)) && echo -n 'sanity ')$( ((run_units)) && echo -n 'units'))"
