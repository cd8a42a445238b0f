# credsync — make help lists the targets.
GO          ?= go
BIN         ?= bin/credsync
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.6.1
PKGS        := ./...

.DEFAULT_GOAL := help

.PHONY: help build test demo demo-serve lint fmt fuzz bench bench-smoke golden docker clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the static binary into bin/credsync
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/credsync

test: ## run go vet and every test with the race detector (what CI runs; installs Debian's chromium for the status page test if missing)
	@command -v chromium >/dev/null 2>&1 || bash .ci/install-chromium
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

demo: ## fake vendors + gateway + one real rotation of each credential type; prints the table and exits
	$(GO) run ./cmd/credsync demo --once --listen 127.0.0.1:0

demo-serve: ## the demo, then keep the gateway running on 127.0.0.1:8080 for curl
	$(GO) run ./cmd/credsync demo

lint: ## gofmt, go vet and staticcheck must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

fuzz: ## run every fuzz target for FUZZTIME each (default 20s); finds go to <pkg>/testdata/fuzz
	bash .ci/fuzz

bench: ## the benchmark harness (real binary, fake vendors, SQLite and PostgreSQL): rewrites BENCHMARKS.md, about 5 min
	$(GO) run ./bench/cmd/credsync-bench -throughput -sequential -profile -inproc 10000 -out BENCHMARKS.md

bench-smoke: ## the harness in smoke mode (small N, checks it works, not how fast; what CI runs)
	$(GO) run ./bench/cmd/credsync-bench -quick -throughput -sequential >/dev/null

golden: ## rewrite the golden files in testdata/ from the current code (review the diff!)
	$(GO) test $(PKGS) -update

docker: ## build the container image credsync:dev (needs a Docker engine)
	docker build -t credsync:dev .

clean: ## remove build output
	rm -rf bin
