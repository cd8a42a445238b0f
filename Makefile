# credsync — make help lists the targets.
GO          ?= go
BIN         ?= bin/credsync
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.6.1
REDOCLY     ?= @redocly/cli@1.34.20
IMAGE       ?= credsync:dev
PKGS        := ./...
# What credsync version prints (make VERSION=v1.2.3 ... to set them).
VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE        := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

.DEFAULT_GOAL := help

.PHONY: help deps build test demo demo-serve lint lint-openapi fmt fuzz bench bench-smoke golden docker docker-smoke clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install what the tests need beyond Go and make (Debian/Ubuntu, root): PostgreSQL 15, MariaDB, Chromium, Docker, npm; idempotent
	bash .ci/deps

build: ## build the static binary into bin/credsync, stamped with version, commit and date
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/credsync

test: ## run go vet and every test with the race detector (what CI runs; installs nothing: make deps does)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

demo: ## fake vendors + gateway + one real rotation of each credential type; prints the table and exits
	$(GO) run ./cmd/credsync demo --once --listen 127.0.0.1:0

demo-serve: ## the demo, then keep the gateway on 127.0.0.1:8080; prints the export lines for the CLI and curl
	$(GO) run ./cmd/credsync demo

lint: ## gofmt, go vet, staticcheck and go mod tidy -diff must be clean; the binary must link no testing package
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@if $(GO) list -deps ./cmd/credsync | grep -qx testing; then echo "the shipped binary links package testing (go list -deps ./cmd/credsync): a package it imports, such as a vendor fake the demo runs, imports testing"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	$(GO) mod tidy -diff

lint-openapi: ## lint api/openapi.yaml with the pinned Redocly CLI from npm (needs npx: make deps); no error allowed
	cd api && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npm_config_update_notifier=false npm_config_fund=false \
		npx --yes $(REDOCLY) lint --format stylish openapi.yaml

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

fuzz: ## run every fuzz target for FUZZTIME each (default 20s); finds go to <pkg>/testdata/fuzz
	bash .ci/fuzz

bench: ## the benchmark harness (real binary, fake vendors, SQLite and PostgreSQL): rewrites BENCHMARKS.md, about 15 min (-views seeds 1M rotations per store)
	$(GO) run ./bench/cmd/credsync-bench -throughput -sequential -profile -inproc 10000 -views -out BENCHMARKS.md

bench-smoke: ## the harness in smoke mode (small N, checks it works, not how fast; what CI runs)
	$(GO) run ./bench/cmd/credsync-bench -quick -throughput -sequential -views >/dev/null

golden: ## rewrite the golden files in testdata/ from the current code (review the diff!)
	$(GO) test $(PKGS) -update

docker: build ## build the image credsync:dev FROM scratch around bin/credsync: no registry needed; it needs a running Docker engine (make docker-smoke starts one)
	BIN=$(BIN) IMAGE=$(IMAGE) VERSION=$(VERSION) COMMIT=$(COMMIT) DATE=$(DATE) bash .ci/docker-build

docker-smoke: ## start dockerd if none runs (root), make docker, then run the demo and a serve with its HEALTHCHECK in the image
	bash .ci/docker-smoke

clean: ## remove build output
	rm -rf bin
