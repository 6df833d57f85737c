# fwslot: build, demo and tests. Tests and the demo need root: they create
# network namespaces and nftables objects inside them, never on the host.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT ?= $(dir $(GO))gofmt
PKGS := ./...
# staticcheck is pinned (v0.8.2 is release 2026.2.2) so that the gate means
# the same on every machine.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build deps bench-deps demo test check fuzz bench bench-fleet bench-quick clean docs install deb difftest

# Where make install puts things; DESTDIR stages into another root.
PREFIX ?= /usr
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# BIN is the build output directory; DEBOUT where make deb writes the .deb.
BIN ?= bin
DEBOUT ?= $(BIN)

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN)/fwslot ./cmd/fwslot

# docs: man pages and shell completions, generated from the command tree
# by the binary itself (a hidden command), so they match its flags.
docs: build
	rm -rf $(BIN)/docs
	$(BIN)/fwslot __gen-docs $(BIN)/docs

# install: the binary, man pages (gzipped), completions for bash, zsh and
# fish, and the systemd units with ExecStart pointing at $(SBINDIR). No
# unit is enabled: that stays the operator's decision.
install: docs
	install -D -m 0755 $(BIN)/fwslot $(DESTDIR)$(SBINDIR)/fwslot
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man8
	for p in $(BIN)/docs/man/man8/*.8; do \
		gzip -9n -c $$p > $(DESTDIR)$(MANDIR)/man8/$$(basename $$p).gz && \
		chmod 0644 $(DESTDIR)$(MANDIR)/man8/$$(basename $$p).gz || exit 1; \
	done
	install -D -m 0644 $(BIN)/docs/completions/fwslot.bash $(DESTDIR)$(BASHCOMPDIR)/fwslot
	install -D -m 0644 $(BIN)/docs/completions/_fwslot $(DESTDIR)$(ZSHCOMPDIR)/_fwslot
	install -D -m 0644 $(BIN)/docs/completions/fwslot.fish $(DESTDIR)$(FISHCOMPDIR)/fwslot.fish
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for u in deploy/systemd/*.service; do \
		sed 's#/usr/local/s\{0,1\}bin/fwslot#$(SBINDIR)/fwslot#g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done

# deb: the same content as a Debian package, built with dpkg-deb only.
deb:
	@GO=$(GO) BIN=$(BIN) ./deploy/deb/build.sh $(DEBOUT)

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

# bench-fleet: only the fleet section (10, 50, 100 hosts, 10k rules).
bench-fleet: deps build
	$(GO) run ./bench/cmd/fwslot-bench -only fleet -fwslot $(BIN)/fwslot

clean:
	rm -rf bin

# difftest: the differential tester. Every example ruleset under
# testdata/examples (with probes and a topology) gets its probes and
# DIFFTEST_N generated packets, sent as probes through fwslot's twin and as
# real packets through a real router namespace loaded with `nft -f`; every
# fate and the rule that decided it must agree. Root; namespaces only,
# never the host's.
DIFFTEST_N ?= 200
difftest: deps
	FWSLOT_DIFFTEST_N=$(DIFFTEST_N) $(GO) test -count=1 -timeout 30m -run 'TestDifferential' -v ./probe/
