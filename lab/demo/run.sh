#!/usr/bin/env bash
# make demo-netns: the agent alone (no Ansible) end to end, on this machine only.
#
#   fbdemo-rtr (router)                         fbdemo-srv (server)
#   BIRD 2, AS65000, 10.255.99.1/30 --veth--  10.255.99.2/30, AS65001, fleetbgp run fleetbgp.conf
#
# The server's agent announces the anycast address 100.10.0.100/32 (MED 100, communities
# 65001:100 65001:200, large community 65001:1:1); the demo waits until BIRD holds the route,
# prints BIRD's view of it and the session, checks the attributes, and removes everything it made.
# Needs root. Exits 0 on success, non-zero with a message on failure.
#
# Environment:
#   FBDEMO_TIMEOUT=30        seconds to wait for the route
#   FBDEMO_SENDER=fleetbgp   or `exabgp`: ExaBGP 5.0.15 from .venv, same config (a reference sender)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

NS_RTR=fbdemo-rtr
NS_SRV=fbdemo-srv
VETH_RTR=fbdemo-r
VETH_SRV=fbdemo-s
RTR_ADDR=10.255.99.1
SRV_ADDR=10.255.99.2
PLEN=30
ROUTE=100.10.0.100/32
BIRD_PROTO=demo_server
BIRD_CONF=$HERE/bird.conf
AGENT_CONF=$HERE/fleetbgp.conf
TIMEOUT=${FBDEMO_TIMEOUT:-30}
SENDER=${FBDEMO_SENDER:-fleetbgp}

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (it creates network namespaces); run: sudo make demo-netns"
for tool in ip bird birdc flock; do
    command -v "$tool" >/dev/null || die "'$tool' not found; run: make setup"
done
case $SENDER in
    fleetbgp) SENDER_BIN=$REPO/.venv/bin/fleetbgp ;;
    exabgp)   SENDER_BIN=$REPO/.venv/bin/exabgp ;;
    *)        die "FBDEMO_SENDER must be fleetbgp or exabgp, not '$SENDER'" ;;
esac
[[ -x $SENDER_BIN ]] || die "$SENDER_BIN not found; run: make setup"

# One demo at a time on this machine (the namespace names are fixed).
exec 8>/run/fbdemo.lock
flock -n 8 || die "another 'make demo-netns' is running on this machine"

WORK=$(mktemp -d /tmp/fbdemo.XXXXXX)
BIRD_SOCK=$WORK/bird.ctl
pids=()
made_ns=()

stop_pid() {  # TERM, then KILL after 5 s; only PIDs this script started
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

show_logs() {
    local f
    for f in "$WORK"/*.log; do
        [[ -s $f ]] || continue
        printf '\n--- %s (last 25 lines) ---\n' "$(basename "$f")" >&2
        tail -n 25 "$f" >&2
    done
}

cleanup() {
    local rc=$?
    set +e
    trap "" INT TERM  # cleanup must not be cut short by a second signal
    trap - EXIT
    ((rc == 0)) || show_logs
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$WORK"
    ((rc == 0)) && say "cleaned up (processes stopped, namespaces $NS_RTR and $NS_SRV deleted)"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM

# A demo killed hard (SIGKILL) leaves its namespaces behind: remove them and what runs in them.
for ns in "$NS_RTR" "$NS_SRV"; do
    if ip netns list | grep -qw "^$ns"; then
        say "removing namespace $ns left over from an earlier run"
        for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid"; done
        ip netns del "$ns"
    fi
done

# --- network: two namespaces, one veth pair -------------------------------------------------
say "creating namespaces $NS_RTR ($RTR_ADDR/$PLEN) and $NS_SRV ($SRV_ADDR/$PLEN), joined by a veth pair"
for ns in "$NS_RTR" "$NS_SRV"; do
    ip netns add "$ns"
    made_ns+=("$ns")
    ip -n "$ns" link set lo up
done
ip link add "$VETH_RTR" netns "$NS_RTR" type veth peer name "$VETH_SRV" netns "$NS_SRV"
ip -n "$NS_RTR" addr add "$RTR_ADDR/$PLEN" dev "$VETH_RTR"
ip -n "$NS_SRV" addr add "$SRV_ADDR/$PLEN" dev "$VETH_SRV"
ip -n "$NS_RTR" link set "$VETH_RTR" up
ip -n "$NS_SRV" link set "$VETH_SRV" up

# --- the router: BIRD 2 with its own config, control socket and pid file --------------------
say "starting BIRD $(bird --version 2>&1 | awk '{print $NF}') in $NS_RTR (AS65000, passive, import all, export none)"
bird -p -c "$BIRD_CONF" || die "BIRD rejects $BIRD_CONF"
ip netns exec "$NS_RTR" bird -f -c "$BIRD_CONF" -s "$BIRD_SOCK" -P "$WORK/bird.pid" \
    >"$WORK/bird.log" 2>&1 </dev/null &
pids+=($!)
birdc() { command birdc -s "$BIRD_SOCK" "$@"; }
for _ in $(seq 50); do
    birdc show status >/dev/null 2>&1 && break
    kill -0 "${pids[0]}" 2>/dev/null || die "BIRD exited at start"
    sleep 0.1
done
birdc show status >/dev/null 2>&1 || die "BIRD's control socket did not come up"

# --- the server: the agent (or ExaBGP as reference) with the sample config --------------------
if [[ $SENDER == fleetbgp ]]; then
    say "starting 'fleetbgp run $(realpath --relative-to="$REPO" "$AGENT_CONF")' in $NS_SRV (AS65001)"
    ip netns exec "$NS_SRV" "$SENDER_BIN" run "$AGENT_CONF" >"$WORK/sender.log" 2>&1 </dev/null &
else
    say "starting ExaBGP 5.0.15 (reference sender) with $(realpath --relative-to="$REPO" "$AGENT_CONF") in $NS_SRV"
    ip netns exec "$NS_SRV" env exabgp_daemon_user=root exabgp_daemon_drop=false \
        exabgp_log_destination=stdout exabgp_api_cli=false \
        "$SENDER_BIN" "$AGENT_CONF" >"$WORK/sender.log" 2>&1 </dev/null &
fi
sender_pid=$!
pids+=("$sender_pid")

# --- wait (bounded) until BIRD holds the route ----------------------------------------------
say "waiting up to ${TIMEOUT}s for BIRD to hold $ROUTE"
started=$EPOCHREALTIME
deadline=$((SECONDS + TIMEOUT))
until birdc show route for "$ROUTE" protocol "$BIRD_PROTO" 2>/dev/null | grep -q "^${ROUTE%/*}/"; do
    kill -0 "$sender_pid" 2>/dev/null || die "$SENDER exited before BIRD got the route"
    if ((SECONDS >= deadline)); then
        birdc show protocols all "$BIRD_PROTO" >&2 || true
        die "BIRD does not hold $ROUTE after ${TIMEOUT}s"
    fi
    sleep 0.2
done
say "BIRD holds $ROUTE, $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')s after the sender started"

routes=$(birdc show route all)
printf '\n== BIRD in %s: birdc show route all\n%s\n' "$NS_RTR" "$routes"
printf '\n== BIRD in %s: birdc show protocols all %s\n' "$NS_RTR" "$BIRD_PROTO"
birdc show protocols all "$BIRD_PROTO"
printf '\n== %s log (stderr, last 10 lines)\n' "$SENDER"
tail -n 10 "$WORK/sender.log"
echo

# --- check what BIRD received against what the config announces ------------------------------
expect=(
    "BGP.as_path: 65001"
    "BGP.next_hop: $SRV_ADDR"
    "BGP.med: 100"
    "BGP.community: (65001,100) (65001,200)"
    "BGP.large_community: (65001, 1, 1)"
)
for line in "${expect[@]}"; do
    grep -qF "$line" <<<"$routes" || die "BIRD's route lacks '$line'"
done
say "OK: BIRD (AS65000) holds $ROUTE from AS65001 via $SRV_ADDR with MED 100,"
say "    communities 65001:100 65001:200 and large community 65001:1:1"
