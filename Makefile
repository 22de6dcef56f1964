# sagalab: `make demo` and `make test` work from a fresh Debian 12 machine.
MAKEFLAGS += --no-print-directory
PRESET ?= dev
BUILD_DIR := $(if $(filter dev,$(PRESET)),build,build-$(PRESET))

.PHONY: all deps configure build test demo asan release clean soak fuzz fuzz-build fuzz-test mutants compose-test

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

test: build
	@ctest --preset $(PRESET)
ifeq ($(PRESET),dev)
	@$(MAKE) --no-print-directory fuzz-test
endif

# libFuzzer targets, built with clang in build-fuzz/.
fuzz-build: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

fuzz-test: fuzz-build
	@ctest --preset fuzz

FUZZ_SECONDS ?= 300
fuzz: fuzz-build
	@for t in service_request fault_rule scenario saga_log; do \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p build-fuzz/corpus-$$t; \
	  build-fuzz/bin/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix=build-fuzz/fuzz-crash-$$t- build-fuzz/corpus-$$t fuzz/corpus/$$t || exit 1; \
	done

demo: configure
	@bash scripts/build-quiet.sh $(PRESET) $(BUILD_DIR)
	@bash scripts/demo.sh $(BUILD_DIR)/bin

# Mutation testing: every patch in tests/mutants/ built in a copy of the tree and judged
# by the simulator and the unit tests (SCENARIOS=1 adds the scenario suite).
mutants: deps
	@bash scripts/mutants.sh

# The Docker image and the compose stack on a real Docker engine (its own dockerd if none runs).
compose-test: build
	@bash scripts/compose-test.sh build/bin/sagactl

asan:
	@$(MAKE) --no-print-directory test PRESET=asan

release:
	@$(MAKE) --no-print-directory build PRESET=release

clean:
	rm -rf build build-asan build-release build-fuzz .sagalab .sagalab-demo
	-git worktree remove --force build-mutants/tree 2>/dev/null; rm -rf build-mutants

soak: build
	@SAGALAB_SOAK_SECONDS=$${SOAK_SECONDS:-300} build/bin/integration_tests "[soak]"
