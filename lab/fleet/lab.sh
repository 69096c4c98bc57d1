#!/usr/bin/env bash
# lab/fleet/lab.sh: the lab fleet (one BIRD 2 router, three bgp_servers and a client behind the router,
# podman containers with systemd as PID 1) for `make demo` and end-to-end tests. Needs root (rootful podman).
#
# Usage:
#   lab/fleet/lab.sh up            build missing images (lab/images/build.sh), create the networks and
#                                  the containers, wait for systemd, set up the lab's own services
#                                  (lab/fleet/lab.yml: BIRD and forwarding on the router, lab-web on
#                                  the servers, the client's routes and load client). Idempotent: a
#                                  running lab is left as it is (lab.yml runs again only on a change).
#   lab/fleet/lab.sh down          remove the containers and the networks (the images stay cached)
#   lab/fleet/lab.sh status        containers, addresses, systemd and fleetbgp state, BIRD sessions;
#                                  exit 0 when every container runs, 1 otherwise
#   lab/fleet/lab.sh env           print the environment for Ansible against the lab:
#                                  eval "$(lab/fleet/lab.sh env)"; ansible-playbook fleet.bgp.status
#   lab/fleet/lab.sh run CMD...    run CMD with that environment, e.g.
#                                  lab/fleet/lab.sh run ansible-playbook fleet.bgp.site
#   lab/fleet/lab.sh birdc ARGS... birdc in the router container, e.g. lab/fleet/lab.sh birdc show protocols
#   lab/fleet/lab.sh shell NAME    a shell in a container (NAME: router, srv1, srv2, srv3, client)
#   lab/fleet/lab.sh names         print "ROLE INVENTORY_NAME CONTAINER IPV4 IPV6" per container
#                                  (ROLE: router, server or client)
#
# The inventory (lab/fleet/inventory) is the single source of the topology: container names
# (ansible_host), addresses (lab_ipv4, lab_ipv6; the router's lab_client_ipv4/6), networks and
# subnets (group_vars/all/lab.yml).
# Environment: FLEETBGP_LAB_UP_TIMEOUT (default 120 s, waiting for systemd and the lab's services),
#   FLEETBGP_LAB_IMAGES_TIMEOUT (default 900 s, image build), FLEETBGP_LAB_STATE (default /run/fleetbgp-lab).
#   FLEETBGP_LAB_REPLACE_OLDER=1: a container running an older build of its image is replaced
#   (the e2e tests set it; the demo lab only notes it).
# A second, independent lab (the e2e tests use one): FLEETBGP_LAB_INVENTORY (another inventory with
# other container names, network and subnet), FLEETBGP_LAB_STATE and FLEETBGP_LAB_LABEL, all three.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
INVENTORY=${FLEETBGP_LAB_INVENTORY:-$LAB_DIR/inventory}
STATE=${FLEETBGP_LAB_STATE:-/run/fleetbgp-lab}
UP_TIMEOUT=${FLEETBGP_LAB_UP_TIMEOUT:-120}
IMAGES_TIMEOUT=${FLEETBGP_LAB_IMAGES_TIMEOUT:-900}
REPLACE_OLDER=${FLEETBGP_LAB_REPLACE_OLDER:-0}
VENV_BIN=$REPO/.venv/bin
# On the lab's containers and network (the images carry fleetbgp.lab.hash). A second lab (tests/e2e)
# sets its own label, so that `down` of one never removes the other.
LABEL=${FLEETBGP_LAB_LABEL:-fleetbgp.fleet-lab}
NODE_IMAGE=localhost/fleetbgp-node:bookworm
ROUTER_IMAGE=localhost/fleetbgp-router:bookworm
export CONTAINERS_CONF=$REPO/lab/images/containers.conf  # runc + ulimits: lab/images/containers.conf

# podman run -d leaves conmon running for the container's lifetime: it must not inherit the lock
# fd (7), or the lock would stay held until the lab is removed.
podman() { command podman "$@" 7>&-; }
timeout() { command timeout "$@" 7>&-; }

say() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] FAILED: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# --- topology, read from the inventory ------------------------------------------------------
# Sets NETWORK SUBNET GATEWAY SUBNET6 GATEWAY6 (the servers' LAN), CLIENT_NETWORK CLIENT_SUBNET
# CLIENT_SUBNET6 (the clients' network behind the router; empty without a `clients` group), and the
# arrays ROLES NAMES CONTAINERS ADDRS ADDRS6 (router first, then servers, then clients; a client's
# addresses are on the client network) and NETS (per container, its podman --network arguments).
load_topology() {
    [[ -x $VENV_BIN/python ]] || die "$VENV_BIN/python not found; run: make setup"
    local out
    out=$("$VENV_BIN/python" - "$INVENTORY" <<'PY'
import sys
from pathlib import Path

import yaml

inv = Path(sys.argv[1])
lab = yaml.safe_load((inv / "group_vars/all/lab.yml").read_text())
hosts = yaml.safe_load((inv / "hosts.yml").read_text())
print("net", lab["lab_network"], lab["lab_subnet"], lab["lab_gateway"], lab["lab_subnet6"], lab["lab_gateway6"])
print("ssh", int(bool(lab.get("lab_ansible_over_ssh"))))
clients = lab.get("lab_client_network")
if clients:
    print("clientnet", clients, lab["lab_client_subnet"], lab["lab_client_subnet6"])
children = hosts["all"]["children"]
for role, group in (("router", "routers"), ("server", "bgp_servers"), ("client", "clients")):
    for name, hv in ((children.get(group) or {}).get("hosts") or {}).items():
        v4, v6 = hv["lab_ipv4"], hv["lab_ipv6"]
        if role == "client":
            nets = [f"{clients}:ip={v4},ip={v6}"]
        else:
            nets = [f"{lab['lab_network']}:ip={v4},ip={v6}"]
        if role == "router" and clients:
            nets.append(f"{clients}:ip={hv['lab_client_ipv4']},ip={hv['lab_client_ipv6']}")
        print(role, name, hv["ansible_host"], v4, v6, " ".join(nets))
PY
    ) || die "cannot read the topology from $INVENTORY"
    ROLES=() NAMES=() CONTAINERS=() ADDRS=() ADDRS6=() NETS=()
    CLIENT_NETWORK="" CLIENT_SUBNET="" CLIENT_SUBNET6="" LAB_SSH=0
    local kind a b c d e
    while read -r kind a b c d e; do
        case $kind in
            net) NETWORK=$a SUBNET=$b GATEWAY=$c SUBNET6=$d GATEWAY6=$e ;;
            clientnet) CLIENT_NETWORK=$a CLIENT_SUBNET=$b CLIENT_SUBNET6=$c ;;
            ssh) LAB_SSH=$a ;;
            *) ROLES+=("$kind") NAMES+=("$a") CONTAINERS+=("$b") ADDRS+=("$c") ADDRS6+=("$d") NETS+=("$e") ;;
        esac
    done <<<"$out"
    [[ ${ROLES[0]:-} == router ]] || die "the inventory has no host in the 'routers' group"
    ROUTER=${CONTAINERS[0]}
}

container_of() {  # inventory name (router, srv1, ...) or container name -> container name
    local i
    for i in "${!NAMES[@]}"; do
        if [[ $1 == "${NAMES[$i]}" || $1 == "${CONTAINERS[$i]}" ]]; then
            echo "${CONTAINERS[$i]}"
            return 0
        fi
    done
    die "no lab container named '$1' (have: ${NAMES[*]})"
}

need_root() { [[ $EUID -eq 0 ]] || die "needs root (rootful podman); run: sudo $0 $*"; }

lock() {  # one lab operation at a time; a caller holding the lock (demo.sh) sets FLEETBGP_LAB_LOCKED=1
    mkdir -p "$STATE"
    [[ ${FLEETBGP_LAB_LOCKED:-0} == 1 ]] && return 0
    exec 7>"$STATE/lock"
    flock -w 600 7 || die "another lab operation holds $STATE/lock for over 600 s"
}

# --- Ansible environment ----------------------------------------------------------------------
# ANSIBLE_COLLECTIONS_PATH must name a directory holding ansible_collections/fleet/bgp: a
# symlink to this repository, kept outside the tree so that no tool walks into a loop.
ansible_env() {
    local coll=$STATE/collections/ansible_collections/fleet
    mkdir -p "$coll"
    if [[ "$(readlink "$coll/bgp" 2>/dev/null)" != "$REPO" ]]; then
        ln -sfn "$REPO" "$coll/bgp"
    fi
    export PATH=$VENV_BIN:$PATH
    export ANSIBLE_CONFIG=$LAB_DIR/ansible.cfg
    export ANSIBLE_COLLECTIONS_PATH=$STATE/collections
    export ANSIBLE_INVENTORY=$INVENTORY
    export ANSIBLE_VAULT_PASSWORD_FILE=$LAB_DIR/vault-password
    # group_vars/all/ssh.yml of an inventory with lab_ansible_over_ssh (the e2e lab) reads it
    export FLEETBGP_LAB_SSH_CONFIG=$STATE/ssh/config
    export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-$([[ -t 1 ]] && echo 1 || echo 0)}
}

print_env() {
    ansible_env
    local v
    for v in PATH CONTAINERS_CONF ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_INVENTORY \
        ANSIBLE_VAULT_PASSWORD_FILE FLEETBGP_LAB_SSH_CONFIG; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
}

# --- networks ---------------------------------------------------------------------------------
# ensure_network NAME INTERNAL(0|1) SUBNET [GATEWAY] SUBNET6 [GATEWAY6]: create it, or check the one
# that exists. One of ours with other settings (an older lab: IPv4 only, say) is removed and created
# again, with the containers on it: they are the lab's own and `up` starts them afresh.
ensure_network() {
    local name=$1 internal=$2 subnet=$3 gateway=$4 subnet6=$5 gateway6=$6 have want
    want="$(printf '%s\n' "$subnet" "$subnet6" | sort | xargs) internal=$internal"
    if podman network exists "$name"; then
        have="$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$name" | xargs -n1 | sort | xargs)"
        have+=" internal=$([[ "$(podman network inspect --format '{{.Internal}}' "$name")" == true ]] && echo 1 || echo 0)"
        [[ $have == "$want" ]] && return 0
        replace_network "$name" "has '$have', the inventory says '$want'"
    fi
    # A subnet must not overlap another podman network or a route of this host.
    local net s mine
    for net in $(podman network ls --format '{{.Name}}'); do
        for s in $(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$net"); do
            for mine in "$subnet" "$subnet6"; do
                overlaps "$s" "$mine" && die "subnet $mine overlaps podman network '$net' ($s);" \
                    "pick another in $INVENTORY/group_vars/all/lab.yml (and the addresses in hosts.yml)"
            done
        done
    done
    while read -r s _; do
        [[ $s == */* ]] || continue
        for mine in "$subnet" "$subnet6"; do
            overlaps "$s" "$mine" && die "subnet $mine overlaps this host's route to $s;" \
                "pick another in $INVENTORY/group_vars/all/lab.yml"
        done
    done < <(ip -4 route show table all type unicast 2>/dev/null | grep -v '^default'
             ip -6 route show table all type unicast 2>/dev/null | grep -v '^default')
    local args=(--ipv6 --subnet "$subnet" --subnet "$subnet6")
    if ((internal)); then
        # No address of the host on it, no NAT: the router is the only way in and out.
        args+=(--internal)
        say "creating podman network $name ($subnet, $subnet6; internal)"
    else
        args+=(--gateway "$gateway" --gateway "$gateway6")
        say "creating podman network $name ($subnet, $subnet6; gateways $gateway, $gateway6)"
    fi
    podman network create "${args[@]}" --label "$LABEL=1" "$name" >/dev/null \
        || die "podman network create $name failed (see the message above)"
}

replace_network() {  # name why
    local name=$1 ctr others=()
    [[ "$(podman network inspect --format "{{index .Labels \"$LABEL\"}}" "$name")" == 1 ]] \
        || die "podman network $name is not this lab's (no label $LABEL) and $2; remove it or rename the lab's"
    local on
    mapfile -t on < <(podman ps -a --filter "network=$name" --format '{{.Names}}')
    for ctr in "${on[@]}"; do
        [[ "$(podman container inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$ctr")" == 1 ]] \
            || others+=("$ctr")
    done
    ((${#others[@]} == 0)) || die "podman network $name $2, but containers that are not this lab's use it: ${others[*]}"
    say "note: podman network $name $2; removing it${on[*]:+ and its containers (${on[*]})} to create it again"
    ((${#on[@]} == 0)) || timeout 120 podman rm -f -t 10 "${on[@]}" >/dev/null || die "podman rm failed"
    timeout 60 podman network rm "$name" >/dev/null || die "podman network rm $name failed"
}

overlaps() {  # overlaps A/len B/len: true when the two IPv4 prefixes overlap
    "$VENV_BIN/python" -c 'import ipaddress, sys; a, b = (ipaddress.ip_network(x, strict=False) for x in sys.argv[1:]); sys.exit(0 if a.overlaps(b) else 1)' "$1" "$2"
}

# --- containers -------------------------------------------------------------------------------
# True when a command can run in CTR; sets ALIVE_OUT to what the last `podman exec` said.
container_alive() {
    local _
    for _ in 1 2; do
        ALIVE_OUT=$(timeout 20 podman exec "$1" true 2>&1) && return 0
        sleep 1
    done
    ALIVE_OUT=${ALIVE_OUT##*$'\n'}
    return 1
}

container_state() { podman container inspect --format '{{.State.Status}}' "$1" 2>/dev/null || echo absent; }

# "NETWORK IPV4 IPV6" per network a container is on: what podman says, or what the inventory wants.
container_networks() {
    podman container inspect --format \
        '{{range $n, $v := .NetworkSettings.Networks}}{{$n}} {{$v.IPAddress}} {{$v.GlobalIPv6Address}}{{"\n"}}{{end}}' \
        "$1" 2>/dev/null | sed '/^$/d' | sort
}
wanted_networks() {  # index
    local spec ips
    for spec in ${NETS[$1]}; do
        ips=${spec#*:}; ips=${ips//ip=/}
        echo "${spec%%:*} ${ips//,/ }"
    done | sort
}

ensure_container() {  # index into CONTAINERS
    local i=$1 role=${ROLES[$1]} name=${NAMES[$1]} ctr=${CONTAINERS[$1]} image state spec have
    local caps=NET_ADMIN,NET_RAW nets=()
    image=$NODE_IMAGE
    # BIRD (run as user bird by the packaged unit) keeps NET_BIND_SERVICE, NET_ADMIN, NET_RAW and
    # NET_BROADCAST; its capset() fails with EPERM when one is missing from the bounding set.
    [[ $role == router ]] && image=$ROUTER_IMAGE caps=NET_ADMIN,NET_RAW,NET_BROADCAST
    state=$(container_state "$ctr")
    case $state in
        running | absent) ;;
        *)
            say "starting the existing container $ctr (was $state)"
            timeout 60 podman start "$ctr" >/dev/null || die "podman start $ctr failed"
            state=running ;;
    esac
    if [[ $state == running ]]; then
        have=$(container_networks "$ctr")
        if [[ $have != "$(wanted_networks "$i")" ]]; then
            # An older lab's container (other networks or addresses): the lab's own, made again.
            say "note: $ctr is on '${have//$'\n'/; }', the inventory says '$(wanted_networks "$i" | paste -sd';')';" \
                "removing it and starting it again"
            timeout 120 podman rm -f -t 10 "$ctr" >/dev/null || die "podman rm $ctr failed"
        elif ! container_alive "$ctr"; then
            # podman keeps "running" in its database when the host was restored from a snapshot
            # or /run survived a reboot, but nothing runs and no exec ever will (seen on CI).
            say "note: podman says $ctr is running but its processes are gone (podman exec said:" \
                "'$ALIVE_OUT'); removing it and starting it again"
            timeout 120 podman rm -f -t 0 "$ctr" >/dev/null || die "podman rm $ctr failed"
        elif [[ "$(podman container inspect --format '{{.Image}}' "$ctr")" \
            != "$(podman image inspect --format '{{.Id}}' "$image")" ]]; then
            if [[ $REPLACE_OLDER == 1 ]]; then
                say "note: $ctr runs an older build of $image; replacing it (FLEETBGP_LAB_REPLACE_OLDER=1)"
                timeout 120 podman rm -f -t 10 "$ctr" >/dev/null || die "podman rm $ctr failed"
            else
                say "note: $ctr runs an older build of $image (make demo-down, then make demo, to refresh)"
                return 0
            fi
        else
            return 0
        fi
    fi
    for spec in ${NETS[$i]}; do nets+=(--network "$spec"); done
    say "starting $ctr ($name, ${NETS[$i]}) from $image"
    CREATED[$ctr]=1
    # systemd as PID 1 (--systemd=always: tmpfs /run, /tmp, cgroup); NET_ADMIN for nftables, routes and
    # BIRD's kernel routes inside the container, NET_RAW for ping, unmask=/proc/sys for net.* sysctls
    # (they stay in the container's network namespace). Podman's default set has NET_BIND_SERVICE.
    timeout 120 podman run -d --name "$ctr" --hostname "$name" "${nets[@]}" \
        --systemd=always --cap-add "$caps" --security-opt unmask=/proc/sys \
        --label "$LABEL=1" --label "$LABEL.role=$role" --label "$LABEL.repo=$REPO" \
        "$image" >/dev/null || die "podman run $ctr failed (see the message above)"
}

# Containers this run created (not reused ones): only those may be recreated when they do not boot.
declare -A CREATED=()

boot_diagnostics() {  # container: what an operator needs when systemd in it does not come up
    local ctr=$1
    {
        echo "--- podman inspect $ctr (state)"
        podman container inspect --format \
            'status={{.State.Status}} pid={{.State.Pid}} started={{.State.StartedAt}} error={{.State.Error}}' \
            "$ctr" 2>&1 || true
        echo "--- podman logs --tail 25 $ctr"
        timeout 10 podman logs --tail 25 "$ctr" 2>&1 || true
        echo "--- podman processes on this host"
        pgrep -a podman 2>/dev/null | grep -v " exec $ctr " | head -n 10 || true
        echo "--- free space"
        df -h / /var/lib/containers /run 2>/dev/null | awk '!seen[$0]++' || true
    } >&2
}

# systemd has finished booting in CTR when `systemctl is-system-running` says running (or degraded).
# A container this run created that is still unreachable after RECREATE_AFTER seconds is removed and
# started again, once: a systemd that never came up (seen once on a fresh CI machine) does not come up
# later, and a new container costs a second. Each failure prints what `podman exec` said and the
# container's own log.
wait_systemd() {  # index into CONTAINERS
    local i=$1 ctr=${CONTAINERS[$1]} start=$SECONDS recreated=0 out st
    local recreate_after=$((UP_TIMEOUT / 2 < 60 ? UP_TIMEOUT / 2 : 60))
    while :; do
        out=$(timeout 10 podman exec "$ctr" systemctl is-system-running 2>&1) || true
        st=${out##*$'\n'}
        case $st in
            running) return 0 ;;
            degraded)
                say "warning: systemd in $ctr is degraded; failed units:"
                podman exec "$ctr" systemctl --failed --no-legend --plain >&2 || true
                return 0 ;;
        esac
        [[ "$(container_state "$ctr")" == running ]] || {
            boot_diagnostics "$ctr"
            die "container $ctr stopped while booting (diagnostics above; podman logs $ctr)"
        }
        if ((recreated == 0 && ${CREATED[$ctr]:-0} == 1 && SECONDS - start >= recreate_after)); then
            say "systemd in $ctr not reachable after $((SECONDS - start)) s (podman exec said: '${out:-nothing}');" \
                "removing and starting it again"
            boot_diagnostics "$ctr"
            timeout 120 podman rm -f -t 5 "$ctr" >/dev/null || die "podman rm $ctr failed"
            ensure_container "$i"
            recreated=1 start=$SECONDS
            continue
        fi
        if ((SECONDS - start >= UP_TIMEOUT)); then
            boot_diagnostics "$ctr"
            die "systemd in $ctr is not up after ${UP_TIMEOUT}s: podman exec $ctr systemctl" \
                "is-system-running said '${out:-nothing}' (diagnostics above)"
        fi
        sleep 0.2
    done
}

# A lab whose inventory sets lab_ansible_over_ssh (the e2e lab) is reached over SSH, as a real fleet
# is (and each task costs a third of a round of `podman exec`): a key of the lab's own in $STATE/ssh,
# sshd started in the router and the servers (the image has it, disabled), and an ssh_config that
# names each container (the inventory's ansible_host) with its address. The clients sit on an
# internal network the host cannot reach: they stay on `podman exec` (group_vars/clients).
ensure_ssh() {
    local dir=$STATE/ssh i ctr t deadline
    t=$(now)
    mkdir -p "$dir" && chmod 700 "$dir"
    [[ -s $dir/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "fleetbgp-lab" -f "$dir/id_ed25519" \
        || die "ssh-keygen for the lab's key failed"
    {
        for i in "${!CONTAINERS[@]}"; do
            [[ ${ROLES[$i]} == client ]] || printf 'Host %s\n    HostName %s\n' "${CONTAINERS[$i]}" "${ADDRS[$i]}"
        done
        # The containers make new host keys whenever they are created: nothing to pin.
        printf 'Host *\n    User root\n    IdentityFile %s\n    IdentitiesOnly yes\n    BatchMode yes\n' "$dir/id_ed25519"
        printf '    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n'
    } >"$dir/config.new" && mv "$dir/config.new" "$dir/config"
    for i in "${!CONTAINERS[@]}"; do
        [[ ${ROLES[$i]} != client ]] || continue
        ctr=${CONTAINERS[$i]}
        timeout 60 podman exec -i "$ctr" sh -c 'umask 077 && mkdir -p /root/.ssh \
            && cat >/root/.ssh/authorized_keys && systemctl enable --now ssh.service' \
            <"$dir/id_ed25519.pub" >/dev/null 2>&1 \
            || die "cannot start sshd in $ctr (podman exec $ctr systemctl status ssh)"
    done
    deadline=$(( $(date +%s) + UP_TIMEOUT ))
    for i in "${!CONTAINERS[@]}"; do
        [[ ${ROLES[$i]} != client ]] || continue
        ctr=${CONTAINERS[$i]}
        until timeout 15 ssh -F "$dir/config" -o ConnectTimeout=5 "$ctr" true 2>"$dir/last-error"; do
            (( $(date +%s) < deadline )) \
                || die "no SSH to $ctr (${ADDRS[$i]}) within ${UP_TIMEOUT}s: $(cat "$dir/last-error")"
            sleep 1
        done
    done
    say "SSH to the router and the servers with the lab's key ($dir/config) after $(since "$t")"
}

# lab/fleet/lab.yml sets up what is the lab's own (BIRD and forwarding on the router, lab-web and the
# route back on the servers, the client's routes and load client). It is skipped when neither its
# inputs, nor the containers, nor BIRD's deployed config changed since it last succeeded, and BIRD
# and every server's lab-web run (saves ~15 s).
configure_lab() {
    local t sum log=$STATE/lab-play.log
    t=$(now)
    sum=$( {
        podman container inspect --format '{{.Id}}' "${CONTAINERS[@]}"
        cd "$LAB_DIR" && find lab.yml tasks templates vault-password ../traffic "$INVENTORY"/ -type f \
            ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16)
    deployed() { timeout 10 podman exec "$ROUTER" sha256sum /etc/bird/bird.conf 2>/dev/null | cut -c1-16; }
    services_run() {
        local i
        timeout 10 podman exec "$ROUTER" birdc show status >/dev/null 2>&1 || return 1
        for i in "${!CONTAINERS[@]}"; do
            [[ ${ROLES[$i]} != server ]] \
                || timeout 10 podman exec "${CONTAINERS[$i]}" systemctl is-active -q lab-web.service || return 1
        done
    }
    if [[ -f $STATE/lab.sum && "$(<"$STATE/lab.sum")" == "$sum $(deployed)" ]] && services_run; then
        say "lab services: running, unchanged since lab/fleet/lab.yml set them up"
        return 0
    fi
    rm -f "$STATE/lab.sum"
    ansible_env
    # One ansible-playbook per group, side by side: the plays do not depend on each other, and most
    # of their time is waiting for `podman exec` (~15 s saved).
    local group groups=() pids=() failed=()
    for group in routers bgp_servers clients; do
        [[ $group != clients || -n $CLIENT_NETWORK ]] || continue
        groups+=("$group")
        timeout "$UP_TIMEOUT" ansible-playbook "$LAB_DIR/lab.yml" --limit "$group" \
            >"$STATE/lab-play-$group.log" 2>&1 &
        pids+=($!)
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${groups[$i]}")
    done
    for group in "${groups[@]}"; do cat "$STATE/lab-play-$group.log"; done >"$log"
    if ((${#failed[@]})); then
        for group in "${failed[@]}"; do cat "$STATE/lab-play-$group.log" >&2; done
        die "lab/fleet/lab.yml failed or took over ${UP_TIMEOUT}s for ${failed[*]} (BIRD, lab-web, routes; output above)"
    fi
    echo "$sum $(deployed)" >"$STATE/lab.sum"
    say "lab services set up by lab/fleet/lab.yml: $(grep -Eo 'changed=[0-9]+' "$log" | paste -sd' ') ($(since "$t"))"
}

cmd_up() {
    need_root up
    lock
    load_topology
    local t0 t
    t0=$(now)
    [[ -x $REPO/lab/images/build.sh ]] || die "lab/images/build.sh not found"
    if ! "$REPO/lab/images/build.sh" --check >/dev/null 2>&1; then
        t=$(now)
        say "building the container images (lab/images/build.sh; about 100 s when nothing is cached)"
        timeout "$IMAGES_TIMEOUT" "$REPO/lab/images/build.sh" \
            || die "lab/images/build.sh failed or took over ${IMAGES_TIMEOUT}s"
        say "images built in $(since "$t")"
    fi
    ensure_network "$NETWORK" 0 "$SUBNET" "$GATEWAY" "$SUBNET6" "$GATEWAY6"
    [[ -z $CLIENT_NETWORK ]] || ensure_network "$CLIENT_NETWORK" 1 "$CLIENT_SUBNET" - "$CLIENT_SUBNET6" -
    local i
    for i in "${!CONTAINERS[@]}"; do ensure_container "$i"; done
    for i in "${!CONTAINERS[@]}"; do wait_systemd "$i"; done
    say "containers up with systemd running (${CONTAINERS[*]}) after $(since "$t0")"
    (( LAB_SSH == 0 )) || ensure_ssh
    configure_lab
    say "lab up in $(since "$t0"): ${#CONTAINERS[@]} containers on $NETWORK ($SUBNET, $SUBNET6)${CLIENT_NETWORK:+ and $CLIENT_NETWORK ($CLIENT_SUBNET, $CLIENT_SUBNET6)}"
}

cmd_down() {
    need_root down
    lock
    local t0 ctrs
    t0=$(now)
    # Everything this lab made carries the label, also containers an older inventory named.
    mapfile -t ctrs < <(podman ps -a --filter "label=$LABEL=1" --format '{{.Names}}')
    if ((${#ctrs[@]})); then
        say "removing containers: ${ctrs[*]}"
        # systemd stops on SIGRTMIN+3 (the image's STOPSIGNAL); give it 10 s, then kill.
        timeout 120 podman rm -f -t 10 "${ctrs[@]}" >/dev/null || die "podman rm failed"
    fi
    local net
    for net in $(podman network ls --filter "label=$LABEL=1" --format '{{.Name}}'); do
        say "removing network $net"
        timeout 60 podman network rm "$net" >/dev/null || die "podman network rm $net failed"
    done
    rm -f "$STATE/deployed" "$STATE/lab.sum"
    say "lab down in $(since "$t0") (images kept: podman images | grep fleetbgp)"
}

unit_state() { timeout 10 podman exec "$1" systemctl is-active "$2" 2>/dev/null || true; }

cmd_status() {
    need_root status
    load_topology
    local rc=0 i ctr st sysd agent
    printf '%-8s %-22s %-12s %-9s %-9s %s\n' NAME CONTAINER ADDRESS STATE SYSTEMD SERVICES
    for i in "${!CONTAINERS[@]}"; do
        ctr=${CONTAINERS[$i]}
        st=$(container_state "$ctr") sysd=- agent=-
        if [[ $st == running ]]; then
            sysd=$(timeout 10 podman exec "$ctr" systemctl is-system-running 2>/dev/null || true)
            case ${ROLES[$i]} in
                router) agent="bird: $(unit_state "$ctr" bird.service)" ;;
                server) agent="fleetbgp: $(unit_state "$ctr" fleetbgp.service), lab-web: $(unit_state "$ctr" lab-web.service)" ;;
                *) agent="lab-routes: $(unit_state "$ctr" lab-routes.service)" ;;
            esac
        else
            rc=1
        fi
        printf '%-8s %-22s %-12s %-9s %-9s %s\n' "${NAMES[$i]}" "$ctr" "${ADDRS[$i]}" "$st" "${sysd:--}" "${agent:--}"
    done
    if [[ "$(container_state "$ROUTER")" == running ]]; then
        echo
        timeout 10 podman exec "$ROUTER" birdc show protocols 2>/dev/null | sed 1d || true
    fi
    return $rc
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) print_env ;;
    run)
        shift
        (($#)) || die "usage: $0 run CMD [ARGS...]"
        ansible_env
        cd "$REPO"
        exec "$@" ;;
    birdc)
        shift
        load_topology
        exec podman exec "$ROUTER" birdc "$@" ;;
    shell)
        load_topology
        ctr=$(container_of "${2:-router}")
        exec podman exec -it "$ctr" bash -l ;;
    names)
        load_topology
        for i in "${!CONTAINERS[@]}"; do
            echo "${ROLES[$i]} ${NAMES[$i]} ${CONTAINERS[$i]} ${ADDRS[$i]} ${ADDRS6[$i]}"
        done ;;
    -h | --help | help | "") sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (see $0 --help)" ;;
esac
