# fwslot: build, demo and tests. Tests and the demo need root: they create
# network namespaces and nftables objects inside them, never on the host.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT ?= $(dir $(GO))gofmt
PKGS := ./...

.PHONY: all build deps bench-deps demo test check bench bench-quick clean difftest

all: build

build:
	$(GO) build -o bin/fwslot ./cmd/fwslot

# deps installs the tools fwslot drives (nft, ip) where they are missing.
deps:
	@command -v nft >/dev/null && command -v ip >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2)

demo: deps build
	./bin/fwslot demo

# check: formatting and vet, no root needed.
check:
	@out=$$($(GOFMT) -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# test: the whole suite, with the race detector, as root on the real kernel.
test: deps check
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# bench-deps adds the tools the benchmarks compare fwslot with.
bench-deps: deps
	@command -v iptables-restore >/dev/null && command -v ipset >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables ipset)

# Benchmarks against nft -f, iptables-restore and ipset, in namespaces they
# create and remove (docs/BENCHMARKS.md). bench-quick: under 2 minutes.
bench-quick: bench-deps build
	$(GO) run ./bench/cmd/fwslot-bench -quick

bench: bench-deps build
	$(GO) run ./bench/cmd/fwslot-bench

clean:
	rm -rf bin

# difftest: the differential tester. Every example ruleset under
# testdata/examples (with probes and a topology) gets its probes and
# DIFFTEST_N generated packets, sent as probes through fwslot's twin and as
# real packets through a real router namespace loaded with `nft -f`; every
# fate must agree. Root; namespaces only, never the host's.
DIFFTEST_N ?= 200
difftest: deps
	FWSLOT_DIFFTEST_N=$(DIFFTEST_N) $(GO) test -count=1 -timeout 10m -run 'TestDifferential' -v ./probe/
