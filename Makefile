# fleet.bgp developer entry points. `make help` lists them; README.md explains them.
# Every target that needs tools first runs the idempotent setup (quick when all is installed).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
LINT_PATHS  := $(wildcard agent tests bench lab plugins scripts roles)
PYTEST_ARGS ?=
BENCH       ?= bench/static_routes.py bench/api_routes.py
BENCH_ARGS  ?=
BASELINE    ?=

RUFF        := $(VENV)/bin/ruff check $(LINT_PATHS)
# The agent's structure checks (agent/pyproject.toml): types, then import layering.
MYPY        := $(VENV)/bin/mypy --config-file agent/pyproject.toml
IMPORTS     := PYTHONPATH=agent/src $(VENV)/bin/lint-imports --no-cache --no-logo agent/pyproject.toml
LINT        := $(RUFF) && $(MYPY) && $(IMPORTS)
UNIT        := scripts/run-pytest.sh tests/agent $(PYTEST_ARGS)
LAB_UNIT    := scripts/run-pytest.sh tests/lab $(PYTEST_ARGS)
FUZZ_BOUNDED := scripts/run-pytest.sh tests/fuzz $(PYTEST_ARGS)
PARITY      := scripts/run-pytest.sh tests/parity $(PYTEST_ARGS)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_JOBS   ?= 1
INTEROP     := scripts/run-pytest.sh --root tests/interop --durations=15 $(PYTEST_ARGS)
COLLECTION  := scripts/test-collection.sh
LINT_COLLECTION := scripts/lint-collection.sh
MOLECULE    := scripts/test-molecule.sh
# `make test` runs these; `fresh` and `keepalived` (minutes each) run in `make matrix` (and `make molecule`)
MOLECULE_TEST := MOLECULE_SCENARIOS="agent firewall host monitoring" scripts/test-molecule.sh
RULES       := scripts/test-alert-rules.sh
E2E         := scripts/run-pytest.sh --root tests/e2e --durations=30 --ignore=tests/e2e/test_real_fleet.py $(PYTEST_ARGS)
RELEASE_CHECK := scripts/release-check.sh
MATRIX      := scripts/test-matrix.sh

.PHONY: release-check release role-docs
.PHONY: help setup setup-system setup-venv lint lint-fix unit fuzz parity interop collection lint-collection module-docs molecule rules e2e images matrix test demo demo-down demo-netns bench clean distclean ee ee-image

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: setup-system setup-venv ## install everything: Debian packages (root) and the .venv

setup-system: ## apt: bird2 gobgpd frr tshark iproute2 nftables; keep the packaged daemons stopped
	@scripts/setup-system.sh

setup-venv: ## .venv with dev dependencies and the agent (editable); reinstalls only on change
	@scripts/setup-venv.sh

lint: setup-venv ## ruff over agent/ tests/ bench/ lab/, mypy --strict over the agent, import layering
	$(RUFF)
	$(MYPY)
	$(IMPORTS)

lint-fix: setup-venv ## let ruff fix what it can (imports, pyupgrade, ...), then show the rest
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

unit: setup-venv ## unit tests: pytest tests/agent, tests/lab (load client, web service), tests/fuzz (bounded fuzz run)
	@$(UNIT) && $(LAB_UNIT) && $(FUZZ_BOUNDED)

parity: setup-venv ## ExaBGP parity: its example configs, its qa/encoding tests, and a differential run against ExaBGP 5.0.15 (tests/parity)
	@$(PARITY)

fuzz: setup-venv ## coverage-guided fuzzing (atheris): FUZZ_SECONDS per target [FUZZ_TARGETS="a b"] [FUZZ_JOBS=2]
	$(PY) tests/fuzz/fuzz.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

interop: setup ## interop tests against BIRD, GoBGP, ExaBGP: pytest tests/interop (root)
	@$(INTEROP)

collection: setup-venv ## on the built+installed tarball: ansible-test sanity (all tests), ansible-test units, antsibull-docs lint
	@$(COLLECTION)

lint-collection: setup-venv ## ansible-lint (production), role specs, template checks, galaxy build + installed-collection syntax check
	@$(LINT_COLLECTION)

module-docs: setup-venv ## regenerate docs/modules/*.md from the modules' DOCUMENTATION/EXAMPLES/RETURN
	$(PY) scripts/module-docs.py

# Releases (docs/dev/releasing.md): release-check is part of `make test`; release prepares VERSION
# (galaxy.yml, the agent's __version__, README, changelog) and commits nothing unless COMMIT=1.
release-check: setup-venv ## fragments for every shipped change since the last release tag, changelog lint, versions, CHANGELOG.md up to date
	@$(RELEASE_CHECK)

release: setup-venv ## prepare release VERSION=X.Y.Z [DATE=YYYY-MM-DD] [COMMIT=1: commit and tag vX.Y.Z]
	@scripts/release.sh $(VERSION) $(if $(DATE),--date $(DATE)) $(if $(COMMIT),--commit)

role-docs: setup-venv ## regenerate the Variables section of docs/roles/*.md from roles/*/meta/argument_specs.yml
	$(PY) scripts/role-docs.py

rules: setup ## Prometheus alert rules: promtool check rules + promtool test rules (tests/monitoring)
	@$(RULES)

e2e: setup ## end-to-end tests on a second lab fleet: rollout, restore, drain (tests/e2e, root)
	@$(E2E)

# The README's "Using the collection on a real fleet" section run as written (tests/e2e/test_real_fleet.py):
# stock Debian 12 cloud-image containers (lab/images/build-cloud.sh), SSH as `deploy` + sudo, a BIRD router.
# Minutes (3 hosts deployed from nothing): not in `make e2e`/`make test`; CI runs it after `make test`
# when it fits (.ci/run), before `make matrix`.
.PHONY: real-fleet
real-fleet: setup ## the README's real-fleet path over SSH on stock Debian 12 containers (tests/e2e/test_real_fleet.py, root)
	@scripts/run-pytest.sh --root tests/e2e -k test_real_fleet --durations=5 -s $(PYTEST_ARGS)

# Two groups of stages run side by side on CI's two cores: the pytest suites (unit, lab, bounded
# fuzz, parity) and the collection's checks (ansible-test, ansible-lint, promtool, antsibull-changelog),
# both CPU-bound and neither timing-sensitive; the pytest group's output is shown when it ends.
# Interop, Molecule and e2e measure time and traffic: they run alone.
test: setup ## everything CI runs: lint, unit, parity, interop, collection, rules, release-check, molecule, e2e (all run; fails if any failed)
	@failed=(); logs=$$(mktemp -d /tmp/fleetbgp-make-test.XXXXXX); \
	echo "== lint";       { $(LINT); }  || failed+=(lint); \
	echo "== unit and parity: running beside the collection's checks (output below when they end)"; \
	( { $(UNIT) && $(LAB_UNIT) && $(FUZZ_BOUNDED); } >$$logs/unit 2>&1 || echo unit >>$$logs/failed; \
	  $(PARITY) >$$logs/parity 2>&1 || echo parity >>$$logs/failed ) </dev/null & pytests=$$!; \
	echo "== collection"; $(COLLECTION) || failed+=(collection); \
	echo "== lint-collection"; $(LINT_COLLECTION) || failed+=(lint-collection); \
	echo "== rules";      $(RULES)      || failed+=(rules); \
	echo "== release-check"; $(RELEASE_CHECK) || failed+=(release-check); \
	wait $$pytests || true; \
	echo "== unit"; cat $$logs/unit; echo "== parity"; cat $$logs/parity; \
	if [[ -s $$logs/failed ]]; then failed+=($$(cat $$logs/failed)); fi; rm -rf $$logs; \
	echo "== interop";    $(INTEROP)    || failed+=(interop); \
	echo "== molecule";   $(MOLECULE_TEST) || failed+=(molecule); \
	echo "== e2e";        $(E2E)        || failed+=(e2e); \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}" >&2; exit 1; fi; \
	echo "make test: lint, unit, parity, interop, collection, lint-collection, rules, release-check, molecule and e2e all passed"

demo: setup ## the lab fleet: fleet.bgp.site + fleet.bgp.status on 3 servers and a BIRD 2 router (podman, root)
	@lab/fleet/demo.sh

demo-down: ## remove the lab fleet that `make demo` leaves running (containers, network; images stay)
	@lab/fleet/lab.sh down

demo-netns: setup ## the agent alone: two namespaces, BIRD as router, `fleetbgp run` announcing an anycast /32 (root)
	@lab/demo/run.sh

images: ## container images for Molecule and the lab (lab/images/build.sh; a no-op when up to date) (root)
	@lab/images/build.sh

molecule: setup ## every Molecule scenario in extensions/molecule (agent, firewall, fresh, host, keepalived, monitoring) on systemd containers (root)
	@$(MOLECULE)

# Not part of `make test` (time): CI runs it after `make test`, each step only if it fits in CI's 90 minutes (.ci/run).
matrix: setup ## support matrix: ansible-core 2.16-2.19 (own venvs in .matrix/: sanity, units, syntax), Molecule on 2.16 and 2.19, Debian 12 and 13 (root)
	@$(MATRIX)

# Every bench in BENCH runs even when one fails (its exit code is kept for the end); BASELINE=REF
# adds fleetbgp from git revision REF to each, for before/after in one run (bench/README.md).
# GoBGP's feed program needs grpcio: a venv of its own (not the project's), made once; without it
# the API bench skips GoBGP. The BFD bench is not in the default list (issue 17: 100 BFD sessions,
# CPU at rest and a 1M-line burst, about 2 minutes): make bench BENCH=bench/bfd_sessions.py
# Nor is the capacity bench (docs/operations/capacity.md: memory and CPU per session, per route,
# per API program at 1, 200 and 1,000 sessions, 10 to 20 minutes): make bench BENCH=bench/capacity.py
BENCH_GRPC_VENV := bench/results/tmp/grpc-venv
bench: setup ## load benches (static 10k/100k, API 100k/1M; BENCH=, BENCH_ARGS=, BASELINE=REF): numbers, not pass/fail
	@if [[ ! -x $(BENCH_GRPC_VENV)/bin/python ]]; then \
	    $(PY) -m venv $(BENCH_GRPC_VENV) && \
	    $(BENCH_GRPC_VENV)/bin/pip install -q -r bench/requirements-grpc.txt || \
	    { echo "bench: no gRPC venv, the API bench will skip GoBGP"; rm -rf $(BENCH_GRPC_VENV); }; fi
	@rc=0; for b in $(BENCH); do \
	    BENCH_GRPC_PYTHON=$${BENCH_GRPC_PYTHON:-$(abspath $(BENCH_GRPC_VENV))/bin/python} \
	    PYTHONPATH=lab$${PYTHONPATH:+:$$PYTHONPATH} $(PY) $$b $(BENCH_ARGS) \
	        $(if $(BASELINE),--baseline $(BASELINE)) || rc=1; \
	done; exit $$rc

clean: ## remove caches and build artefacts (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .mypy_cache .hypothesis .ansible agent/build agent/dist bench/results/tmp
	find . -path ./.venv -prune -o -path ./.git -prune -o \
	    \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove the .venv
	rm -rf $(VENV) .setup.lock

# --- execution environment (AWX / Automation Platform) ------------------------------------------------
# Not part of `make test` (minutes: image build + a lab session). docs/operations/awx.md.
ee-image: setup-venv ## build the execution environment image localhost/fleetbgp-ee:latest (ansible-builder + podman, root; no-op when up to date)
	@scripts/build-ee.sh

ee: ee-image ## build the EE image, then run fleet.bgp.status and a --check rollout through it with ansible-runner on the e2e lab (tests/ee, root)
	@scripts/run-pytest.sh --root tests/ee -rP --durations=5 $(PYTEST_ARGS)
