#!/usr/bin/env bash
# release-check.sh [--since REF | --no-fragments]
#
# Fails when the collection is not releasable as it stands (docs/dev/releasing.md). Four checks, all
# run, each reported; exit 1 if any failed:
#
#  1. fragments  Every change to what ships has a changelog fragment: if a file under plugins/,
#                roles/, playbooks/, meta/, agent/src/ or galaxy.yml differs between the last release
#                (tag v<newest release in changelogs/changelog.yaml>; --since REF instead, e.g. a
#                branch's base) and the working tree (committed or not, untracked files included),
#                at least one file must have been added to changelogs/fragments/ since then. A
#                fragment with only `trivial:` counts (for changes users do not see).
#                Without the tag (a clone without tags) the release commit is the one that added the
#                release to changelog.yaml; a shallow clone that has neither skips this check and says so.
#  2. lint       `antsibull-changelog lint` (every fragment) and `lint-changelog-yaml` (changelog.yaml).
#  3. versions   galaxy.yml's version == the newest release in changelog.yaml == the agent's
#                __version__ (agent/src/fleetbgp/__init__.py: the agent role reinstalls only when
#                the installed version differs from the bundled one).
#  4. changelog  CHANGELOG.md is what `antsibull-changelog generate` makes of changelog.yaml.
#
# --no-fragments skips check 1 (scripts/release.sh, right after the fragments became the release).
# Takes a few seconds; part of `make test` (and `make release-check`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=${VENV:-.venv}
PY="$ROOT/$VENV/bin/python"
ACL="$ROOT/$VENV/bin/antsibull-changelog"
export PATH="$ROOT/$VENV/bin:$PATH"
SHIPPED=(plugins roles playbooks meta agent/src galaxy.yml)

since=""
fragments=1
case "${1:-}" in
    --since) since=${2:?--since needs a git ref}; shift 2 ;;
    --no-fragments) fragments=0 ;;
    "") ;;
    *) echo "usage: release-check.sh [--since REF | --no-fragments]" >&2; exit 2 ;;
esac

failed=()
fail() { printf 'release-check: %s: FAILED: %s\n' "$1" "$2" >&2; failed+=("$1"); }
ok() { printf 'release-check: %s: ok (%s)\n' "$1" "$2"; }

newest=$("$PY" - <<'EOF'
import re, yaml
releases = (yaml.safe_load(open("changelogs/changelog.yaml")) or {}).get("releases") or {}
key = lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:3])
print(max(releases, key=key) if releases else "")
EOF
)
galaxy=$("$PY" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
agent=$(sed -nE 's/^__version__ = "([^"]+)"$/\1/p' agent/src/fleetbgp/__init__.py)

# -- 1. fragments ----------------------------------------------------------------------------------
# The release commit: the tag v<newest>, or (a clone without tags) the commit that added the release
# to changelogs/changelog.yaml, which is the commit scripts/release.sh makes and tags.
base=${since:-v$newest}
if [[ -z "$since" && -n "$newest" ]] && ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
    found=$(git log --reverse --format=%H -S "  $newest:" -- changelogs/changelog.yaml 2>/dev/null | head -1)
    [[ -n "$found" ]] && { echo "release-check: fragments: no tag $base here; release $newest is commit ${found:0:12}"; base=$found; }
fi
if ((!fragments)); then
    echo "release-check: fragments: skipped (--no-fragments)"
elif [[ -z "$since" && -z "$newest" ]]; then
    fail fragments "changelogs/changelog.yaml has no release: nothing to compare with"
elif ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
    if [[ -n "$since" ]]; then
        fail fragments "no git ref '$since'"
    elif [[ "$(git rev-parse --is-shallow-repository 2>/dev/null)" == true ]]; then
        echo "release-check: fragments: SKIPPED: a shallow clone without the tag $base or the commit of release $newest (git fetch --tags --unshallow to check)"
    else
        fail fragments "neither a tag $base nor a commit that added $newest to changelogs/changelog.yaml:
    tag the release commit: git tag -a $base <commit> -m 'fleet.bgp $newest'; or compare with a ref: --since REF"
    fi
else
    changed=$({ git diff --name-only "$base" -- "${SHIPPED[@]}"
                git ls-files --others --exclude-standard -- "${SHIPPED[@]}"; } | sort -u)
    # fragments added since: files there now that the base's tree did not have
    added=$(comm -13 <(git ls-tree --name-only "$base" changelogs/fragments/ | sed 's|.*/||' | sort) \
                     <(find changelogs/fragments -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) \
                          -printf '%f\n' 2>/dev/null | sort))
    n_changed=$(grep -c . <<<"$changed" || true)
    n_added=$(grep -c . <<<"$added" || true)
    if ((n_changed > 0 && n_added == 0)); then
        listed=$(head -20 <<<"$changed" | sed 's/^/    /')
        ((n_changed > 20)) && listed+=$'\n'"    ... and $((n_changed - 20)) more"
        fail fragments "$n_changed shipped file(s) changed since $base but no fragment was added to changelogs/fragments/:
$listed
    Add one (docs/dev/releasing.md): changelogs/fragments/<topic>.yml with minor_changes/bugfixes/... or trivial."
    else
        ok fragments "since $base: $n_changed shipped file(s) changed, $n_added fragment(s) added"
    fi
fi

# -- 2. lint ---------------------------------------------------------------------------------------
if out=$("$ACL" lint 2>&1) && out2=$("$ACL" lint-changelog-yaml changelogs/changelog.yaml 2>&1); then
    ok lint "antsibull-changelog lint, lint-changelog-yaml"
else
    fail lint "$(printf '%s\n%s' "${out:-}" "${out2:-}" | grep -v -e CryptographyDeprecation -e 'from cryptography')"
fi

# -- 3. versions -----------------------------------------------------------------------------------
if [[ "$galaxy" == "$newest" && "$agent" == "$newest" ]]; then
    ok versions "galaxy.yml, changelog.yaml and the agent's __version__ say $newest"
else
    fail versions "galaxy.yml says '$galaxy', the newest release in changelogs/changelog.yaml is '$newest', \
agent/src/fleetbgp/__init__.py says '$agent': they must be equal (scripts/release.sh changes all three)"
fi

# -- 4. changelog ----------------------------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r galaxy.yml changelogs "$tmp/"
rm -rf "$tmp/changelogs/fragments" && mkdir "$tmp/changelogs/fragments"
if ! out=$(cd "$tmp" && "$ACL" generate 2>&1); then
    fail changelog "antsibull-changelog generate failed: $out"
elif ! diff -u CHANGELOG.md "$tmp/CHANGELOG.md" >"$tmp/diff" 2>&1; then
    fail changelog "CHANGELOG.md is not what antsibull-changelog generates from changelogs/changelog.yaml
    (it is generated: run .venv/bin/antsibull-changelog generate, never edit it by hand):
$(head -20 "$tmp/diff" | sed 's/^/    /')"
else
    ok changelog "CHANGELOG.md up to date"
fi

if ((${#failed[@]})); then
    echo "release-check: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "release-check: passed"
