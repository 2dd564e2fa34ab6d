#!/usr/bin/env bash
# install-test-deps.sh installs the independent SMTP peers the interop tests
# drive (swaks, Postfix tools, Python smtplib/aiosmtpd, msmtp, GNU SASL's
# gsasl, Cyrus SASL's saslpasswd2, curl, openssl), the DNS servers of the
# enforced-TLS bench (nsd, unbound, ldns-signzone) and downloads the Go
# modules. It is idempotent: apt runs only when a package is missing, and a
# fresh CI machine gets everything from here.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi

# Debian 12 has no python3-scramp; msmtp (built with GNU SASL) and the gsasl
# command are the independent SCRAM-SHA-256 clients instead. sasl2-bin
# (saslpasswd2) and libsasl2-modules give the private Postfix relay host of
# postfix_relay_test.go its Cyrus SASL sasldb and PLAIN/LOGIN mechanisms.
# bindfs is a FUSE file system for daemon_test.go (syncfs is no barrier on
# FUSE: serve must fall back to per-file fsync there). nsd (authoritative),
# unbound (validating resolver) and ldnsutils (ldns-keygen, ldns-signzone)
# are the DNSSEC bench of test/interop/dnssec_bench_test.go; the tests run
# their own instances on 127.13.7.53 and .54 with configs of their own.
# python3-dkim (dkimpy, with python3-nacl for Ed25519) verifies smtpkit's
# DKIM signatures in test/interop/dkim_test.go. dovecot-imapd shows the
# .Junk Maildir++ folder of quarantined mail over IMAP in
# test/interop/dovecot_test.go (its own instance on 127.14.4.30).
# opendmarc (the OpenDMARC milter; it pulls in dbconfig) and publicsuffix
# are the DMARC alignment oracle of test/interop/dmarc_oracle_test.go,
# which runs its own instance behind a private Postfix on 127.14.6.0/24.
# rbldnsd serves the DNSBL/DNSWL test zones of test/interop/dnsbl_test.go
# (127.15.3.0/24).
# postgresql gives internal/pgtest initdb and pg_ctl (throwaway clusters of
# the PostgreSQL queue and cluster tests, on 127.17.4.0/24 and the nodes'
# 127.0.0.11-13); its own cluster is not started. dovecot-lmtpd is the LMTP
# server of test/interop/lmtp_test.go (its own instance).
# chromium (Debian's, headless, driven by chromedp) is the browser of
# test/interop/web_test.go, the status page test; prometheus gives promtool,
# which checks packaging/prometheus/alerts.yml in internal/metrics.
packages=(chromium prometheus swaks postfix python3 python3-aiosmtpd gsasl msmtp curl openssl ca-certificates sasl2-bin libsasl2-modules bindfs nsd unbound ldnsutils python3-spf python3-dkim dovecot-imapd opendmarc publicsuffix rspamd rbldnsd haproxy postgresql dovecot-lmtpd)

# installed reports whether the Debian package $1 is fully installed.
installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	echo "install-test-deps: installing ${missing[*]}"
	# Postfix asks questions at install time; answer them so that it
	# installs non-interactively as a local-only MTA.
	printf '%s\n' \
		'postfix postfix/main_mailer_type select Local only' \
		'postfix postfix/mailname string localhost' |
		"${sudo[@]}" debconf-set-selections
	# Wait for the dpkg lock (another apt run, unattended-upgrades) for up
	# to five minutes instead of failing at once.
	lock=(-o DPkg::Lock::Timeout=300)
	"${sudo[@]}" apt-get "${lock[@]}" update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y "${missing[@]}"
	# The tests use their own ports and instances; a Postfix started by
	# the package's postinst would only hold port 25, an nsd port 53 on
	# every address (the bench binds 127.13.7.53:53), and the system's
	# unbound is not the one the tests configure; the system's opendmarc
	# would only hold its socket.
	for p in "${missing[@]}"; do
		case "$p" in
		postfix)
			"${sudo[@]}" postfix stop >/dev/null 2>&1 || true
			"${sudo[@]}" service postfix stop >/dev/null 2>&1 || true
			;;
		nsd | unbound | opendmarc | postgresql)
			"${sudo[@]}" service "$p" stop >/dev/null 2>&1 || true
			"${sudo[@]}" systemctl disable "$p" >/dev/null 2>&1 || true
			;;
		dovecot-imapd | dovecot-lmtpd)
			"${sudo[@]}" service dovecot stop >/dev/null 2>&1 || true
			"${sudo[@]}" systemctl disable dovecot >/dev/null 2>&1 || true
			;;
		esac
	done
else
	echo "install-test-deps: all packages present"
fi

go mod download

# pebble, Let's Encrypt's test CA, for the ACME tests (test/interop/acme_test.go),
# built from the module proxy into $(go env GOPATH)/bin, where the tests look
# when it is not on PATH.
pebble_version=v2.10.3
pebble_bin="$(go env GOPATH)/bin/pebble"
if ! [ -x "$pebble_bin" ] || ! "$pebble_bin" -version 2>/dev/null | grep -q "$pebble_version"; then
	echo "install-test-deps: installing pebble $pebble_version"
	GOBIN="$(go env GOPATH)/bin" go install -ldflags "-X main.version=$pebble_version" "github.com/letsencrypt/pebble/v2/cmd/pebble@$pebble_version"
fi
