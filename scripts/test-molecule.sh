#!/usr/bin/env bash
# scripts/test-molecule.sh: run the Molecule scenarios (extensions/molecule/*/) of the collection's
# roles on real systemd containers (rootful podman). Exit code: non-zero when any scenario failed.
#
#   scripts/test-molecule.sh                    molecule test for every scenario, one after the other
#   scripts/test-molecule.sh -s firewall        molecule test -s firewall only (-s may be repeated)
#   scripts/test-molecule.sh -s agent converge  any other molecule subcommand for the scenario, e.g.
#   scripts/test-molecule.sh -s agent verify    while developing: converge, verify, login -h NAME, destroy
#   MOLECULE_SCENARIOS="agent firewall" ...     the same as -s agent -s firewall
#
# It builds the images when missing or out of date (lab/images/build.sh, a no-op otherwise), points
# podman at the project's lab/images/containers.conf (never the host's /etc/containers), and makes
# the collection importable as fleet.bgp from this checkout: a temporary ANSIBLE_COLLECTIONS_PATH
# holding ansible_collections/fleet/bgp -> the repository root. Needs root (rootful podman).
# Each scenario names its own containers and podman network (platforms[].name, .network in its
# molecule.yml), so scenarios do not share anything but the images; each holds its own lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# VENV: the venv whose molecule and ansible run (default .venv; `make matrix` passes .matrix/core-X).
VENV=${VENV:-.venv}
[[ $(id -u) == 0 ]] || { echo "test-molecule.sh: run as root (rootful podman)" >&2; exit 1; }
[[ -x $VENV/bin/molecule ]] || { echo "test-molecule.sh: $VENV/bin/molecule missing (make setup-venv)" >&2; exit 1; }

read -r -a SCENARIOS <<<"${MOLECULE_SCENARIOS:-}"
while (($#)) && [[ $1 == -s ]]; do
  [[ -n ${2:-} ]] || { echo "test-molecule.sh: -s needs a scenario name" >&2; exit 2; }
  SCENARIOS+=("$2"); shift 2
done
if ((${#SCENARIOS[@]} == 0)); then
  for f in extensions/molecule/*/molecule.yml; do SCENARIOS+=("$(basename "$(dirname "$f")")"); done
fi
for s in "${SCENARIOS[@]}"; do
  [[ -f extensions/molecule/$s/molecule.yml ]] \
    || { echo "test-molecule.sh: no scenario '$s' (extensions/molecule/$s/molecule.yml)" >&2; exit 2; }
done
if (( $# == 0 )); then set -- test; fi
cmd=$1; shift

lab/images/build.sh

export CONTAINERS_CONF="$ROOT/lab/images/containers.conf"
export PATH="$ROOT/$VENV/bin:$PATH"
export MOLECULE_GLOB="extensions/molecule/*/molecule.yml"   # also before galaxy.yml exists
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-false}"
export PY_COLORS="${PY_COLORS:-0}"

COLLECTIONS="$(mktemp -d /tmp/fleetbgp-collections.XXXXXX)"
trap 'rm -rf "$COLLECTIONS"' EXIT
mkdir -p "$COLLECTIONS/ansible_collections/fleet"
ln -s "$ROOT" "$COLLECTIONS/ansible_collections/fleet/bgp"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"

run_scenario() {  # scenario: one molecule run, under the scenario's lock
  local scenario=$1 t0 rc=0 names network name owner
  shift
  t0=$(date +%s)
  # Containers, network and Molecule's ephemeral directory (~/.ansible/tmp/molecule.*.SCENARIO)
  # are shared by every checkout and every caller: one run of a scenario at a time on this machine.
  exec 9>"/run/lock/fleetbgp-molecule-$scenario.lock"
  if ! flock -n 9; then
    echo "test-molecule.sh: another run of '$scenario' holds its lock; waiting (up to ${MOLECULE_LOCK_WAIT:-1800} s)" >&2
    flock -w "${MOLECULE_LOCK_WAIT:-1800}" 9 || { echo "test-molecule.sh: gave up waiting for the lock of '$scenario'" >&2; return 1; }
  fi
  read -r network names < <("$VENV/bin/python" - "extensions/molecule/$scenario/molecule.yml" <<'PY'
import sys

import yaml

platforms = yaml.safe_load(open(sys.argv[1]))["platforms"]
nets = {p.get("network", "") for p in platforms} - {""}
print(",".join(sorted(nets)) or "-", " ".join(p["name"] for p in platforms))
PY
  )
  # Molecule names the containers after the platforms: refuse to touch containers that Molecule did
  # not create (e.g. a lab's), rather than let `destroy` remove them.
  for name in $names; do
    if podman container exists "$name"; then
      owner=$(podman container inspect --format '{{ index .Config.Labels "owner" }}' "$name" 2>/dev/null || true)
      if [[ $owner != molecule ]]; then
        echo "test-molecule.sh: a container named '$name' exists and was not created by Molecule; remove or rename it first" >&2
        exec 9>&-
        return 1
      fi
    fi
  done
  molecule "$cmd" -s "$scenario" "$@" || rc=$?
  # `molecule test` destroys its instances; make sure the scenario's network goes too.
  if [[ $cmd == test || $cmd == destroy ]]; then
    for n in ${network//,/ }; do
      [[ $n != - ]] && podman network exists "$n" 2>/dev/null && { podman network rm "$n" >/dev/null 2>&1 || true; }
    done
  fi
  exec 9>&-
  echo "test-molecule.sh: molecule $cmd -s $scenario: $( ((rc == 0)) && echo passed || echo "FAILED (rc=$rc)") in $(( $(date +%s) - t0 )) s"
  return $rc
}

failed=()
for s in "${SCENARIOS[@]}"; do
  run_scenario "$s" "$@" || failed+=("$s")
done
if ((${#failed[@]})); then
  echo "test-molecule.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test-molecule.sh: passed: ${SCENARIOS[*]}"
