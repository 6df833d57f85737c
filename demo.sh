#!/usr/bin/env bash
# Runs the fwslot demo on a fresh machine: installs what it needs (nftables,
# iproute2, make, gcc), builds fwslot, and walks load -> probe -> swap ->
# rollback in a throwaway pair of network namespaces that it removes at the
# end. The machine's own firewall is never touched. Needs root.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: run as root (it creates network namespaces): sudo ./demo.sh" >&2
	exit 2
fi
need=()
for tool in nft:nftables ip:iproute2 sysctl:procps make:make gcc:gcc; do
	command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "demo.sh: Go is needed (https://go.dev/doc/install)" >&2; exit 2; }
make build
exec ./bin/fwslot demo
