#!/usr/bin/env bash
# test-collection.sh [--sanity-only|--units-only|--docs-only] [ansible-test sanity options...]
#
# The Ansible collection's own checks, run the way the ecosystem runs them, on what we ship: the
# collection is built (`ansible-galaxy collection build`; galaxy.yml's build_ignore leaves out the
# agent's tests, the lab, bench, scripts/*.sh, ...) and installed from that tarball into a temporary
# collections path (`ansible-galaxy collection install --offline`). On the installed copy:
#
#   sanity  `ansible-test sanity --local --python 3.11`: every sanity test, on everything shipped,
#           agent/ included (the agent's source ships for the agent role to build wheels from). None
#           is skipped with --skip-test. Exceptions, if any, are in tests/sanity/ignore-X.Y.txt, the
#           file ansible-test itself reads for the ansible-core X.Y it runs under, each with its reason.
#           Then the tests that depend on the Python version (compile, import) on every other Python
#           that this ansible-core supports and that is installed here (pythonX.Y on PATH, or pyenv's).
#   units   `ansible-test units --local --python 3.11`: tests/unit (modules, module_utils, controller
#           tests, the roles' tools) against the shipped agent source and the shipped fake speaker
#           (tests/unit/fakes). Then, on the checkout, the few unit tests marked `checkout` that need
#           what is not shipped (galaxy.yml, scripts/module-docs.py): scripts/run-pytest.sh -m checkout.
#   docs    `antsibull-docs lint-collection-docs --plugin-docs`: module and role docs, their markup
#           and cross-references.
#
# Every stage runs (unless one is chosen); the exit status is 1 if any failed.
#
# Python versions on this machine (Debian 12 + pyenv): 3.11 is the controller and runs everything;
# compile and import also run on 3.8, 3.9, 3.10, 3.12 and 3.13 when pyenv has them (it does on the
# developers' machines and CI); a version that is not installed is named as "not run" in the output.
# Units run on 3.11 only (the agent, which the modules' tests drive, needs Python >= 3.11).
#
# Another ansible-core: VENV=.matrix/core-2.16 scripts/test-collection.sh uses that virtualenv's
# ansible-test, ansible-galaxy and python (it needs pytest, pytest-xdist and prometheus_client for the
# units, pytest-timeout to enforce their time limits: tests/unit/requirements.txt; antsibull-docs is
# taken from .venv if that virtualenv has none). ansible-test then reads tests/sanity/ignore-<X.Y>.txt.
# Tried: ansible-core 2.19 (.venv) and 2.16 (sanity, units and docs pass, no ignore entries needed).
#
# ansible-test installs each sanity test's tools (pylint, pycodestyle, voluptuous, yamllint, ...) from
# the package index into its own cached virtualenvs (~/.ansible/test/venv): the first run takes a
# minute or two, later runs reuse them. No container, no network beyond the package index.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

VENV=${VENV:-.venv}
PY="$ROOT/$VENV/bin/python"
SANITY_PYTHON=${SANITY_PYTHON:-3.11}

run_sanity=1 run_units=1 run_docs=1
case "${1:-}" in
    --sanity-only) run_units=0 run_docs=0; shift ;;
    --units-only) run_sanity=0 run_docs=0; shift ;;
    --docs-only) run_sanity=0 run_units=0; shift ;;
esac

log() { printf '== %s\n' "$*"; }

if [[ ! -x "$PY" ]]; then
    echo "test-collection: $VENV is missing; run 'make setup-venv' first" >&2
    exit 1
fi
export PATH="$ROOT/$VENV/bin:$PATH"
CORE=$("$PY" -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))')

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

# The collection built from this checkout and installed from its tarball, once for every stage.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fleetbgp-collection.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/installed/ansible_collections/fleet/bgp"
install_collection() {
    log "building the collection (galaxy.yml, build_ignore applied) and installing the tarball (ansible-core $CORE)"
    "$ROOT/$VENV/bin/ansible-galaxy" collection build --output-path "$WORK/build" "$ROOT" >/dev/null
    ANSIBLE_COLLECTIONS_PATH="$WORK/installed" "$ROOT/$VENV/bin/ansible-galaxy" collection install \
        --offline --no-deps -p "$WORK/installed" "$WORK"/build/fleet-bgp-*.tar.gz >/dev/null
    printf 'left out by galaxy.yml build_ignore (not shipped): %s\n' \
        "$("$PY" -c 'import sys, yaml; print(", ".join(yaml.safe_load(open(sys.argv[1])).get("build_ignore") or []))' galaxy.yml)"
}

sanity() {
    local ignore="tests/sanity/ignore-$CORE.txt"
    if [[ -f "$TREE/$ignore" ]]; then
        echo "sanity: $(grep -cv '^\s*\(#\|$\)' "$TREE/$ignore") ignore entries in $ignore (read by ansible-test $CORE)"
    else
        echo "sanity: no $ignore: nothing ignored"
    fi
    ensure_get_pip
    log "sanity: ansible-test sanity --local --python $SANITY_PYTHON $*"
    local rc=0
    (cd "$TREE" && ansible-test sanity --local --python "$SANITY_PYTHON" --color no "$@") || rc=1

    # The modules and module_utils run on the target's Python: the two tests that depend on the
    # Python version (compile, import) also run on every other version this ansible-test supports
    # that is installed here (as pythonX.Y on PATH, or under pyenv); the others are named as not run.
    local v dir missing=()
    for v in $("$PY" -c 'from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS as V
print(" ".join(V))'); do
        [[ "$v" == "$SANITY_PYTHON" ]] && continue
        if ! dir=$(python_dir "$v"); then
            missing+=("$v")
            continue
        fi
        log "sanity: compile and import on Python $v ($dir/python$v)"
        (cd "$TREE" && PATH="$dir:$PATH" ansible-test sanity --local --python "$v" \
            --test compile --test import --color no) || rc=1
    done
    if ((${#missing[@]})); then
        echo "sanity: compile and import NOT RUN on Python ${missing[*]}: not installed here"
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
    local rc=0
    if ! "$PY" -c 'import xdist, prometheus_client' 2>/dev/null; then
        echo "units: $VENV lacks pytest-xdist or prometheus_client (ansible-test units runs pytest -n; the" \
             "agent's control server needs prometheus_client; tests/unit/requirements.txt): 'make setup-venv'" \
             "installs them into .venv" >&2
        return 1
    fi
    log "units: ansible-test units --local --python $SANITY_PYTHON (the installed collection)"
    # PYTHONPATH from the caller (agent/src of a checkout) would shadow the shipped agent source.
    (cd "$TREE" && env -u PYTHONPATH ansible-test units --local --python "$SANITY_PYTHON" --color no) || rc=1
    log "units: the tests that need the checkout (pytest -m checkout)"
    scripts/run-pytest.sh tests/unit/plugins -q -m checkout || rc=1
    return "$rc"
}

docs() {
    local antsibull="$ROOT/$VENV/bin/antsibull-docs"
    [[ -x "$antsibull" ]] || antsibull="$ROOT/.venv/bin/antsibull-docs"
    log "docs: antsibull-docs lint-collection-docs --plugin-docs (the installed collection)"
    (cd "$TREE" && "$antsibull" lint-collection-docs --plugin-docs .)
}

install_collection
failed=() passed=()
stage() {
    local name=$1 start=$SECONDS
    shift
    if "$@"; then passed+=("$name"); else failed+=("$name"); fi
    echo "test-collection: $name took $((SECONDS - start)) s"
}
if ((run_sanity)); then stage sanity sanity "$@"; fi
if ((run_units)); then stage units units; fi
if ((run_docs)); then stage docs docs; fi
if ((${#failed[@]})); then
    echo "test-collection: FAILED: ${failed[*]} (ansible-core $CORE)" >&2
    exit 1
fi
echo "test-collection: passed (${passed[*]}; ansible-core $CORE) in $SECONDS s"
