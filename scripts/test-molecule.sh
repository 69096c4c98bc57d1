#!/usr/bin/env bash
# scripts/test-molecule.sh: run the Molecule scenario `agent` (extensions/molecule/agent) of the
# fleet.bgp.agent role on real systemd containers (rootful podman). Exit code = Molecule's.
#
#   scripts/test-molecule.sh              molecule test -s agent (destroy, create, prepare, converge,
#                                         idempotence, verify, destroy)
#   scripts/test-molecule.sh converge     any other molecule subcommand for the scenario, e.g. while
#   scripts/test-molecule.sh verify       developing: converge, verify, login -h bgp-server-1, destroy
#
# It builds the images when missing or out of date (lab/images/build.sh, a no-op otherwise), points
# podman at the project's lab/images/containers.conf (never the host's /etc/containers), and makes
# the collection importable as fleet.bgp from this checkout: a temporary ANSIBLE_COLLECTIONS_PATH
# holding ansible_collections/fleet/bgp -> the repository root. Needs root (rootful podman).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCENARIO=agent
NETWORK=fleetbgp-molecule-agent
INSTANCES=(router bgp-server-1)   # keep in sync with extensions/molecule/agent/molecule.yml

[[ $(id -u) == 0 ]] || { echo "test-molecule.sh: run as root (rootful podman)" >&2; exit 1; }
[[ -x .venv/bin/molecule ]] || { echo "test-molecule.sh: .venv/bin/molecule missing (make setup-venv)" >&2; exit 1; }

T0=$(date +%s)

# One run at a time on this machine: the instances' names, the network and Molecule's ephemeral
# directory (~/.ansible/tmp/molecule.*.agent) are shared by every checkout and every caller.
LOCK=/run/lock/fleetbgp-molecule-agent.lock
exec 9>"$LOCK"
if ! flock -n 9; then
  echo "test-molecule.sh: another run of the scenario holds $LOCK; waiting (up to ${MOLECULE_LOCK_WAIT:-1800} s)" >&2
  flock -w "${MOLECULE_LOCK_WAIT:-1800}" 9 || { echo "test-molecule.sh: gave up waiting for $LOCK" >&2; exit 1; }
fi

lab/images/build.sh

export CONTAINERS_CONF="$ROOT/lab/images/containers.conf"
export PATH="$ROOT/.venv/bin:$PATH"
export MOLECULE_GLOB="extensions/molecule/*/molecule.yml"   # also before galaxy.yml exists
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-false}"
export PY_COLORS="${PY_COLORS:-0}"

# Molecule names the containers after the platforms: refuse to touch containers that Molecule did not
# create (e.g. a lab's), rather than let `destroy` remove them.
for name in "${INSTANCES[@]}"; do
  if podman container exists "$name"; then
    owner=$(podman container inspect --format '{{ index .Config.Labels "owner" }}' "$name" 2>/dev/null || true)
    if [[ $owner != molecule ]]; then
      echo "test-molecule.sh: a container named '$name' exists and was not created by Molecule; remove or rename it first" >&2
      exit 1
    fi
  fi
done

COLLECTIONS="$(mktemp -d /tmp/fleetbgp-collections.XXXXXX)"
trap 'rm -rf "$COLLECTIONS"' EXIT
mkdir -p "$COLLECTIONS/ansible_collections/fleet"
ln -s "$ROOT" "$COLLECTIONS/ansible_collections/fleet/bgp"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"

if (( $# == 0 )); then set -- test; fi
cmd=$1; shift
rc=0
molecule "$cmd" -s "$SCENARIO" "$@" || rc=$?

# `molecule test` destroys its instances; make sure the scenario's network goes too.
if [[ $cmd == test || $cmd == destroy ]] && podman network exists "$NETWORK" 2>/dev/null; then
  podman network rm "$NETWORK" >/dev/null 2>&1 || true
fi
echo "test-molecule.sh: molecule $cmd -s $SCENARIO: $( ((rc == 0)) && echo passed || echo "FAILED (rc=$rc)") in $(( $(date +%s) - T0 )) s"
exit $rc
