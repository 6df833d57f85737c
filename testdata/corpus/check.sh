#!/bin/sh
# check.sh [FILE...] - load each corpus file with `nft -f` in a throwaway
# network namespace holding lo, eth0 (index 2) and eth1 (index 3), exactly as
# the fidelity test does. Never touches the root namespace. Needs root.
# Interfaces are dummies; on kernels built without CONFIG_DUMMY it falls
# back to ifb devices (as internal/slots/fidelity_test.go does), then tap devices.
cd "$(dirname "$0")" || exit 1
[ $# -gt 0 ] || set -- [0-9]*.nft gen/*.nft
rc=0
for f in "$@"; do
	case $f in testdata/corpus/*) f=${f#testdata/corpus/};; esac
	if out=$(unshare -n sh -c '
		for i in eth0 eth1; do
			ip link add $i type dummy 2>/dev/null || ip link add $i type ifb 2>/dev/null || ip tuntap add $i mode tap || exit 9
		done
		[ "$(ip -o link show eth0 | cut -d: -f1)/$(ip -o link show eth1 | cut -d: -f1)" = 2/3 ] || { echo bad ifindex; exit 9; }
		nft -I . -f "$1" && nft list ruleset >/dev/null' sh "$f" 2>&1); then
		echo "ok   $f"
	else
		echo "FAIL $f"; echo "$out" | sed 's/^/     /'; rc=1
	fi
done
exit $rc
