# fwslot: build, demo and tests. Tests and the demo need root: they create
# network namespaces and nftables objects inside them, never on the host.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT ?= $(dir $(GO))gofmt
PKGS := ./...
# staticcheck is pinned (v0.8.2 is release 2026.2.2) so that the gate means
# the same on every machine.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build deps bench-deps demo test check fuzz bench bench-quick clean

all: build

build:
	$(GO) build -buildvcs=auto -o bin/fwslot ./cmd/fwslot

# deps installs what fwslot drives and what its tests need, where missing:
# nft, ip, iptables-restore-translate (load --from-iptables), sysctl (twins),
# systemd-analyze (the units' verify and security test).
deps:
	@command -v nft >/dev/null && command -v ip >/dev/null && \
		command -v iptables-restore-translate >/dev/null && command -v sysctl >/dev/null && \
		command -v systemd-analyze >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2 iptables procps systemd)

demo: deps build
	./bin/fwslot demo

# check is the gate: gofmt, vet, a tidy go.mod and staticcheck; no root
# needed. Any finding fails it.
check: $(STATICCHECK)
	@out=$$($(GOFMT) -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	$(STATICCHECK) $(PKGS)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# test: the whole suite, with the race detector, as root on the real kernel.
test: deps check
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# fuzz runs each fuzz test for FUZZTIME (not part of test: their seeds run
# there as plain tests). New findings land in the package's
# testdata/fuzz/FuzzX/ and then run in every go test as regression seeds.
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzLoad:./internal/source FuzzParse:./probe FuzzReadExport:./cmd/fwslot FuzzParseAttrs:./internal/nfnl
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} ($${t#*:}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) -parallel 1 "$${t#*:}"; \
	done

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
