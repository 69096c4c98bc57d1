#!/usr/bin/env bash
# scripts/lint-collection.sh: static checks of the fleet.bgp collection, no containers, ~20 s.
#
#   1. ansible-lint --profile production (offline; .ansible-lint), with fleet.bgp importable
#   2. every variable of roles/agent/defaults/main.yml documented in meta/argument_specs.yml,
#      with the same default
#   3. the agent role's templates rendered for each example inventory (roles/agent/tests/vars/*.yml):
#      the config passes `fleetbgp validate`, the unit rates <= 1.5 on `systemd-analyze security`
#   4. `ansible-galaxy collection build` into a scratch directory; the tarball holds what users need
#      (agent/ source included) and none of the developer trees
#   5. the built tarball installed into a scratch collections path: `ansible-playbook fleet.bgp.site`
#      and `fleet.bgp.status` pass --syntax-check from there, and the installed role finds the agent
#      source next to itself (not in this checkout)
#
# Every check runs (independent ones in parallel); the exit status is 1 if any failed, and the
# output of each failed check is shown. Usage: scripts/lint-collection.sh [-v]   (-v: all output)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv/bin"
VERBOSE=0
[[ ${1:-} == -v ]] && VERBOSE=1

for tool in ansible-lint ansible-galaxy ansible-playbook python fleetbgp; do
  [[ -x $VENV/$tool ]] || { echo "lint-collection: $VENV/$tool missing (make setup-venv)" >&2; exit 2; }
done

SCRATCH="$(mktemp -d /tmp/fleet-bgp-lint.XXXXXX)"
cleanup() { jobs -p | xargs -r kill 2>/dev/null; rm -rf "$SCRATCH"; }
trap cleanup EXIT
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=false
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export PATH="$VENV:$PATH"
HAVE_ANALYZE=0
command -v systemd-analyze >/dev/null && HAVE_ANALYZE=1

failed=()
declare -A JOBS=()   # name -> pid of a check running in the background
n=0

# check NAME CMD...: run in the foreground; report.  bg NAME CMD...: start in the background.
check() {
  local name=$1; shift
  local out="$SCRATCH/out.$((n += 1))"
  if "$@" >"$out" 2>&1; then
    (( VERBOSE )) && cat "$out"
    printf '   ok      %s\n' "$name"
    return 0
  fi
  cat "$out"
  printf '   FAILED  %s\n' "$name"
  failed+=("$name")
  return 1
}
bg() {
  local name=$1; shift
  local out="$SCRATCH/bg.$((n += 1))"
  ( "$@" >"$out" 2>&1 ) &
  JOBS[$name]="$!:$out"
}
collect() {  # wait for every background check
  local name pid out
  for name in "${!JOBS[@]}"; do
    pid=${JOBS[$name]%%:*} out=${JOBS[$name]#*:}
    if wait "$pid"; then
      (( VERBOSE )) && cat "$out"
      printf '   ok      %s\n' "$name"
    else
      cat "$out"
      printf '   FAILED  %s\n' "$name"
      failed+=("$name")
    fi
  done
  JOBS=()
}

# fleet.bgp importable from this checkout, for ansible-lint's syntax checks (roles and modules by FQCN).
CHECKOUT_COLLECTIONS="$SCRATCH/checkout"
mkdir -p "$CHECKOUT_COLLECTIONS/ansible_collections/fleet"
ln -s "$ROOT" "$CHECKOUT_COLLECTIONS/ansible_collections/fleet/bgp"

# 1, 3: in the background ---------------------------------------------------------------------------
bg "ansible-lint --profile production" env ANSIBLE_COLLECTIONS_PATH="$CHECKOUT_COLLECTIONS" \
  ansible-lint --profile production --nocolor
if (( HAVE_ANALYZE )); then
  for vars in roles/agent/tests/vars/*.yml; do
    name=$(basename "$vars" .yml)
    bg "render + validate + analyze: $name" ansible-playbook roles/agent/tests/render.yml -i "$name," \
      -e "fleet_bgp_test_fleetbgp=$VENV/fleetbgp"
  done
else
  echo "   skipped render checks: no systemd-analyze on this machine"
fi

# 2 -------------------------------------------------------------------------------------------------
check "role variables documented (defaults vs meta/argument_specs.yml)" python - <<'EOF'
import os, sys, yaml
bad = []
for role in sorted(r for r in os.listdir("roles") if os.path.exists(f"roles/{r}/meta/argument_specs.yml")):
    defaults = yaml.safe_load(open(f"roles/{role}/defaults/main.yml")) or {}
    spec = yaml.safe_load(open(f"roles/{role}/meta/argument_specs.yml"))["argument_specs"]["main"]["options"]
    for name, value in defaults.items():
        if name not in spec:
            bad.append(f"roles/{role}: {name} is in defaults/main.yml, not in meta/argument_specs.yml")
        elif "{{" not in str(value) and spec[name].get("default") != value:
            bad.append(f"roles/{role}: {name}: default {value!r} in defaults/main.yml, "
                       f"{spec[name].get('default')!r} in the spec")
    for name, opt in spec.items():
        if not opt.get("description"):
            bad.append(f"roles/{role}: {name} has no description")
        if name not in defaults and not opt.get("required"):
            bad.append(f"roles/{role}: {name} is neither required nor in defaults/main.yml")
        if name in defaults and opt.get("required"):
            bad.append(f"roles/{role}: {name} is required, but defaults/main.yml gives it a value")
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF

# 4 -------------------------------------------------------------------------------------------------
BUILD="$SCRATCH/build"
mkdir -p "$BUILD"
TARBALL=""
if check "ansible-galaxy collection build" ansible-galaxy collection build --output-path "$BUILD" "$ROOT"; then
  TARBALL=$(ls "$BUILD"/fleet-bgp-*.tar.gz)
  tar tzf "$TARBALL" | sed 's#/$##' | sort >"$SCRATCH/contents"
  check "tarball contents ($(basename "$TARBALL"): $(wc -l <"$SCRATCH/contents") entries, $(( $(stat -c %s "$TARBALL") / 1024 )) KiB)" \
    python - "$SCRATCH/contents" <<'EOF'
import fnmatch, sys
names = set(open(sys.argv[1]).read().split())
must = ["MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml",
        "agent/pyproject.toml", "agent/README.md", "agent/src/fleetbgp/__init__.py",
        "agent/src/fleetbgp/cli.py", "roles/agent/tasks/main.yml", "roles/agent/meta/argument_specs.yml",
        "roles/agent/templates/fleetbgp.service.j2", "playbooks/site.yml", "playbooks/status.yml",
        "scripts/fleetbgp-rollout"]
never = [".venv*", ".git*", ".ci*", ".ansible-lint", "lab*", "bench*", "extensions*", "scripts/*.sh", "scripts/*.py",
         "Makefile",
         "tests/agent*", "tests/interop*", "tests/e2e*", "tests/output*", "*__pycache__*", "*.pyc",
         "*.egg-info*", "*.whl", "*.tar.gz", "*.tar", "agent/build*", "agent/dist*", ".hypothesis*",
         ".pytest_cache*", ".ruff_cache*"]
bad = [f"missing: {m}" for m in must if m not in names]
bad += sorted(f"should not ship: {n}" for n in names for p in never if fnmatch.fnmatch(n, p))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
fi

# 5 -------------------------------------------------------------------------------------------------
if [[ -n $TARBALL ]]; then
  INSTALLED="$SCRATCH/installed"
  COLL="$INSTALLED/ansible_collections/fleet/bgp"
  if check "ansible-galaxy collection install (the tarball, offline)" \
      ansible-galaxy collection install --offline --no-deps -p "$INSTALLED" "$TARBALL"; then
    for pb in $(cd "$ROOT/playbooks" && ls *.yml | sed 's/\.yml$//'); do
      bg "installed: ansible-playbook fleet.bgp.$pb --syntax-check" env ANSIBLE_COLLECTIONS_PATH="$INSTALLED" \
        ansible-playbook "fleet.bgp.$pb" --syntax-check -i localhost,
    done
    bg "installed: scripts/fleetbgp-rollout --help (executable)" "$COLL/scripts/fleetbgp-rollout" --help
    # The installed copy of the render test reads the agent's version through the role's own
    # fleet_bgp_agent_source ({{ role_path }}/../../agent), i.e. inside the installed collection.
    bg "installed: the role finds the agent source in the installed collection" \
      env ANSIBLE_COLLECTIONS_PATH="$INSTALLED" \
      ansible-playbook "$COLL/roles/agent/tests/render.yml" -i anycast, --tags never
  fi
fi

collect

if (( ${#failed[@]} )); then
  printf 'lint-collection: FAILED:\n' >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint-collection: all checks passed"
