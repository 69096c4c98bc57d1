#!/usr/bin/env bash
# lab/images/build-cloud.sh: build localhost/fleetbgp-cloud:bookworm, a container stand-in for a stock
# Debian 12 "genericcloud" VM, for the real-fleet test (tests/e2e/test_real_fleet.py). Built like
# lab/images/build.sh builds its images: debootstrap from the host's Debian mirror, `podman import`,
# no registry; the rootfs tarball is cached in $FLEETBGP_LAB_CACHE and the image carries a
# `fleetbgp.lab.hash` label, so a second call is a no-op (< 1 s). Needs root, podman, runc, debootstrap.
#
#   lab/images/build-cloud.sh           build when missing or out of date
#   lab/images/build-cloud.sh --check   exit 0 if up to date, 1 if not; builds nothing
#   lab/images/build-cloud.sh --force   re-run debootstrap and re-import
#
# What is in it, and why (Debian's own recipe: salsa.debian.org/cloud-team/debian-cloud-images,
# config_space/12, image "genericcloud" = FAI classes SYSTEM_BOOT CLOUD GENERIC TIME_SYSTEMD EXTRAS on a
# `debootstrap --variant minbase`):
#   - the userland of those classes: sudo, libpam-systemd, polkitd, unattended-upgrades (-> python3,
#     python3-apt), apt-utils, iptables, iputils-ping, less, nano, netbase, vim-tiny, whiptail, zstd,
#     openssh-server, ssh-import-id, cloud-init, cloud-guest-utils, systemd-timesyncd, and EXTRAS
#     (curl, ca-certificates, tcpdump, vim, man-db, reportbug, ...);
#   - NOT: the kernel, grub, initramfs (a container has none), netplan.io and systemd-resolved (podman
#     sets up the network and /etc/resolv.conf; iproute2, which netplan.io pulls in, is included);
#   - NOT, as on the real image: python3-venv, rsyslog, nftables, logrotate, cron, git (the roles
#     must install what they need, from the package index).
# Like cloud-init's default user: `deploy` with `ALL=(ALL) NOPASSWD:ALL` in
# /etc/sudoers.d/90-cloud-init-users; cloud-init itself is installed but disabled
# (/etc/cloud/cloud-init.disabled): there is no datasource in a container, and the test injects the
# SSH key the way cloud-init would (~deploy/.ssh/authorized_keys).
# APT: the host's mirror (as build.sh); when the host's APT accepts expired Release files
# (Acquire::Check-Valid-Until "false", a dated snapshot mirror), the image gets the same setting.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${HERE}/containers.conf"

SUITE=bookworm
VARIANT=minbase
# genericcloud's userland (see above); systemd-sysv is the `init` package's choice.
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,polkitd,sudo,unattended-upgrades,apt-utils,iptables,iputils-ping,less,nano,netbase,vim-tiny,whiptail,zstd,openssh-server,ssh-import-id,cloud-init,cloud-guest-utils,systemd-timesyncd,iproute2,apt-listchanges,bash-completion,bind9-host,man-db,manpages,socat,pciutils,reportbug,traceroute,vim,psmisc,tcpdump,ca-certificates,curl,ethtool,uuid-runtime,screen,xz-utils
RECIPE_VERSION=2   # bump when the post-processing below changes
CACHE="${FLEETBGP_LAB_CACHE:-/var/cache/fleetbgp-lab}"
IMAGE=localhost/fleetbgp-cloud:${SUITE}
LABEL=fleetbgp.lab.hash
MUST_LACK=(python3-venv rsyslog nftables)   # the test is pointless if the image had them

log() { printf '[cloud-image] %s\n' "$*" >&2; }
valid_until_off() { apt-config dump 2>/dev/null | grep -qi '^Acquire::Check-Valid-Until "false"'; }

mirror() {  # the host's Debian mirror, as lab/images/build.sh finds it
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

HASH=$(printf '%s\n' "$SUITE" "$VARIANT" "$PACKAGES" "$RECIPE_VERSION" "$(mirror)" "$(valid_until_off && echo novalid)" \
  | sha256sum | cut -c1-16)
TARBALL="$CACHE/cloud-rootfs-${SUITE}-${HASH}.tar"
have=$(podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)

force=0
case "${1:-}" in
  --check) [[ $have == "$HASH" ]] && { log "$IMAGE up to date ($HASH)"; exit 0; }; log "$IMAGE missing or out of date"; exit 1 ;;
  --force) force=1 ;;
  "") ;;
  *) echo "build-cloud.sh: unknown argument: $1" >&2; exit 2 ;;
esac
if (( !force )) && [[ $have == "$HASH" ]]; then exit 0; fi

[[ $(id -u) == 0 ]] || { echo "build-cloud.sh: run as root (rootful podman, debootstrap)" >&2; exit 1; }
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "build-cloud.sh: $tool missing" >&2; exit 1; }
done
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # the same lock as build.sh: one debootstrap at a time

if (( force )) || [[ ! -s $TARBALL ]]; then
  t0=$SECONDS mirror=$(mirror)
  tmp=$(mktemp -d /var/tmp/fleetbgp-cloud.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  # debootstrap's own resolver trips over this many packages (python3-cryptography): minbase first,
  # then apt-get in the chroot, as Debian's FAI recipe does.
  log "debootstrap --variant=$VARIANT $SUITE from $mirror, then apt-get install (a few minutes, once)"
  debootstrap --variant="$VARIANT" --include=ca-certificates "$SUITE" "$tmp/rootfs" "$mirror" \
    >"$tmp/debootstrap.log" 2>&1 || { tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
  r=$tmp/rootfs
  if valid_until_off; then
    printf 'Acquire::Check-Valid-Until "false";\n' >"$r/etc/apt/apt.conf.d/99snapshot-mirror"
  fi
  cp /etc/hosts "$r/etc/hosts"; cp -L /etc/resolv.conf "$r/etc/resolv.conf"   # the mirror's name, in the chroot
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 0755 "$r/usr/sbin/policy-rc.d"  # no daemons in the chroot
  mount -t proc proc "$r/proc"
  # shellcheck disable=SC2064
  trap "umount '$r/proc' 2>/dev/null; rm -rf '$tmp'" EXIT
  if ! { chroot "$r" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -q \
           --no-install-recommends ${PACKAGES//,/ }; } >>"$tmp/debootstrap.log" 2>&1; then
    tail -n 30 "$tmp/debootstrap.log" >&2; exit 1
  fi
  umount "$r/proc"
  rm -f "$r/usr/sbin/policy-rc.d"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
  : >"$r/etc/resolv.conf"
  for pkg in "${MUST_LACK[@]}"; do
    if chroot "$r" dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
      echo "build-cloud.sh: $pkg got installed (a dependency?): the image would not be stock" >&2; exit 1
    fi
  done
  # APT as on a cloud image: the mirror (plus -updates), no proxy; expired snapshots accepted like the host.
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$SUITE" "$SUITE" >"$r/etc/apt/sources.list.d/debian.sources"
  : >"$r/etc/apt/sources.list"
  # cloud-init's default user, with the sudo rule cloud-init writes; no password, key injected at run time.
  chroot "$r" useradd --create-home --shell /bin/bash --groups adm,sudo deploy
  printf 'deploy ALL=(ALL) NOPASSWD:ALL\n' >"$r/etc/sudoers.d/90-cloud-init-users"
  chmod 0440 "$r/etc/sudoers.d/90-cloud-init-users"
  touch "$r/etc/cloud/cloud-init.disabled"
  # systemd as PID 1 in a container: no consoles, no logind, no apt timers (as build.sh's node image).
  chroot "$r" systemctl set-default multi-user.target >/dev/null 2>&1
  chroot "$r" systemctl mask getty.target console-getty.service systemd-logind.service \
    apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1
  # Each container gets its own SSH host keys at boot (cloud-init regenerates them on a VM).
  rm -f "$r"/etc/ssh/ssh_host_*
  mkdir -p "$r/etc/systemd/system/ssh.service.d"
  # (before the unit's own `sshd -t`, which fails without keys)
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$r/etc/systemd/system/ssh.service.d/hostkeys.conf"
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/*
  echo debian >"$r/etc/hostname"
  : >"$r/etc/machine-id"
  rm -f "$r/var/lib/dbus/machine-id"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$r" -cf "$tmp/rootfs.tar" .
  rm -f "$CACHE"/cloud-rootfs-"$SUITE"-*.tar
  mv "$tmp/rootfs.tar" "$TARBALL"
  rm -rf "$tmp"
  trap - EXIT
  log "rootfs cached in $(( SECONDS - t0 )) s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi
podman import --quiet --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL $LABEL=$HASH" "$TARBALL" "$IMAGE" >/dev/null
podman image prune -f >/dev/null 2>&1 || true
log "imported $IMAGE ($HASH)"
