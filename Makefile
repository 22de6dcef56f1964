# sagalab: `make demo` and `make test` work from a fresh Debian 12 machine.
PRESET ?= dev
BUILD_DIR := $(if $(filter dev,$(PRESET)),build,build-$(PRESET))

.PHONY: all deps configure build test demo asan release clean soak fuzz

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

test: build
	@ctest --preset $(PRESET)

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)/bin

asan:
	@$(MAKE) --no-print-directory test PRESET=asan

release:
	@$(MAKE) --no-print-directory build PRESET=release

clean:
	rm -rf build build-asan build-release .sagalab .sagalab-demo

soak: build
	@SAGALAB_SOAK_SECONDS=$${SOAK_SECONDS:-300} build/bin/integration_tests "[soak]"
