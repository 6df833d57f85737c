#!/bin/sh
# Build a Debian package of fwslot with the content of `make install
# PREFIX=/usr`, using dpkg-deb only. Usage: deploy/deb/build.sh OUTDIR
# (run from the repository root; make deb does). Nothing is enabled on
# install: the package ships the systemd units, the operator enables them.
set -eu

out=${1:?usage: $0 OUTDIR}
GO=${GO:-go}
BIN=${BIN:-bin}
command -v dpkg-deb >/dev/null || { echo "make deb needs dpkg-deb (apt-get install dpkg)" >&2; exit 2; }

# Debian versions start with a digit: 0.0~gitYYYYMMDD.HASH until releases
# are tagged (v1.2.3 becomes 1.2.3).
version=${VERSION:-}
if [ -z "$version" ]; then
	if tag=$(git describe --tags --exact-match 2>/dev/null); then
		version=${tag#v}
	else
		version="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	fi
fi
arch=$(dpkg --print-architecture 2>/dev/null || "$GO" env GOARCH)

mkdir -p "$out"
root=$(mktemp -d "${TMPDIR:-/tmp}/fwslot-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
make --no-print-directory install GO="$GO" BIN="$BIN" PREFIX=/usr DESTDIR="$root/pkg" >&2

mkdir -p "$root/pkg/DEBIAN"
size=$(du -sk "$root/pkg" | cut -f1)
cat > "$root/pkg/DEBIAN/control" <<CONTROL
Package: fwslot
Version: $version
Architecture: $arch
Maintainer: fwslot developers <dev@fwslot>
Installed-Size: $size
Depends: nftables, iproute2
Recommends: procps
Section: net
Priority: optional
Homepage: https://github.com/fwslot/fwslot
Description: change an nftables firewall without fear
 fwslot keeps two copies of an nftables ruleset in the kernel, production
 and staging, stages a ruleset beside the live one, proves it with probe
 packets and makes it live in one atomic transaction, with every version
 kept for instant rollback. The systemd units (fwslot-restore.service,
 fwslot-watch@.service, fwslot-agent.service) are installed but not
 enabled.
CONTROL
deb="$out/fwslot_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root/pkg" "$deb" >&2
echo "$deb"
