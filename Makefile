# PlanetLab in Go. The two commands a newcomer needs on a fresh Debian machine:
#
#   make demo   install what is missing, build pl, run an emulated planet (pl dev)
#   make test   install what is missing, lint, and run the whole test suite
#
# pl dev and most tests need root (network namespaces, cgroups, runc).
# Options: make demo NODES=16 DEV_FLAGS="--wan 10.98.0.0/16 -v"; make bench-planet BENCH_FLAGS=--trace

SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -ec
GO          ?= go
BIN         := bin/pl
NODES       ?= 4
DEV_FLAGS   ?=
BENCH_FLAGS ?=
# Packages run in parallel; root integration tests use unique names, so they
# do not collide. Two at a time fits two cores.
TEST_P      ?= 2
TEST_TIMEOUT ?= 30m
TEST_LOG    ?= $(or $(TMPDIR),/tmp)/pl-test.log
FUZZTIME    ?= 10s

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test build deps test-deps vet lint fuzz bench-planet down clean

demo: deps build
	@echo "make demo: starting pl dev with $(NODES) nodes (Ctrl-C stops it and cleans up)"
	$(SUDO) ./$(BIN) dev --nodes $(NODES) $(DEV_FLAGS)

# The end-to-end test (internal/dev) runs alone after the rest, so it can
# require the host to be exactly as before (PL_E2E_EXCLUSIVE=1).
E2E_PKG := ./internal/dev

test: test-deps lint
	@echo "make test: go test -race (log: $(TEST_LOG))"
	@status=0; : > $(TEST_LOG); \
	run() { $(SUDO) env "PATH=$$PATH" "GOCACHE=$$($(GO) env GOCACHE)" "GOMODCACHE=$$($(GO) env GOMODCACHE)" "$$@"; }; \
	pkgs=$$($(GO) list ./... | grep -v '/internal/dev$$'); \
	run $(GO) test -race -count=1 -p $(TEST_P) -timeout $(TEST_TIMEOUT) $$pkgs 2>&1 | tee -a $(TEST_LOG) || status=$$?; \
	run PL_E2E_EXCLUSIVE=1 $(GO) test -race -count=1 -p 1 -timeout $(TEST_TIMEOUT) -v $(E2E_PKG) 2>&1 | tee -a $(TEST_LOG) || status=$$?; \
	echo; echo "=== Go test summary ==="; \
	grep -E '^(ok|FAIL|--- FAIL|panic:|\?)' $(TEST_LOG) || true; \
	echo "($$(grep -c '^?' $(TEST_LOG)) packages without tests)"; \
	echo "packages: $$(grep -c '^ok' $(TEST_LOG)) passed, $$(grep -cE '^FAIL\s' $(TEST_LOG)) failed"; \
	exit $$status

# Static (the examples too: their servers run in slivers); names each package as it compiles (a cold build takes minutes).
build:
	GO=$(GO) ./scripts/build.sh $(BIN)
	@echo "build: bin/traceroutesvr bin/tracerouteclnt (examples/traceroute, docs/tutorial.md)"
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./examples/traceroute/cmd/...

deps:
	./scripts/deps.sh

test-deps:
	./scripts/deps.sh test

vet:
	$(GO) vet ./...

# vet, staticcheck (pinned in go.mod as a tool) and gofmt must all be clean.
lint: vet
	$(GO) tool staticcheck ./...
	@unformatted=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

# A short run of every fuzz target (their seed corpora already run in `make test`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench-planet: build
	$(SUDO) ./$(BIN) bench planet --nodes 16 --reps 20 $(BENCH_FLAGS)

down: build
	$(SUDO) ./$(BIN) dev down --all

clean:
	rm -rf bin
