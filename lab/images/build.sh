#!/usr/bin/env bash
# lab/images/build.sh: build the local container images used by Molecule (extensions/molecule/agent)
# and the lab fleet (lab/fleet). No registry needed: Debian 12 (or 13) from debootstrap, `podman import`,
# then small Containerfiles on top. Needs root, podman, runc, debootstrap.
#
# Usage:
#   lab/images/build.sh            build what is missing or out of date (a quick no-op otherwise)
#   lab/images/build.sh --suite trixie   the same images for Debian 13 (tags :trixie); also
#                                  FLEETBGP_LAB_SUITE=trixie (what `make matrix` and molecule.yml use)
#   lab/images/build.sh --check    exit 0 if every image is present and up to date, 1 if not; builds nothing
#   lab/images/build.sh --force    rebuild the images (reuses the cached rootfs tarball)
#   lab/images/build.sh --force-rootfs   also re-run debootstrap
#   lab/images/build.sh --env      print `export CONTAINERS_CONF=...` (use: eval "$(lab/images/build.sh --env)")
#
# Images (podman, rootful):
#   localhost/fleetbgp-base:bookworm    debootstrap minbase + systemd, python3(-venv,-apt), iproute2, nftables, ...
#   localhost/fleetbgp-node:bookworm    + multi-user.target, getty/logind masked, empty machine-id (bgp_server)
#   localhost/fleetbgp-router:bookworm  + bird2 (packaged bird.service disabled; configure and start it yourself)
#   localhost/fleetbgp-monitor:bookworm + prometheus, prometheus-alertmanager (packaged services disabled;
#                                       Molecule `monitoring`)
# With --suite trixie: the same four as :trixie, built the same way (debootstrap of trixie from the same
# mirror, the same package list and Containerfiles; their FROM lines name :bookworm and are replaced
# with `podman build --from` by the :trixie parent, so the bookworm images' hashes stay as they were).
# Run them with systemd as PID 1, e.g.
#   CONTAINERS_CONF=lab/images/containers.conf podman run -d --systemd=always --cap-add NET_ADMIN,NET_RAW \
#     --security-opt unmask=/proc/sys --network NET localhost/fleetbgp-node:bookworm
#
# Podman settings: ALWAYS run podman with CONTAINERS_CONF=lab/images/containers.conf (runc instead of crun,
# ulimits the host allows); this script exports it for its own podman calls.
#
# Cache: the debootstrap rootfs tarball lives in $FLEETBGP_LAB_CACHE (default /var/cache/fleetbgp-lab),
# outside git. Each image carries a label `fleetbgp.lab.hash` (a hash of its definition: the package list
# below, the Containerfile, the parent's hash); an image is rebuilt only when missing or when that hash
# changed. Env overrides: FLEETBGP_LAB_CACHE, FLEETBGP_LAB_MIRROR (default: the host's apt mirror).
# Timings on the reference VM: cold ~100 s (debootstrap ~80 s), cached no-op < 1 s.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${HERE}/containers.conf"

SUITE=${FLEETBGP_LAB_SUITE:-bookworm}
VARIANT=minbase
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,iproute2,nftables,procps,iputils-ping,sudo,ca-certificates
RECIPE_VERSION=1   # bump when the rootfs post-processing below changes
CACHE="${FLEETBGP_LAB_CACHE:-/var/cache/fleetbgp-lab}"
LABEL=fleetbgp.lab.hash

mode=build force_images=0 force_rootfs=0 want_suite=0
for arg in "$@"; do
  if (( want_suite )); then SUITE=$arg want_suite=0; continue; fi
  case "$arg" in
    --check) mode=check ;;
    --force) force_images=1 ;;
    --force-rootfs) force_images=1 force_rootfs=1 ;;
    --suite=*) SUITE=${arg#--suite=} ;;
    --suite) want_suite=1; continue ;;
    --env) echo "export CONTAINERS_CONF=${CONTAINERS_CONF}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
# Debian releases the roles are tested on (README.md "Supported platforms"); the image names carry it.
case "$SUITE" in
  bookworm|trixie) ;;
  *) echo "build.sh: unsupported suite '$SUITE' (FLEETBGP_LAB_SUITE or --suite): bookworm or trixie" >&2; exit 2 ;;
esac
BASE_IMAGE=localhost/fleetbgp-base:${SUITE}
NODE_IMAGE=localhost/fleetbgp-node:${SUITE}
ROUTER_IMAGE=localhost/fleetbgp-router:${SUITE}
MONITOR_IMAGE=localhost/fleetbgp-monitor:${SUITE}

log() { printf '[images] %s\n' "$*" >&2; }
sha() { sha256sum | cut -c1-16; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# Hashes of each image's definition.
ROOTFS_HASH=$(printf '%s\n' "$SUITE" "$VARIANT" "$PACKAGES" "$RECIPE_VERSION" | sha)
NODE_HASH=$( { echo "$ROOTFS_HASH"; cat "$HERE/Containerfile.node"; } | sha)
ROUTER_HASH=$( { echo "$NODE_HASH"; cat "$HERE/Containerfile.router"; } | sha)
MONITOR_HASH=$( { echo "$NODE_HASH"; cat "$HERE/Containerfile.monitor"; } | sha)
TARBALL="$CACHE/rootfs-${SUITE}-${ROOTFS_HASH}.tar"

image_hash() {  # prints the image's label, or nothing when the image is missing
  podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}
up_to_date() { [[ "$(image_hash "$1")" == "$2" ]]; }

if [[ $mode == check ]]; then
  rc=0
  for pair in "$BASE_IMAGE=$ROOTFS_HASH" "$NODE_IMAGE=$NODE_HASH" "$ROUTER_IMAGE=$ROUTER_HASH" \
              "$MONITOR_IMAGE=$MONITOR_HASH"; do
    img=${pair%%=*} want=${pair#*=} have=$(image_hash "${pair%%=*}")
    if [[ -z $have ]]; then log "$img: missing"; rc=1
    elif [[ $have != "$want" ]]; then log "$img: out of date ($have, want $want)"; rc=1
    else log "$img: up to date ($have)"; fi
  done
  exit $rc
fi

[[ $(id -u) == 0 ]] || { echo "build.sh: run as root (rootful podman, debootstrap)" >&2; exit 1; }
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (apt-get install -y podman runc debootstrap)" >&2; exit 1; }
done

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one build at a time (Molecule and the lab may call this concurrently)

mirror() {
  if [[ -n ${FLEETBGP_LAB_MIRROR:-} ]]; then echo "$FLEETBGP_LAB_MIRROR"; return; fi
  local m=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $m && -f /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" && $2 !~ /security/ { print ($2 ~ /^\[/ ? $3 : $2); exit }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

build_rootfs() {
  local mirror tmp t0
  mirror=$(mirror)
  tmp=$(mktemp -d /var/tmp/fleetbgp-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  t0=$(now)
  log "debootstrap --variant=$VARIANT $SUITE from $mirror (about 80 s)"
  debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$tmp/rootfs" "$mirror" \
    >"$tmp/debootstrap.log" 2>&1 || { tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
  # shrink, and make the image independent of this host
  chroot "$tmp/rootfs" apt-get clean
  rm -rf "$tmp/rootfs"/var/lib/apt/lists/* "$tmp/rootfs"/var/cache/apt/*.bin \
         "$tmp/rootfs"/var/log/*.log "$tmp/rootfs"/var/log/apt/* "$tmp/rootfs"/tmp/*
  echo fleetbgp-lab >"$tmp/rootfs/etc/hostname"
  : >"$tmp/rootfs/etc/machine-id"
  log "debootstrap done in $(elapsed "$t0"); packing rootfs tarball"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
  rm -f "$CACHE"/rootfs-"$SUITE"-*.tar   # older definitions
  mv "$tmp/rootfs.tar" "$TARBALL"
  rm -rf "$tmp"
  trap - EXIT
  log "rootfs cached: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

T_START=$(now)

if (( force_images )) || ! up_to_date "$BASE_IMAGE" "$ROOTFS_HASH"; then
  if (( force_rootfs )) || [[ ! -s $TARBALL ]]; then build_rootfs; else log "rootfs tarball cached: $TARBALL"; fi
  t0=$(now)
  podman import --quiet \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL $LABEL=$ROOTFS_HASH" \
    "$TARBALL" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE in $(elapsed "$t0")"
  force_images=1   # children depend on it
else
  log "$BASE_IMAGE up to date"
fi

build_image() {  # image containerfile hash parent
  local t0
  if (( force_images )) || ! up_to_date "$1" "$3"; then
    t0=$(now)
    local out
    out=$(podman build --no-cache --network host --pull=never --label "$LABEL=$3" --from "$4" \
            -f "$HERE/$2" -t "$1" "$HERE" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
    log "built $1 in $(elapsed "$t0")"
    force_images=1
  else
    log "$1 up to date"
  fi
}
build_image "$NODE_IMAGE" Containerfile.node "$NODE_HASH" "$BASE_IMAGE"
force_after_node=$force_images   # the monitor image's parent is the node image, not the router image
build_image "$ROUTER_IMAGE" Containerfile.router "$ROUTER_HASH" "$NODE_IMAGE"
force_images=$force_after_node
build_image "$MONITOR_IMAGE" Containerfile.monitor "$MONITOR_HASH" "$NODE_IMAGE"

# drop dangling layers left by rebuilds (only untagged images without containers)
podman image prune -f >/dev/null 2>&1 || true
log "images ready in $(elapsed "$T_START")"
