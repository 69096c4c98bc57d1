#!/usr/bin/env bash
# release.sh VERSION [--date YYYY-MM-DD] [--commit]
#
# Prepares release VERSION of the collection in the working tree (docs/dev/releasing.md):
#   1. refuses unless the tree is clean, VERSION is X.Y.Z and newer than galaxy.yml's version, there
#      are fragments in changelogs/fragments/ and one of them has a release_summary;
#   2. sets the version everywhere it must follow: galaxy.yml, the agent's __version__
#      (agent/src/fleetbgp/__init__.py: the agent role reinstalls the agent on a host only when the
#      installed version differs from the bundled one, so every release bumps it), and the tarball
#      names in README.md;
#   3. `antsibull-changelog release`: the fragments become the VERSION entry of
#      changelogs/changelog.yaml (new modules and roles are found by their version_added) and are
#      deleted; CHANGELOG.md is regenerated;
#   4. runs scripts/release-check.sh --no-fragments (lint, versions, CHANGELOG.md).
# Without --commit it commits nothing and prints the git commands; with --commit it commits
# ("fleet.bgp VERSION") and makes the annotated tag vVERSION. Nothing is pushed or built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=${VENV:-.venv}
PY="$ROOT/$VENV/bin/python"
ACL="$ROOT/$VENV/bin/antsibull-changelog"
export PATH="$ROOT/$VENV/bin:$PATH"  # antsibull-changelog runs ansible-doc to find the new modules and roles

usage() { echo "usage: release.sh VERSION [--date YYYY-MM-DD] [--commit]" >&2; exit 2; }
die() { echo "release: $*" >&2; exit 1; }

version=${1:-}
[[ -n "$version" && "$version" != -* ]] || usage
shift
date_args=()
commit=0
while (($#)); do
    case "$1" in
        --date) date_args=(--date "${2:?--date needs YYYY-MM-DD}"); shift 2 ;;
        --commit) commit=1; shift ;;
        *) usage ;;
    esac
done

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "'$version' is not a version X.Y.Z"
[[ -x "$ACL" ]] || die "$ACL is missing: run 'make setup-venv' first"
[[ -z "$(git status --porcelain --untracked-files=no)" ]] \
    || die "the working tree has uncommitted changes; commit or stash them first:
$(git status --short --untracked-files=no)"

current=$("$PY" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
"$PY" - "$current" "$version" <<'EOF' || die "$version is not newer than galaxy.yml's version $current"
import sys
old, new = (tuple(int(x) for x in v.split(".")) for v in sys.argv[1:])
sys.exit(0 if new > old else 1)
EOF
git rev-parse -q --verify "refs/tags/v$version" >/dev/null && die "tag v$version exists already"

mapfile -t fragments < <(find changelogs/fragments -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
((${#fragments[@]})) || die "changelogs/fragments/ is empty: nothing to release"
grep -lq '^release_summary:' "${fragments[@]}" || die "no fragment has a release_summary. Add one, e.g.
changelogs/fragments/$version.yml:
    release_summary: >-
      One paragraph for the operator: what this release brings, what to read before upgrading."
"$ACL" lint || die "antsibull-changelog lint failed (above): fix the fragments first"

echo "== fleet.bgp $current -> $version (${#fragments[@]} fragments)"
trap 'echo "release: FAILED half-way; undo with: git checkout -- . && git clean -n changelogs  (then -f)" >&2' ERR
# galaxy.yml: only the top-level version line
sed -i -E "s/^version: .*/version: $version/" galaxy.yml
sed -i -E "s/^__version__ = \"[^\"]+\"$/__version__ = \"$version\"/" agent/src/fleetbgp/__init__.py
sed -i -E "s/fleet-bgp-[0-9]+\.[0-9]+\.[0-9]+\.tar\.gz/fleet-bgp-$version.tar.gz/g" README.md

"$ACL" release --version "$version" "${date_args[@]}"
# the plugin cache antsibull-changelog leaves behind is not part of the release
rm -f changelogs/.plugin-cache.yaml

scripts/release-check.sh --no-fragments

git status --short
if ((commit)); then
    git add -A galaxy.yml agent/src/fleetbgp/__init__.py README.md CHANGELOG.md changelogs
    git commit -q -m "fleet.bgp $version"
    git tag -a "v$version" -m "fleet.bgp $version"
    echo "release: committed $(git rev-parse --short HEAD) and tagged v$version"
else
    cat <<EOF
release: $version prepared, nothing committed. Check the diff (git diff; CHANGELOG.md), then:
    git add -A galaxy.yml agent/src/fleetbgp/__init__.py README.md CHANGELOG.md changelogs
    git commit -m "fleet.bgp $version" && git tag -a v$version -m "fleet.bgp $version"
EOF
fi
echo "release: after the release, freeze its contents for the version_added test:
    .venv/bin/python tests/unit/plugins/test_version_added.py --freeze $version"
