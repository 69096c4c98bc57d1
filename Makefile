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
RULES       := scripts/test-alert-rules.sh
E2E         := scripts/run-pytest.sh --root tests/e2e --durations=30 $(PYTEST_ARGS)

.PHONY: help setup setup-system setup-venv lint lint-fix unit fuzz parity interop collection lint-collection module-docs molecule rules e2e images test demo demo-down demo-netns bench clean distclean

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

collection: setup-venv ## the collection's tests: ansible-test sanity and the module unit tests
	@$(COLLECTION)

lint-collection: setup-venv ## ansible-lint (production), role specs, template checks, galaxy build + installed-collection syntax check
	@$(LINT_COLLECTION)

module-docs: setup-venv ## regenerate docs/modules/*.md from the modules' DOCUMENTATION/EXAMPLES/RETURN
	$(PY) scripts/module-docs.py

rules: setup ## Prometheus alert rules: promtool check rules + promtool test rules (tests/monitoring)
	@$(RULES)

e2e: setup ## end-to-end tests on a second lab fleet: rollout, restore, drain (tests/e2e, root)
	@$(E2E)

# The README's "Using the collection on a real fleet" section run as written (tests/e2e/test_real_fleet.py):
# stock Debian 12 cloud-image containers (lab/images/build-cloud.sh), SSH as `deploy` + sudo, a BIRD router.
# `make e2e` (and so `make test`) runs it too; this target runs it alone.
.PHONY: real-fleet
real-fleet: setup ## the README's real-fleet path over SSH on stock Debian 12 containers (tests/e2e/test_real_fleet.py, root)
	@scripts/run-pytest.sh --root tests/e2e -k test_real_fleet --durations=5 -s $(PYTEST_ARGS)

test: setup ## everything CI runs: lint, unit, parity, interop, collection, rules, molecule, e2e (all run; fails if any failed)
	@failed=(); \
	echo "== lint";       { $(LINT); }  || failed+=(lint); \
	echo "== unit";       { $(UNIT) && $(LAB_UNIT) && $(FUZZ_BOUNDED); } || failed+=(unit); \
	echo "== parity";     $(PARITY)     || failed+=(parity); \
	echo "== interop";    $(INTEROP)    || failed+=(interop); \
	echo "== collection"; $(COLLECTION) || failed+=(collection); \
	echo "== lint-collection"; $(LINT_COLLECTION) || failed+=(lint-collection); \
	echo "== rules";      $(RULES)      || failed+=(rules); \
	echo "== molecule";   $(MOLECULE)   || failed+=(molecule); \
	echo "== e2e";        $(E2E)        || failed+=(e2e); \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}" >&2; exit 1; fi; \
	echo "make test: lint, unit, parity, interop, collection, lint-collection, rules, molecule and e2e all passed"

demo: setup ## the lab fleet: fleet.bgp.site + fleet.bgp.status on 3 servers and a BIRD 2 router (podman, root)
	@lab/fleet/demo.sh

demo-down: ## remove the lab fleet that `make demo` leaves running (containers, network; images stay)
	@lab/fleet/lab.sh down

demo-netns: setup ## the agent alone: two namespaces, BIRD as router, `fleetbgp run` announcing an anycast /32 (root)
	@lab/demo/run.sh

images: ## container images for Molecule and the lab (lab/images/build.sh; a no-op when up to date) (root)
	@lab/images/build.sh

molecule: setup ## every Molecule scenario (agent, firewall, host, monitoring) on systemd containers (root)
	@$(MOLECULE)

# Every bench in BENCH runs even when one fails (its exit code is kept for the end); BASELINE=REF
# adds fleetbgp from git revision REF to each, for before/after in one run (bench/README.md).
# GoBGP's feed program needs grpcio: a venv of its own (not the project's), made once; without it
# the API bench skips GoBGP. The BFD bench is not in the default list (issue 17: 100 BFD sessions,
# CPU at rest and a 1M-line burst, about 2 minutes): make bench BENCH=bench/bfd_sessions.py
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
