#!/usr/bin/env bash
# scripts/build-ee.sh: build the fleet.bgp execution environment (execution-environment.yml) with
# ansible-builder and podman, from this checkout, without any registry or Galaxy server:
#   1. the base image localhost/fleetbgp-base:bookworm (lab/images/build.sh; a quick no-op when up to date);
#   2. the collection tarball (ansible-galaxy collection build) into .ee/, copied to .ee/fleet-bgp.tar.gz;
#   3. the Python wheels the build installs, fetched with this host's pip (its index, proxy and CA
#      certificates) into .ee/wheels: the build itself uses no package index (/etc/pip.conf in the
#      build says no-index; execution-environment.yml);
#   4. ansible-builder build --container-runtime podman -> localhost/fleetbgp-ee:latest.
# The image carries a label fleetbgp.ee.hash: a hash of what it is built from (the collection's file
# checksums from the tarball's FILES.json, execution-environment.yml, ee/, the base image's ID,
# ansible-builder's version). When the image has the hash of this checkout, nothing is built.
# apt packages (ee/bindep.txt) come from the base image's Debian mirror during the build.
#
# Usage: scripts/build-ee.sh [--force]    (root: rootful podman, like the lab images)
# Env: FLEETBGP_EE_IMAGE (default localhost/fleetbgp-ee:latest).
# docs/operations/awx.md explains the image and how to use it in AWX / Automation Platform.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
# runc and the ulimits this host allows (lab/images/containers.conf says why)
export CONTAINERS_CONF=$REPO/lab/images/containers.conf

IMAGE=${FLEETBGP_EE_IMAGE:-localhost/fleetbgp-ee:latest}
BASE_IMAGE=localhost/fleetbgp-base:bookworm
LABEL=fleetbgp.ee.hash
OUT=$REPO/.ee
VENV_BIN=$REPO/.venv/bin
force=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-ee.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[ee] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

[[ $(id -u) == 0 ]] || { echo "build-ee.sh: run as root (rootful podman, the base image's debootstrap)" >&2; exit 1; }
for tool in podman "$VENV_BIN/ansible-builder" "$VENV_BIN/ansible-galaxy"; do
    command -v "$tool" >/dev/null || { echo "build-ee.sh: $tool missing (make setup)" >&2; exit 1; }
done
T0=$(now)

# 1. the base image (the same as the lab's and Molecule's)
lab/images/build.sh

# 2. the collection tarball, under a fixed name (ee/requirements.yml names it)
mkdir -p "$OUT"
rm -f "$OUT"/fleet-bgp-*.tar.gz
"$VENV_BIN/ansible-galaxy" collection build --force --output-path "$OUT" >/dev/null
tarball=$(ls "$OUT"/fleet-bgp-*.tar.gz)
cp "$tarball" "$OUT/fleet-bgp.tar.gz"
log "collection: $(basename "$tarball")"

# 3. the wheels: what execution-environment.yml and ee/requirements.txt name, what ansible-builder
# installs itself (bindep, pyyaml, packaging in its builder stage; dumb-init in the final one) and the
# agent's build backend (setuptools, wheel)
"$VENV_BIN/python" - >"$OUT/wheel-requirements.txt" <<'PY'
import yaml
deps = yaml.safe_load(open("execution-environment.yml"))["dependencies"]
print(deps["ansible_core"]["package_pip"])
print(deps["ansible_runner"]["package_pip"])
print("-r ../ee/requirements.txt")
print("bindep\npyyaml\npackaging\ndumb-init==1.2.5\nsetuptools>=64\nwheel")
PY
wanted_wheels=$(cat "$OUT/wheel-requirements.txt" ee/requirements.txt)
if [[ -f $OUT/wheels/.requirements && $(cat "$OUT/wheels/.requirements") == "$wanted_wheels" ]]; then
    log "wheels: $(find "$OUT/wheels" -name '*.whl' | wc -l) in $OUT/wheels, fetched earlier for the same requirements"
else
    t0=$(now)
    rm -rf "$OUT/wheels"
    # the host's pip config may name local indexes that do not exist: its warnings go to the log
    "$VENV_BIN/python" -m pip wheel --quiet --wheel-dir "$OUT/wheels" -r "$OUT/wheel-requirements.txt" \
        2>"$OUT/wheels.log" \
        || { cat "$OUT/wheels.log" >&2; log "pip wheel failed: the build needs these wheels ($OUT/wheel-requirements.txt)"; exit 1; }
    printf '%s\n' "$wanted_wheels" >"$OUT/wheels/.requirements"
    log "wheels: $(find "$OUT/wheels" -name '*.whl' | wc -l) in $OUT/wheels ($(elapsed "$t0"))"
fi

# 4. the image, unless it is already built from the same inputs. The tarball's bytes differ from build
# to build (timestamps); its FILES.json and MANIFEST.json hold the checksum of every file, which do not.
want=$( {
    tar -xzOf "$OUT/fleet-bgp.tar.gz" MANIFEST.json FILES.json
    cat execution-environment.yml ee/*
    (cd "$OUT/wheels" && ls)
    podman image inspect --format '{{.Id}}' "$BASE_IMAGE"
    "$VENV_BIN/ansible-builder" --version
} | sha256sum | cut -c1-16)
have=$(podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
if [[ $have == "$want" && $force == 0 ]]; then
    log "$IMAGE up to date ($want)"
    exit 0
fi
log "building $IMAGE (${have:-missing} -> $want); the log is in $OUT/build.log"
t0=$(now)
rm -rf "$OUT/context"   # ansible-builder does not remove files that left the definition
# --network host: podman's build network on this host is the host's (like lab/images/build.sh);
# the label carries the hash above. Layers are cached by podman: a change of the collection only
# rebuilds the stages from the tarball's COPY on.
if ! "$VENV_BIN/ansible-builder" build -f execution-environment.yml -c "$OUT/context" \
        --container-runtime podman -t "$IMAGE" -v 3 \
        --extra-build-cli-args "--network host --label $LABEL=$want" >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    log "ansible-builder failed (whole log: $OUT/build.log)"
    exit 1
fi
# drop the dangling layers of earlier builds (untagged images without containers only)
podman image prune -f >/dev/null 2>&1 || true
log "built $IMAGE in $(elapsed "$t0") ($(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=si)B); total $(elapsed "$T0")"
