#!/usr/bin/env bash
# scripts/test-matrix.sh: the support matrix (`make matrix`). What README.md "Supported platforms"
# claims is what this runs; docs/dev/test-matrix.md says what runs where (make test, make matrix, CI).
#
#   for each ansible-core of CORES (2.16 2.17 2.18 2.19), in a venv of its own (.matrix/core-X):
#     collection   VENV=.matrix/core-X scripts/test-collection.sh: ansible-test sanity and units on
#                  the collection as built and installed from the tarball
#     syntax       the tarball installed into a scratch collections path, then
#                  `ansible-playbook fleet.bgp.PLAYBOOK --syntax-check` for every playbook it ships
#   Molecule (scripts/test-molecule.sh, which holds each scenario's lock) for each MOLECULE cell
#   CORE/SUITE/SCENARIO: `molecule test` (create, prepare, converge, idempotence, verify, destroy) on
#   the images of that Debian release (lab/images/build.sh --suite SUITE builds them when missing).
#   `make test` already runs every scenario on 2.19 and bookworm with the project's .venv.
#
# Usage: scripts/test-matrix.sh [--no-molecule] [--list]
#   MATRIX_CORES="2.16 2.19"            only these cores (default: all four)
#   MATRIX_MOLECULE="2.16/bookworm/agent 2.19/trixie/agent"   only these Molecule cells ("" for none)
#   MATRIX_CACHE=/var/cache/fleetbgp-matrix   keep the venvs there (.matrix becomes a link to it), so
#                                       a fresh clone (CI) reuses them; the venvs never move once made
#   MATRIX_DEADLINE=EPOCH_SECONDS       (CI) a step starts only if it should end before then: its
#                                       duration in the last run that ran it (.matrix/durations, else
#                                       a default) + 25 %; the others are SKIPPED, each with the reason
# Exit status: 1 when any step failed (every step runs). Each step's result is appended to
# .matrix/results.txt as it ends (`PASS|FAIL|SKIP STEP SECONDS`), the total to .matrix/last-duration.
#   and first, the stock-host paths: `make real-fleet` (the README over SSH on stock Debian 12), the
#   Molecule scenarios `keepalived` (VRRP + BGP) and `fresh` (check mode on a fresh host, no apt
#   mirror); MATRIX_STOCK=0 skips them.
# Order = priority (what a deadline cuts last): stock-host paths, sanity/units/syntax on every core,
# then Molecule.
# Needs root for Molecule (rootful podman); Python 3.11 (every core here supports it as controller).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# --- the matrix: pinned versions (change a pin and the venv is rebuilt on the next run) -----------
CORES=(${MATRIX_CORES:-2.16 2.17 2.18 2.19})
declare -A CORE_PIN=(
    [2.16]="ansible-core==2.16.19"
    [2.17]="ansible-core==2.17.14"
    [2.18]="ansible-core==2.18.19"
    [2.19]="ansible-core==2.19.14"
)
# Every venv: what ansible-test units needs (its requirements/units.txt) and the agent's runtime
# dependency (the module unit tests drive the agent's real control server).
COMMON_PINS="pytest==9.2.0 pytest-mock==3.17.0 pytest-xdist==3.8.0 mock==5.2.0 pyyaml==6.0.4 prometheus_client==0.26.0"
# Venvs that run Molecule: the scenarios need containers.podman, community.docker (nsenter
# connection) and ansible.posix, taken from the `ansible` release made for that core (ansible 9 is
# the last one with a community.docker that supports 2.16). Molecule 26.10 and ansible-compat 26.10
# support 2.16.19+ and 2.18+, not 2.17 (their metadata: ansible-core>=2.16.19,!=2.17.*). The testinfra
# verifiers run under the repository's pytest settings (pyproject.toml: `timeout`): pytest-timeout.
MOLECULE_PINS="molecule==26.10.0 ansible-compat==26.10.0 molecule-plugins[podman]==26.10.12 pytest-testinfra==10.2.2 pytest-timeout==2.4.0"
declare -A EXTRA_PIN=(
    [2.16]="ansible==9.13.0 $MOLECULE_PINS"
    [2.19]="ansible==12.3.0 $MOLECULE_PINS"
)
MOLECULE_CELLS=(${MATRIX_MOLECULE-2.16/bookworm/agent 2.19/trixie/agent 2.16/trixie/agent 2.19/trixie/host 2.19/trixie/firewall 2.19/trixie/monitoring})
PYTHON=${MATRIX_PYTHON:-python3.11}
MATRIX_DIR=.matrix   # relative: test-collection.sh and test-molecule.sh take VENV relative to the root

run_molecule=1
case "${1:-}" in
    --no-molecule) run_molecule=0 ;;
    --list)
        for c in "${CORES[@]}"; do echo "core $c: ${CORE_PIN[$c]} ${EXTRA_PIN[$c]:-} $COMMON_PINS"; done
        for m in "${MOLECULE_CELLS[@]}"; do echo "molecule $m"; done
        exit 0 ;;
    "") ;;
    *) echo "test-matrix.sh: unknown argument $1 (--no-molecule, --list)" >&2; exit 2 ;;
esac
for c in "${CORES[@]}"; do
    [[ -n ${CORE_PIN[$c]:-} ]] || { echo "test-matrix.sh: no pin for ansible-core '$c' (MATRIX_CORES)" >&2; exit 2; }
done

log() { printf '== matrix: %s\n' "$*"; }

if [[ -n ${MATRIX_CACHE:-} && ! -e $MATRIX_DIR ]]; then
    mkdir -p "$MATRIX_CACHE"
    ln -s "$MATRIX_CACHE" "$MATRIX_DIR"
fi
mkdir -p "$MATRIX_DIR"
RESULTS="$MATRIX_DIR/results.txt"
: >"$RESULTS"
T_START=$(date +%s)
DEADLINE=${MATRIX_DEADLINE:-}
# Each step's duration the last time it ran (on this machine): what a deadline is checked against.
DURATIONS="$MATRIX_DIR/durations"
declare -A LAST=()
if [[ -f $DURATIONS ]]; then
    while read -r name secs; do [[ $secs =~ ^[0-9]+$ ]] && LAST[$name]=$secs; done <"$DURATIONS"
fi
default_duration() {  # measured cold under load when written (docs/dev/test-matrix.md)
    case "$1" in
        */venv) echo 120 ;; */collection) echo 600 ;; */syntax) echo 60 ;; molecule/*) echo 420 ;;
        stock/real-fleet) echo 600 ;; *) echo 300 ;;
    esac
}

# A venv per core, made once; a stamp of its pins makes a later run a no-op. The venv is made at
# its real path (.matrix may be a link to MATRIX_CACHE): its scripts' shebangs stay valid from any clone.
venv_ready() {  # core: the venv exists, runs, and was made from the current pins
    local core=$1 venv pins want
    venv="$(realpath "$MATRIX_DIR")/core-$core"
    pins="${CORE_PIN[$core]} $COMMON_PINS ${EXTRA_PIN[$core]:-}"
    want=$(printf '%s\n' "$PYTHON" $pins | sha256sum | cut -c1-16)
    [[ -x $venv/bin/python && "$(cat "$venv/.matrix-stamp" 2>/dev/null)" == "$want" ]] \
        && "$venv/bin/python" -c '' 2>/dev/null
}
ensure_venv() {
    local core=$1 venv pins want
    venv="$(realpath "$MATRIX_DIR")/core-$core"
    pins="${CORE_PIN[$core]} $COMMON_PINS ${EXTRA_PIN[$core]:-}"
    want=$(printf '%s\n' "$PYTHON" $pins | sha256sum | cut -c1-16)
    venv_ready "$core" && return 0
    log "core $core: creating $venv ($pins)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input --progress-bar off $pins \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    "$venv/bin/python" -m pip check >/dev/null || { "$venv/bin/python" -m pip check; return 1; }
    echo "$want" >"$venv/.matrix-stamp"
}

failed=() skipped=()
step() {  # step NAME COMMAND...: runs it (or skips it for the deadline), records PASS/FAIL/SKIP and its duration
    local name=$1 t0 rc=0 est left
    shift
    t0=$(date +%s)
    if [[ -n $DEADLINE ]]; then
        local seen="it took ${LAST[$name]:-} s last time"
        est=${LAST[$name]:-$(default_duration "$name")}
        [[ -n ${LAST[$name]:-} ]] || seen="about ${est} s (never run here: the default)"
        left=$(( DEADLINE - t0 ))
        if (( est + est / 4 > left )); then
            echo "SKIP $name ($seen, + 25 %; ${left} s left before MATRIX_DEADLINE)" >>"$RESULTS"
            skipped+=("$name")
            log "$name: SKIPPED for time (about ${est} s needed, ${left} s left)"
            return 0
        fi
    fi
    log "$name: $*"
    "$@" || rc=$?
    local dt=$(( $(date +%s) - t0 ))
    LAST[$name]=$dt
    for n in "${!LAST[@]}"; do echo "$n ${LAST[$n]}"; done | sort >"$DURATIONS.tmp" && mv "$DURATIONS.tmp" "$DURATIONS"
    if ((rc == 0)); then
        echo "PASS $name ${dt}s" >>"$RESULTS"
    else
        echo "FAIL $name ${dt}s (rc=$rc)" >>"$RESULTS"
        failed+=("$name")
    fi
    log "$name: $( ((rc == 0)) && echo passed || echo "FAILED (rc=$rc)") in ${dt} s"
}

venv_step() {  # core: the venv step; an up-to-date venv passes at once (no deadline check)
    if venv_ready "$1"; then
        echo "PASS core-$1/venv 0s (up to date)" >>"$RESULTS"
        log "core-$1/venv: up to date"
    else
        step "core-$1/venv" ensure_venv "$1" || true
    fi
}

# Every playbook the installed tarball ships, syntax-checked by this core (not the checkout's copy).
syntax_check() (  # a subshell: its EXIT trap removes the scratch directory
    venv=$1 rc=0
    scratch=$(mktemp -d /tmp/fleetbgp-matrix-syntax.XXXXXX)
    trap 'rm -rf "$scratch"' EXIT
    "$venv/bin/ansible-galaxy" collection build --output-path "$scratch" "$ROOT" >/dev/null
    tarball=$(echo "$scratch"/fleet-bgp-*.tar.gz)
    "$venv/bin/ansible-galaxy" collection install --offline --no-deps -p "$scratch/collections" "$tarball" >/dev/null
    for pb in "$scratch"/collections/ansible_collections/fleet/bgp/playbooks/*.yml; do
        pb=$(basename "$pb" .yml)
        if out=$(ANSIBLE_COLLECTIONS_PATH="$scratch/collections" "$venv/bin/ansible-playbook" \
                    "fleet.bgp.$pb" --syntax-check -i localhost, 2>&1); then
            echo "    fleet.bgp.$pb: syntax ok"
        else
            printf '    fleet.bgp.%s: FAILED\n%s\n' "$pb" "$out"
            rc=1
        fi
    done
    exit "$rc"
)

# First the paths of a new user on stock hosts (the project's .venv, ansible-core 2.19): the
# README's real-fleet section over SSH on stock Debian 12 cloud images (tests/e2e/test_real_fleet.py),
# and the Molecule scenario `fresh` (check mode on a host without the roles' packages, and the
# error when its apt source cannot be reached), and the scenario `keepalived` (docs/operations/keepalived.md:
# VRRP failover moving the BGP route). Minutes each: not in `make test`. MATRIX_STOCK=0 skips them.
if [[ ${MATRIX_STOCK:-1} == 1 ]]; then
    step "stock/real-fleet" scripts/run-pytest.sh --root tests/e2e -k test_real_fleet --durations=5
    step "stock/keepalived" env FLEETBGP_LAB_SUITE=bookworm scripts/test-molecule.sh -s keepalived
    step "stock/fresh" env FLEETBGP_LAB_SUITE=bookworm scripts/test-molecule.sh -s fresh
fi

for core in "${CORES[@]}"; do
    venv_step "$core"
    if grep -q "^\(FAIL\|SKIP\) core-$core/venv " "$RESULTS"; then continue; fi
    venv="$MATRIX_DIR/core-$core"
    version=$("$venv/bin/ansible" --version)   # whole: `| head -1` makes 2.16 print a BrokenPipe traceback
    log "core $core: ${version%%$'\n'*}"
    step "core-$core/collection" env VENV="$venv" scripts/test-collection.sh
    step "core-$core/syntax" syntax_check "$venv"
done

if ((run_molecule)); then
    for cell in "${MOLECULE_CELLS[@]}"; do
        IFS=/ read -r core suite scenario <<<"$cell"
        venv="$MATRIX_DIR/core-$core"
        if [[ -z ${EXTRA_PIN[$core]:-} ]]; then
            echo "FAIL molecule/$cell 0s (core $core has no Molecule venv: EXTRA_PIN)" >>"$RESULTS"
            failed+=("molecule/$cell")
            continue
        fi
        # made above unless MATRIX_CORES left this core out (a no-op when up to date)
        if ! grep -q "^PASS core-$core/venv " "$RESULTS"; then
            grep -q "^\(FAIL\|SKIP\) core-$core/venv " "$RESULTS" || venv_step "$core"
        fi
        if ! grep -q "^PASS core-$core/venv " "$RESULTS"; then
            echo "SKIP molecule/$cell (no venv for core $core: see core-$core/venv)" >>"$RESULTS"
            skipped+=("molecule/$cell")
            continue
        fi
        step "molecule/$cell" env VENV="$venv" FLEETBGP_LAB_SUITE="$suite" scripts/test-molecule.sh -s "$scenario"
    done
fi

total=$(( $(date +%s) - T_START ))
echo "$total" >"$MATRIX_DIR/last-duration"
echo
log "results (${total} s in all; also in $RESULTS):"
sed 's/^/    /' "$RESULTS"
npass=$(grep -c '^PASS ' "$RESULTS" || true)
if ((${#skipped[@]})); then
    echo "make matrix: SKIPPED (not run, not failed): ${skipped[*]}"
fi
if ((${#failed[@]})); then
    echo "make matrix: FAILED: ${failed[*]} (${npass} steps passed, ${#skipped[@]} skipped)" >&2
    exit 1
fi
cells="${MOLECULE_CELLS[*]:-none}"
((run_molecule)) || cells="not run (--no-molecule)"
echo "make matrix: ${npass} steps passed, ${#skipped[@]} skipped (cores ${CORES[*]}; Molecule: $cells)"
