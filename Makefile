# The two commands a newcomer needs: `make run` and `make test`.
GO ?= go
BIN := bin/chihaya

.PHONY: all build run test test-deps vet fmt-check unit fuzz fuzz-short soak e2e bench microbench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/chihaya

## run: build and start the tracker on example.json (Ctrl-C stops it)
run: build
	./$(BIN) -config example.json

## test: formatting, vet, every test under the race detector, and each
## fuzz target for a few seconds
test: test-deps fmt-check vet unit fuzz-short

## test-deps: install the servers and clients the tests run (as root on Debian)
test-deps:
	bash scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...
	# allocation and memory-level tests cannot run under -race (it makes
	# sync.Pool drop items, and its bookkeeping moves the heap)
	$(GO) test -count=1 -run 'Allocates|MemoryReturns' ./...

## fuzz: each fuzz target (every func Fuzz... in a _test.go file) for
## FUZZTIME, from its seed corpus in testdata/fuzz; what it finds is saved
## there, to become a regression case
FUZZTIME ?= 1m
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		names=$$($(GO) test -list '^Fuzz' $$dir) || { echo "$$names"; exit 1; }; \
		for name in $$(echo "$$names" | grep '^Fuzz'); do \
			echo "fuzz: $$dir $$name for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$dir; \
		done; \
	done

## fuzz-short: each fuzz target for a few seconds (part of make test)
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

## soak: the daemon under a steady mix of announces with churn, scrapes
## and bad requests for SOAK_DURATION (default 10m); prints its figures
SOAK_DURATION ?= 10m
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -count=1 -v -timeout 0 -run TestSoak ./soak/

## e2e: real BitTorrent clients (aria2, transmission-cli) share a file
## through the tracker on loopback; installs missing tools with apt-get
## (the suite builds ./cmd/chihaya itself, so it always tests this tree)
e2e:
	$(GO) test -tags e2e -count=1 -v -timeout 10m ./e2e/...

## bench: the announce benchmark on loopback (bench/README.md): builds and
## starts the tracker, loads PEERS peers over TORRENTS torrents, times DUR
## seconds of HTTP (keep-alive, close) and UDP announces ROUNDS times
bench:
	$(GO) run ./bench/run

## microbench: the hot path's Go benchmarks, with allocations
microbench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
