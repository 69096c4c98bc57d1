#!/usr/bin/env bash
# Install the Debian packages that the tests, the demo and the bench need, and keep the
# system-wide BIRD/GoBGP services out of the way (tests start their own instances with their
# own configs and sockets). Idempotent; a no-op run only asks dpkg and takes well under a second.
set -euo pipefail

PKGS=(bird2 gobgpd tshark iproute2 nftables debootstrap podman runc prometheus frr openssh-client)
# Debian services that those packages enable and start on install. (prometheus: the tests need
# only its promtool, for scripts/test-alert-rules.sh; frr: the BFD interop tests run their own
# bfdd (tests/interop/test_bfd_bird.py); the packaged daemons stay stopped.)
SERVICES=(bird gobgpd prometheus frr)

log() { printf 'setup-system: %s\n' "$*" >&2; }

missing=()
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for pkg in "${PKGS[@]}"; do
    grep -qx "$pkg install ok installed" <<<"$installed" || missing+=("$pkg")
done

# `python3 -m venv` needs ensurepip; Debian's own python3 has it only with python3-venv.
# (Checked only while there is no working .venv yet: it costs a Python start-up.)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! "$REPO/.venv/bin/python" -c '' 2>/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    if [[ "$(command -v python3)" == /usr/bin/python3 ]]; then
        missing+=(python3-venv)
    else
        log "warning: $(command -v python3) lacks ensurepip/venv; make setup-venv will fail"
    fi
fi

if ((${#missing[@]})); then
    if [[ $EUID -ne 0 ]]; then
        log "missing packages: ${missing[*]}"
        log "run as root, or install them first: apt-get install ${missing[*]}"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
              -o Dpkg::Options::=--force-confold)
    log "installing: ${missing[*]}"
    apt-get "${apt_opts[@]}" update >/dev/null
    apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
    log "installed: ${missing[*]}"
fi

# Stop and disable the packaged daemons: a system bird/gobgpd would hold sockets and ports.
[[ $EUID -eq 0 ]] || exit 0
if [[ -d /run/systemd/system ]]; then
    for svc in "${SERVICES[@]}"; do
        unit="$svc.service"
        systemctl cat "$unit" >/dev/null 2>&1 || continue
        if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
            systemctl disable --quiet "$unit"
            log "disabled $unit"
        fi
        if systemctl is-active --quiet "$unit" 2>/dev/null; then
            systemctl stop "$unit"
            log "stopped $unit"
        fi
    done
else
    # No systemd (containers, some VMs): the package's SysV script may have started BIRD.
    # Never call `/etc/init.d/bird stop`: it stops *every* process named bird, including
    # the private instances that tests and the demo run. Stop only the packaged instance,
    # recognised by its command line (started without -c/-s, so on /etc/bird and /run/bird).
    for svc in "${SERVICES[@]}"; do
        if compgen -G "/etc/rc[2345].d/S??$svc" >/dev/null; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
            log "disabled $svc (rc.d links)"
        fi
    done
    for proc in /proc/[0-9]*; do
        comm=
        { read -r comm <"$proc/comm"; } 2>/dev/null || true
        [[ $comm == bird ]] || continue
        # BIRD inside a container (Molecule, the lab fleet) is in another PID namespace: not ours.
        [[ $(readlink "$proc/ns/pid" 2>/dev/null) == "$(readlink /proc/self/ns/pid)" ]] || continue
        pid=${proc#/proc/}
        args=$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null) || continue
        [[ -n $args ]] || continue  # a zombie
        if [[ " $args" != *" -c "* && " $args" != *" -s "* ]]; then
            kill "$pid" && log "stopped the packaged bird (pid $pid)"
        fi
    done
    # The packaged FRR daemons (watchfrr, zebra, staticd, ...), recognised by their pidfiles in
    # /run/frr: the tests' own bfdd keeps its pidfile in a directory of its own, never there.
    for pidfile in /run/frr/*.pid; do
        [[ -s $pidfile ]] || continue
        pid=$(<"$pidfile")
        comm=
        { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || true
        if [[ -n $comm && $comm == "$(basename "$pidfile" .pid)" ]]; then
            kill "$pid" && log "stopped the packaged FRR $comm (pid $pid)"
        fi
    done
    # The packaged Prometheus, recognised by its init script's pidfile (nothing else is touched).
    pidfile=/run/prometheus/prometheus.pid
    if [[ -s $pidfile ]]; then
        pid=$(<"$pidfile")
        comm=
        { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || true
        if [[ $comm == prometheus ]]; then
            kill "$pid" && log "stopped the packaged prometheus (pid $pid)"
        fi
    fi
fi
