#!/usr/bin/env bash
# scripts/test-alert-rules.sh: the Prometheus alert rules of fleet.bgp, checked and unit-tested with
# Prometheus's own promtool (Debian package `prometheus`, installed by scripts/setup-system.sh; only
# the promtool binary is used, the packaged daemon stays stopped).
#
#   promtool check rules roles/monitoring/files/prometheus/fleetbgp.rules.yml   syntax, PromQL, templates
#   promtool test rules  tests/monitoring/*.test.yml                            every alert: fires / stays quiet
#
# It also fails when an alert of the rules file has no test (an `alertname:` in a test file), so a
# new rule cannot land untested; when docs/ names an alert (FleetbgpSomething) the rules file does
# not ship, so no example shows one an operator would look for in vain; and when an alert is missing
# from the table of docs/operations/monitoring.md (what it means, what to do). Exit 0 when all
# passed. A few seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RULES=roles/monitoring/files/prometheus/fleetbgp.rules.yml
TESTS=(tests/monitoring/*.test.yml)

command -v promtool >/dev/null \
  || { echo "test-alert-rules.sh: promtool missing (apt-get install prometheus, or make setup)" >&2; exit 1; }

promtool check rules "$RULES"
promtool test rules "${TESTS[@]}"

# Every alert named in the rules file is tested somewhere.
missing=()
while read -r alert; do
  grep -qE "alertname: *${alert}\$" "${TESTS[@]}" || missing+=("$alert")
done < <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$RULES")
if ((${#missing[@]})); then
  echo "test-alert-rules.sh: alerts without a promtool test in ${TESTS[*]}: ${missing[*]}" >&2
  exit 1
fi

shipped=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$RULES")
unknown=$(grep -rhoE '\bFleetbgp[A-Z][A-Za-z0-9]*' docs | sort -u | grep -vxF "$shipped" || true)
if [[ -n "$unknown" ]]; then
  echo "test-alert-rules.sh: docs/ names alerts $RULES does not ship:" $unknown >&2
  grep -rnoE "\b($(echo $unknown | tr ' ' '|'))\b" docs >&2
  exit 1
fi
undocumented=()
for alert in $shipped; do
  grep -q "^| \`$alert\` |" docs/operations/monitoring.md || undocumented+=("$alert")
done
if ((${#undocumented[@]})); then
  echo "test-alert-rules.sh: alerts without a row in docs/operations/monitoring.md: ${undocumented[*]}" >&2
  exit 1
fi
n=$(grep -c '^ *- alert:' "$RULES")
echo "alert-rules: $n passed, 0 failed"
