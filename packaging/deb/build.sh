#!/bin/sh
# build.sh — build the smtpkit Debian package with dpkg-deb.
#
#   packaging/deb/build.sh [OUTDIR]
#
# Builds the binary (as `go build` does for the tests, so that the build
# cache serves it, with the version stamped by -ldflags), lays out the package tree and writes
# OUTDIR/smtpkit_VERSION_ARCH.deb (OUTDIR default: dist). It prints the
# path of the .deb on its last line. VERSION is $SMTPKIT_VERSION when set,
# else 0~gitYYYYMMDDHHMMSS.REV from the checkout's HEAD (".dirty" added when
# the work tree has changes). See docs/operations.md "Debian package".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-"$top/dist"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="$PATH:/usr/local/go/bin"
fi
for tool in go dpkg-deb dpkg; do
	command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: $tool not found" >&2; exit 1; }
done

version=${SMTPKIT_VERSION:-}
if [ -z "$version" ]; then
	if rev=$(git -C "$top" rev-parse --short=12 HEAD 2>/dev/null); then
		when=$(TZ=UTC git -C "$top" log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD)
		version="0~git$when.$rev"
		if [ -n "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
			version="$version.dirty"
		fi
	else
		version="0~dev"
	fi
fi
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/smtpkit_${version}_$arch"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
	"$root/usr/share/doc/smtpkit/examples"

# The binary. GOARCH from dpkg's architecture name where they differ.
goarch=$arch
case "$arch" in
i386) goarch=386 ;;
armhf) goarch=arm ;;
esac
(cd "$top" && GOOS=linux GOARCH=$goarch go build \
	-ldflags "-s -w -X smtpkit/internal/cli.Version=$version" -o "$root/usr/bin/smtpkit" ./cmd/smtpkit)
chmod 0755 "$root/usr/bin/smtpkit"

# The systemd unit of packaging/, with the binary where the package puts it.
sed -e 's|/usr/local/bin/smtpkit|/usr/bin/smtpkit|g' \
	-e 's|^# systemd unit for smtpkit\. Install with packaging/install\.sh, which puts$|# systemd unit for smtpkit, installed by the smtpkit Debian package, which puts|' \
	-e 's|^# the binary in /usr/local/bin, this file in /etc/systemd/system and creates$|# the binary in /usr/bin, this file in /lib/systemd/system and creates|' \
	"$top/packaging/smtpkit.service" >"$root/lib/systemd/system/smtpkit.service"
chmod 0644 "$root/lib/systemd/system/smtpkit.service"

install -m 0644 "$top/examples/smtpkit.toml" "$root/usr/share/doc/smtpkit/examples/smtpkit.toml"
install -m 0644 "$top/README.md" "$root/usr/share/doc/smtpkit/README.md"
for doc in operations config send; do
	install -m 0644 "$top/docs/$doc.md" "$root/usr/share/doc/smtpkit/$doc.md"
done

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
	"$here/control" >"$root/DEBIAN/control"
for script in postinst prerm postrm; do
	install -m 0755 "$here/$script" "$root/DEBIAN/$script"
done

deb="$out/smtpkit_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
