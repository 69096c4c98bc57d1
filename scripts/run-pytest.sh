#!/usr/bin/env bash
# run-pytest.sh [--root] DIR [PYTEST_ARGS...]
# Runs the venv's pytest on DIR. A directory that has no test files yet (or does not exist yet)
# is reported and passes; a directory WITH test files where pytest collects nothing (exit 5) fails.
# --root: refuse to run unless root (the interop tests create network namespaces).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_root=0
if [[ "${1:-}" == --root ]]; then need_root=1; shift; fi
dir=${1:?usage: run-pytest.sh [--root] DIR [PYTEST_ARGS...]}
shift

if [[ ! -d "$dir" ]] || [[ -z "$(find "$dir" -type f \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit)" ]]; then
    echo "pytest $dir: no test files yet (test_*.py) - nothing to run"
    exit 0
fi
if ((need_root)) && [[ $EUID -ne 0 ]]; then
    echo "pytest $dir: needs root (the tests create network namespaces); run as root" >&2
    exit 1
fi

rc=0
.venv/bin/python -m pytest "$dir" "$@" || rc=$?
if ((rc == 5)); then
    echo "pytest $dir: has test files but pytest collected no tests (exit 5) - failing" >&2
fi
exit "$rc"
