#!/usr/bin/env bash
# lab/fleet/demo.sh (`make demo`): the collection's job end to end on a lab fleet on this machine.
#
#   client 10.89.17.10 --- fleetbgp-lab-clients (internal) --- router 10.89.17.2 / 10.89.7.2: BIRD 2, AS 65000
#   router --- podman network fleetbgp-lab (10.89.7.0/24, fd89:7::/64) --- srv1 .11, srv2 .12, srv3 .13:
#   AS 65001, systemd as PID 1, lab-web (HTTP, answers with the host name), fleetbgp via Ansible
#
# Steps: build the container images if missing (lab/images/build.sh), start the lab if it is not
# running (lab/fleet/lab.sh up), `ansible-playbook fleet.bgp.site` and `fleet.bgp.status` against
# lab/fleet/inventory, then show what BIRD holds and check it:
#   - 100.10.0.100/32 (anycast, same attributes from all three servers): three paths, exported to
#     the router's kernel table as one ECMP route with three next hops (2001:db8:100::100/128 too);
#   - 100.10.0.200/32 (primary/backup): srv1 with MED 100 is the best path, srv2 with MED 200 the backup;
#   - BFD: every BGP session's BFD session Up at the router (`birdc show bfd sessions`);
# then sends requests from the client behind the router (lab/traffic/loadclient.py) and checks what
# answered: the anycast address all three servers (IPv4 and IPv6), the primary/backup address srv1
# only, no request failed.
# A second run on the same lab, with the collection and inventory unchanged, must report changed=0
# for the site play (it is checked). The lab keeps running afterwards; `make demo-down` removes it.
# Needs root. Exits 0 with a final "demo: OK" line, or non-zero with "demo: FAIL: reason".
#
# Environment (seconds): FLEETBGP_DEMO_SITE_TIMEOUT=900, FLEETBGP_DEMO_STATUS_TIMEOUT=180,
#   FLEETBGP_DEMO_BIRD_TIMEOUT=60 (BIRD to hold every path after the site play),
#   FLEETBGP_DEMO_TRAFFIC_SECONDS=4 and FLEETBGP_DEMO_TRAFFIC_RATE=50 (requests per second and address),
#   and lab.sh's
#   FLEETBGP_LAB_UP_TIMEOUT=120, FLEETBGP_LAB_IMAGES_TIMEOUT=900.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
LAB=$LAB_DIR/lab.sh
STATE=${FLEETBGP_LAB_STATE:-/run/fleetbgp-lab}
SITE_TIMEOUT=${FLEETBGP_DEMO_SITE_TIMEOUT:-900}
STATUS_TIMEOUT=${FLEETBGP_DEMO_STATUS_TIMEOUT:-180}
BIRD_TIMEOUT=${FLEETBGP_DEMO_BIRD_TIMEOUT:-60}
TRAFFIC_SECONDS=${FLEETBGP_DEMO_TRAFFIC_SECONDS:-4}
TRAFFIC_RATE=${FLEETBGP_DEMO_TRAFFIC_RATE:-50}

# What the inventory announces (lab/fleet/inventory/group_vars/bgp_servers/main.yml, host_vars/).
ANYCAST=100.10.0.100/32
ANYCAST6=2001:db8:100::100/128
SERVICE=100.10.0.200/32
PRIMARY=srv1 PRIMARY_MED=100
BACKUP=srv2 BACKUP_MED=200

# The lock (fd 7) must not leak into long-lived children (see lab.sh).
podman() { command podman "$@" 7>&-; }
timeout() { command timeout "$@" 7>&-; }

T0=$(date +%s.%N)
timings=()
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'demo: %s\n' "$*"; }
banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[[ -t 1 ]] || banner() { printf '\n== %s\n' "$*"; }
step_start() { STEP=$1 STEP_T=$(now); banner "$2"; }
step_done() { timings+=("$STEP $(secs "$STEP_T") s"); }
print_timings() {
    local t out=""
    for t in "${timings[@]}"; do out+="$t, "; done
    say "timings: ${out}total $(secs "$T0") s"
}
fail() {
    printf '\ndemo: FAIL: %s\n' "$*" >&2
    if [[ ${DIAG:-0} == 1 ]]; then
        banner "diagnostics" >&2
        "$LAB" status >&2 || true
        local s
        for s in "${SERVERS[@]}"; do
            printf -- '--- %s: journalctl -u fleetbgp (last 10 lines)\n' "$s" >&2
            timeout 15 podman exec "$(ctr "$s")" journalctl -u fleetbgp.service -n 10 --no-pager >&2 || true
        done
    fi
    print_timings >&2
    printf 'demo: FAIL: %s\n' "$*" >&2
    exit 1
}
trap 'printf "\ndemo: FAIL: interrupted (the lab stays up; make demo-down removes it)\n" >&2; exit 130' INT TERM

# --- preflight --------------------------------------------------------------------------------
[[ $EUID -eq 0 ]] || fail "needs root (rootful podman); run: sudo make demo"
command -v podman >/dev/null || fail "podman not found; run: make setup"
[[ -x $REPO/.venv/bin/ansible-playbook ]] || fail "$REPO/.venv/bin/ansible-playbook not found; run: make setup"
for f in galaxy.yml playbooks/site.yml playbooks/status.yml roles/agent/tasks/main.yml \
    plugins/modules/agent_info.py lab/images/build.sh; do
    [[ -e $REPO/$f ]] || fail "$f is missing: the collection is incomplete in $REPO"
done

mkdir -p "$STATE"
exec 7>"$STATE/lock"
flock -w 600 7 || fail "another lab operation (make demo / demo-down) holds $STATE/lock for over 600 s"
export FLEETBGP_LAB_LOCKED=1

# Topology from the inventory: SERVERS (inventory names), their containers and addresses.
declare -A CTR=() ADDR=()
SERVERS=()
CLIENT=""
while read -r role name container addr _; do
    CTR[$name]=$container ADDR[$name]=$addr
    case $role in
        router) ROUTER=$name ;;
        server) SERVERS+=("$name") ;;
        client) CLIENT=$name ;;
    esac
done < <("$LAB" names)
[[ -n $CLIENT ]] || fail "the lab inventory has no host in the 'clients' group (lab/fleet/inventory/hosts.yml)"
ctr() { echo "${CTR[$1]}"; }
birdc() { timeout 15 podman exec "$(ctr "$ROUTER")" birdc "$@"; }

# --- 1. images and lab ------------------------------------------------------------------------
IMAGES_TIMEOUT=${FLEETBGP_LAB_IMAGES_TIMEOUT:-900}
step_start images "images: lab/images/build.sh (builds only what is missing; ~100 s the first time)"
rc=0
timeout -k 10 "$IMAGES_TIMEOUT" "$REPO/lab/images/build.sh" || rc=$?
((rc != 124)) || fail "lab/images/build.sh took over ${IMAGES_TIMEOUT}s"
((rc == 0)) || fail "lab/images/build.sh failed (exit $rc, message above)"
step_done

step_start lab "lab: network and containers (lab/fleet/lab.sh up)"
"$LAB" up || fail "the lab did not come up (message above)"
step_done

eval "$("$LAB" env)"
[[ -t 1 ]] && export ANSIBLE_FORCE_COLOR=1
cd "$REPO"

# Is this a re-run on a lab that an earlier demo deployed from the same sources? Then the site
# play must change nothing.
lab_id=$(for s in "${SERVERS[@]}"; do podman container inspect --format '{{.Id}}' "$(ctr "$s")"; done | sha256sum | cut -c1-16)
src_sum() {
    local paths=(galaxy.yml meta roles playbooks plugins agent lab/fleet/inventory)
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$REPO" ls-files -z -co --exclude-standard -- "${paths[@]}"
    else
        find "${paths[@]}" -type f ! -path '*/__pycache__/*' -print0
    fi | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}
src_id=$(src_sum)
expect_no_change=0
if [[ -f $STATE/deployed && "$(<"$STATE/deployed")" == "$lab_id $src_id" ]]; then
    expect_no_change=1
fi
rm -f "$STATE/deployed"  # written again only when this run passes every check
# The role installs the agent only when its version differs from the installed one: an agent changed
# without a new version (a development checkout) would never reach the servers. Force the install when
# the agent's source differs from the one the last good demo deployed (or none is recorded).
agent_id=$(cd "$REPO" && git ls-files -z -co --exclude-standard -- agent/src agent/pyproject.toml 2>/dev/null \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
force_install=true
[[ -f $STATE/agent-deployed && "$(<"$STATE/agent-deployed")" == "$agent_id" ]] && force_install=false
rm -f "$STATE/agent-deployed"
# The route plan (the site play's first play) asks the installed agent, which may not know the new
# config's keywords (e.g. `bfd`): skip it when an installed agent is about to be replaced.
site_args=()
if [[ $force_install == true ]] && timeout 15 podman exec "$(ctr "${SERVERS[0]}")" test -x /opt/fleetbgp/venv/bin/fleetbgp; then
    site_args=(--skip-tags fleet_bgp_plan)
fi

strip_ansi() { sed -E 's/\x1b\[[0-9;]*[a-zA-Z]//g'; }
recap() {  # LOG FIELD: the sum of FIELD=N over the PLAY RECAP lines
    strip_ansi <"$1" | awk -v f="$2" '/^PLAY RECAP/ { r = 1; next }
        r && / : ok=/ { for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2 && kv[1] == f) n += kv[2] }
        END { print n + 0 }'
}

# --- 2. fleet.bgp.site --------------------------------------------------------------------------
DIAG=1
site_log=$STATE/site.log
step_start site "ansible-playbook fleet.bgp.site -i lab/fleet/inventory  (vault: lab/fleet/vault-password)"
rc=0
timeout -k 10 "$SITE_TIMEOUT" ansible-playbook fleet.bgp.site -i lab/fleet/inventory "${site_args[@]}" \
    -e "fleet_bgp_agent_force_install=$force_install" 2>&1 | tee "$site_log" || rc=$?
step_done
((rc != 124)) || fail "fleet.bgp.site took over ${SITE_TIMEOUT}s (log: $site_log)"
((rc == 0)) || fail "fleet.bgp.site failed (exit $rc; the failing task is above; log: $site_log)"
site_changed=$(recap "$site_log" changed)
echo "$agent_id" >"$STATE/agent-deployed"

# --- 3. fleet.bgp.status ------------------------------------------------------------------------
status_log=$STATE/status.log
step_start status "ansible-playbook fleet.bgp.status -i lab/fleet/inventory"
rc=0
timeout -k 10 "$STATUS_TIMEOUT" ansible-playbook fleet.bgp.status -i lab/fleet/inventory 2>&1 | tee "$status_log" || rc=$?
step_done
((rc != 124)) || fail "fleet.bgp.status took over ${STATUS_TIMEOUT}s (log: $status_log)"
((rc == 0)) || fail "fleet.bgp.status failed (exit $rc; log: $status_log)"

# --- 4. BIRD's view ---------------------------------------------------------------------------
# paths PREFIX: one line per path BIRD holds: "PROTOCOL best|alt MED NEXT_HOP"
paths() {
    birdc show route "$1" all | awk '
        function out() { if (p != "") print p, best, med, nh }
        / unicast \[/ {
            out(); p = $0; sub(/.* unicast \[/, "", p); sub(/ .*/, "", p)
            best = ($0 ~ /\] \* /) ? "best" : "alt"; med = "-"; nh = "-" }
        /BGP\.med:/ { med = $2 }
        /BGP\.next_hop:/ { nh = $2 }
        END { out() }'
}
established() { birdc show protocols | awk '$2 == "BGP" && / Established/ { n++ } END { print n + 0 }'; }
# BFD sessions Up at the router (every lab server runs BFD on both sessions: fleet_bgp_bfd in the inventory).
bfd_up() { birdc show bfd sessions | awk '$3 == "Up" { n++ } END { print n + 0 }'; }

step_start bird "BIRD on the router ($(ctr "$ROUTER"), AS 65000): waiting up to ${BIRD_TIMEOUT}s for every session and path"
deadline=$((SECONDS + BIRD_TIMEOUT))
n=${#SERVERS[@]}
# Two sessions per server (IPv4, IPv6). The health checks announce once `rise` checks passed.
while :; do
    e=$(established 2>/dev/null || echo 0)
    a=$(paths "$ANYCAST" 2>/dev/null | wc -l)
    a6=$(paths "$ANYCAST6" 2>/dev/null | wc -l)
    p=$(paths "$SERVICE" 2>/dev/null | wc -l)
    b=$(bfd_up 2>/dev/null || echo 0)
    ((e == 2 * n && a == n && a6 == n && p == 2 && b == 2 * n)) && break
    ((SECONDS < deadline)) || { birdc show protocols all >&2 || true; birdc show bfd sessions >&2 || true
        fail "after ${BIRD_TIMEOUT}s BIRD has $e/$((2 * n)) sessions Established, $a/$n paths for $ANYCAST," \
            "$a6/$n for $ANYCAST6, $p/2 for $SERVICE, $b/$((2 * n)) BFD sessions Up"; }
    sleep 0.5
done
step_done

printf '\n$ birdc show protocols\n'
birdc show protocols | sed 1d
printf '\n$ birdc show bfd sessions            # BFD: a frozen server is out within 3 x 300 ms\n'
birdc show bfd sessions | sed 1d
printf '\n$ birdc show route %s all          # anycast: one path per server\n' "$ANYCAST"
birdc show route "$ANYCAST" all | sed 1d
printf '\n$ birdc show route export kernel4 %s   # merge paths on: one ECMP route\n' "$ANYCAST"
birdc show route export kernel4 "$ANYCAST" | sed 1d
printf '\n$ ip route show %s                 # the router container'"'"'s own kernel table\n' "${ANYCAST%/32}"
timeout 15 podman exec "$(ctr "$ROUTER")" ip route show "${ANYCAST%/32}"
printf '\n$ birdc show route %s all          # primary/backup: the lower MED wins\n' "$SERVICE"
birdc show route "$SERVICE" all | sed 1d

# --- 5. checks ----------------------------------------------------------------------------------
banner "checks"
ok=()
want_nh=$(for s in "${SERVERS[@]}"; do echo "${ADDR[$s]}"; done | sort | xargs)
any=$(paths "$ANYCAST")
got_proto=$(awk '{ print $1 }' <<<"$any" | sort | xargs)
got_nh=$(awk '{ print $4 }' <<<"$any" | sort | xargs)
meds=$(awk '{ print $3 }' <<<"$any" | sort -u | wc -l)
[[ $got_proto == "$(printf '%s\n' "${SERVERS[@]}" | sort | xargs)" ]] \
    || fail "$ANYCAST: BIRD has paths from '$got_proto', expected one from each of ${SERVERS[*]}"
[[ $got_nh == "$want_nh" ]] || fail "$ANYCAST: next hops '$got_nh', expected '$want_nh'"
((meds == 1)) || fail "$ANYCAST: the paths differ in MED; ECMP needs equal attributes"
ecmp_nh=$(birdc show route export kernel4 "$ANYCAST" | awk '/via/ { print $2 }' | sort | xargs)
[[ $ecmp_nh == "$want_nh" ]] \
    || fail "$ANYCAST: BIRD exports next hops '$ecmp_nh' to the kernel, expected the ECMP set '$want_nh'"
fib_nh=$(timeout 15 podman exec "$(ctr "$ROUTER")" ip route show "${ANYCAST%/32}" | awk '/nexthop via/ { print $3 }' | sort | xargs)
[[ $fib_nh == "$want_nh" ]] || fail "$ANYCAST: the router's kernel has next hops '$fib_nh', expected '$want_nh'"
ok+=("$ANYCAST anycast: $n equal paths ($got_proto), one ECMP route with next hops $want_nh")
ok+=("BFD: $(bfd_up)/$((2 * n)) sessions Up at the router (BGP goes down with them: docs/agent/bfd.md)")

svc=$(paths "$SERVICE")
best=$(awk '$2 == "best" { print $1, $3, $4 }' <<<"$svc")
alt=$(awk '$2 == "alt" { print $1, $3, $4 }' <<<"$svc")
[[ $best == "$PRIMARY $PRIMARY_MED ${ADDR[$PRIMARY]}" ]] \
    || fail "$SERVICE: best path is '$best' (protocol MED next-hop), expected '$PRIMARY $PRIMARY_MED ${ADDR[$PRIMARY]}'"
[[ $alt == "$BACKUP $BACKUP_MED ${ADDR[$BACKUP]}" ]] \
    || fail "$SERVICE: backup path is '$alt', expected '$BACKUP $BACKUP_MED ${ADDR[$BACKUP]}'"
ok+=("$SERVICE primary/backup: best $PRIMARY (MED $PRIMARY_MED, via ${ADDR[$PRIMARY]}), backup $BACKUP (MED $BACKUP_MED)")

# --- 6. traffic: what a client behind the router gets ------------------------------------------
step_start traffic "traffic: the client ($(ctr "$CLIENT"), behind the router) sends $TRAFFIC_RATE requests/s to each service address for ${TRAFFIC_SECONDS}s"
load_json=$STATE/traffic.json
rc=0
timeout -k 5 $((TRAFFIC_SECONDS + 60)) podman exec "$(ctr "$CLIENT")" python3 /usr/local/lib/lab/loadclient.py \
    --json --rate "$TRAFFIC_RATE" --duration "$TRAFFIC_SECONDS" \
    "${ANYCAST%/*}" "${ANYCAST6%/*}" "${SERVICE%/*}" >"$load_json" || rc=$?
((rc == 0)) || fail "the load client in $(ctr "$CLIENT") failed (exit $rc; lab/traffic/loadclient.py)"
step_done
# Prints the client's summary, then one verdict line per address: "ok TEXT" or "fail TEXT".
verdicts=$(PYTHONPATH=$REPO/lab "$REPO/.venv/bin/python" - "$load_json" "${ANYCAST%/*}" "${ANYCAST6%/*}" \
    "${SERVICE%/*}" "$PRIMARY" "${SERVERS[@]}" <<'PY'
import json
import sys

from traffic.loadclient import format_summary

path, anycast, anycast6, service, primary, *servers = sys.argv[1:]
summary = json.load(open(path))["summary"]
print(format_summary(summary), file=sys.stderr)
for addr, want, what in ((anycast, set(servers), "anycast"), (anycast6, set(servers), "anycast over IPv6"),
                         (service, {primary}, "primary/backup")):
    a = summary["addresses"][addr]
    hosts = a["hosts"]
    shares = ", ".join(f"{h} {v['share']:.0%}" for h, v in sorted(hosts.items()))
    good = set(hosts) == want and a["failed"] == 0
    print("ok" if good else "fail", f"{addr} {what}: {a['requests']} requests, {a['failed']} failed,"
          f" answered by {shares or 'nobody'}" + ("" if good else f" (expected {', '.join(sorted(want))}, none failed)"))
PY
) || fail "could not read the load client's result ($load_json)"
while read -r verdict text; do
    [[ $verdict == ok ]] || fail "traffic: $text"
    ok+=("traffic: $text")
done <<<"$verdicts"

if ((expect_no_change)); then
    ((site_changed == 0)) || fail "fleet.bgp.site changed $site_changed task(s) on a lab it had already deployed from the same sources: not idempotent, or the lab was changed by hand since the last demo (log: $site_log; make demo-down starts afresh)"
    ok+=("fleet.bgp.site re-run on the deployed lab: changed=0 (idempotent)")
elif ((site_changed == 0)); then
    ok+=("fleet.bgp.site: changed=0 (the lab already ran these sources)")
else
    ok+=("fleet.bgp.site: changed=$site_changed (first deploy of these sources on this lab; run make demo again: expect changed=0)")
fi
echo "$lab_id $src_id" >"$STATE/deployed"

for line in "${ok[@]}"; do say "ok: $line"; done
say "the lab keeps running: lab/fleet/lab.sh status | birdc ARGS | shell srv1 (docs/lab.md); make demo-down removes it"
print_timings
say "OK"
