#!/bin/sh
# install.sh — install smtpkit as a systemd service on this machine.
#
#   sudo packaging/install.sh [path/to/smtpkit]
#
# It creates the system user and group smtpkit, installs the binary in
# /usr/local/bin, the unit in /etc/systemd/system, creates /etc/smtpkit
# (root:smtpkit, 0750) and /var/lib/smtpkit (smtpkit, 0700), and writes a
# starting config from `smtpkit config default` when none exists. It does
# not start the service: edit /etc/smtpkit/smtpkit.toml first (domains,
# certificates), then `systemctl enable --now smtpkit`. Running it again
# is safe: existing files in /etc/smtpkit and /var/lib/smtpkit are kept.
# See docs/operations.md. The test suite never runs this script.
set -eu

bin=${1:-./smtpkit}
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "install.sh: run as root (sudo)" >&2
	exit 1
fi
if [ ! -x "$bin" ]; then
	echo "install.sh: $bin is not an executable; build it with: go build -o smtpkit ./cmd/smtpkit" >&2
	exit 1
fi

# The service user: no login shell, no home directory of its own.
if ! getent group smtpkit >/dev/null; then
	groupadd --system smtpkit
fi
if ! getent passwd smtpkit >/dev/null; then
	useradd --system --gid smtpkit --home-dir /var/lib/smtpkit --no-create-home \
		--shell /usr/sbin/nologin --comment "smtpkit mail server" smtpkit
fi

install -m 0755 "$bin" /usr/local/bin/smtpkit
install -m 0644 "$here/smtpkit.service" /etc/systemd/system/smtpkit.service

install -d -m 0750 -o root -g smtpkit /etc/smtpkit
install -d -m 0750 -o root -g smtpkit /etc/smtpkit/tls
install -d -m 0700 -o smtpkit -g smtpkit /var/lib/smtpkit

if [ ! -e /etc/smtpkit/smtpkit.toml ]; then
	/usr/local/bin/smtpkit config default >/etc/smtpkit/smtpkit.toml
	chown root:smtpkit /etc/smtpkit/smtpkit.toml
	chmod 0640 /etc/smtpkit/smtpkit.toml
	echo "wrote /etc/smtpkit/smtpkit.toml: edit the lines marked EDIT (hostname, [[domain]], [[tls.certificate]]) before starting"
fi

systemctl daemon-reload
echo "installed. Next:"
echo "  smtpkit config check -certs /etc/smtpkit/smtpkit.toml"
echo "  systemctl enable --now smtpkit"
