#!/usr/bin/env bash
# bench/run.sh — smtpkit and Postfix side by side, same machine, same
# durability (250 only after fsync; the clock stops when every message is a
# file in new/ of the recipient's Maildir). See docs/performance.md.
#
# Usage: bench/run.sh            (as root: installs Postfix if missing)
# Env:   SCALE=0.5               scale the message counts (default 1)
#        REPEAT=3                runs of each scenario per server, alternating
#                                which server goes first; the table gives
#                                medians (default 3)
#        IDLE="1000 10000"       idle-connection counts ("" skips them)
#        ONLY='20 sessions, many' run only the rows whose name matches this
#                                regular expression ("discarding" selects
#                                the discarding servers, "other servers"
#                                mailpit and Haraka)
#        PEERS=0                 skip "other servers": mailpit and Haraka under the
#                                1 KB, 20 sessions, many msgs/session load (their
#                                builds are cached in /var/cache/smtpkit-bench;
#                                MAILPIT_VERSION, HARAKA_VERSION pick others)
#        OUT=bench/results/latest.md
#        RELAY=0                 skip the relay rows (bench/relay.sh, run after
#                                the rest with the same SCALE, REPEAT and ONLY;
#                                its report is appended to OUT)
#
# Everything lives under one temporary directory and every process this
# script starts is stopped by its PID on exit. A system Postfix that is
# already running is left alone: ours has its own config_directory,
# queue_directory and data_directory and listens on loopback high ports.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${SCALE:-1}
REPEAT=${REPEAT:-3}
ONLY=${ONLY:-}
wanted() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }
IDLE=${IDLE-"1000 10000"}
OUT=${OUT:-$ROOT/bench/results/latest.md}
DOMAIN=bench.example
RCPT=user@$DOMAIN
FROM=sender@client.example
CLK_TCK=$(getconf CLK_TCK)

W=$(mktemp -d /tmp/smtpkit-bench.XXXXXX)
chmod 755 "$W" # the postfix and nobody users must reach their directories
PIDS=()
PF_CONF=$W/postfix
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

trap bench_cleanup EXIT

# --- prerequisites -----------------------------------------------------------
install_postfix() {
	command -v smtp-source >/dev/null && command -v postfix >/dev/null && return
	[ "$(id -u)" = 0 ] || die "Postfix is missing; run as root to install it"
	log "installing postfix (Local only)"
	echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
	echo "postfix postfix/mailname string $(hostname -f 2>/dev/null || hostname)" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
}

# --- measurement helpers -----------------------------------------------------
# disk_stat: "write-requests flushes" completed so far by the block device
# holding the work directory (0 0 when it cannot be found): the disk work
# per message, which does not depend on how fast this VM's disk is today.
DISK_STAT=
find_disk_stat() {
	local dev name
	dev=$(df --output=source "$W" | tail -1)
	name=$(basename "$(readlink -f "$dev")")
	for cand in "/sys/class/block/$name/stat" "/sys/block/$name/stat"; do
		[ -r "$cand" ] && { DISK_STAT=$cand; return; }
	done
}
disk_stat() {
	[ -n "$DISK_STAT" ] || { echo "0 0"; return; }
	# fields: reads(1-4) writes=5 merges sectors ticks inflight io_ticks queue discards(12-15) flushes=16
	awk '{print $5, ($16 == "" ? 0 : $16)}' "$DISK_STAT"
}
server_pids() { if [ "$1" = smtpkit ]; then echo "$SK_PID"; else pf_pids; fi; }
maildir_new() {
	if [ "$1" = smtpkit ]; then echo "$W/sk-data/mail/$DOMAIN/user/new"; else echo "$W/vmail/$DOMAIN/user/new"; fi
}
count_new() { local d; d=$(maildir_new "$1"); [ -d "$d" ] && find "$d" -maxdepth 1 -type f | wc -l || echo 0; }

# measure SERVER N CMD...: runs CMD (the client) and waits until N more files
# are in new/ (bounded), then syncs the file system holding them (syncfs), so
# that the clock covers every message being durable in its Maildir — work a
# server may leave to the kernel or to a later checkpoint (smtpkit's journal
# flushes Maildir files at checkpoints) is counted too; sampling PSS. Sets
# M_SECS, M_CPU (ticks), M_PSS (peak kB), M_GOT. Messages are never deleted
# during a run: freed inodes make ext4's allocator skip "recently deleted"
# ones, a cost of the harness.
measure() {
	local srv=$1 n=$2; shift 2
	local pids c0 t0 peak=0 got=0 i=0 limit base last= stall=0 d0
	base=$(count_new "$srv")
	pids=$(server_pids "$srv")
	c0=$(cpu_ticks $pids)
	d0=$(disk_stat)
	t0=$(now)
	"$@" >"$W/client.out" 2>&1 &
	local cpid=$!
	PIDS+=("$cpid")
	limit=$(( 6000 + n * 2 )) # polls of 0.05 s: 5 minutes plus 0.1 s a message
	while [ $i -lt $limit ]; do
		got=$(( $(count_new "$srv") - base ))
		[ "$got" -ge "$n" ] && break
		# the client is gone and nothing arrived for 3 s: give up
		if [ "$got" != "${last:-}" ]; then last=$got stall=0; else stall=$((stall + 1)); fi
		if [ "$stall" -ge 60 ] && ! kill -0 "$cpid" 2>/dev/null; then break; fi
		if [ $((i % 10)) = 0 ]; then
			local p; p=$(pss_kb $(server_pids "$srv")); [ "$p" -gt "$peak" ] && peak=$p
		fi
		sleep 0.05
		i=$((i + 1))
	done
	sync -f "$(maildir_new "$srv")" 2>/dev/null || sync
	M_SECS=$(echo "$(now) - $t0" | bc -l)
	local d1; d1=$(disk_stat)
	M_WIO=$(( $(echo "$d1" | cut -d' ' -f1) - $(echo "$d0" | cut -d' ' -f1) ))
	M_FLUSH=$(( $(echo "$d1" | cut -d' ' -f2) - $(echo "$d0" | cut -d' ' -f2) ))
	reap "$cpid" || log "client exited with an error: $(tail -3 "$W/client.out" | tr '\n' ' ')"
	# a daemon may have exited and been reaped meanwhile: sample the current
	# process set (the master's cutime holds the exited ones).
	M_CPU=$(( $(cpu_ticks $(server_pids "$srv")) - c0 ))
	local p; p=$(pss_kb $(server_pids "$srv")); [ "$p" -gt "$peak" ] && peak=$p
	M_PSS=$peak M_GOT=$got
	[ "$got" -ge "$n" ] || log "WARNING: $srv: only $got of $n messages arrived"
}

ROWS=()
declare -A RES=() # RES[scenario|server|rate|cpu|pss]: pair's medians (msgs/s, CPU s/1k, peak PSS MB)

# pair NAME N CMD...: runs CMD against each server REPEAT times, alternating
# which goes first (this VM's disk has fast and slow phases), with TARGET in
# CMD replaced by the server's address; then adds the table row: median
# msgs/s of each, the median and range of the per-round ratios, and the
# medians of CPU, peak PSS and disk requests per message.
pair() {
	local name=$1 n=$2; shift 2
	wanted "$name" || return 0
	local rep srv order secs_sk secs_pf
	local -A secs=() cpu=() pss=() wio=() flush=()
	local ratios=()
	for rep in $(seq 1 "$REPEAT"); do
		order="smtpkit postfix"; [ $((rep % 2)) = 0 ] && order="postfix smtpkit"
		for srv in $order; do
			log "$name: $srv (round $rep)"
			measure "$srv" "$n" "${@//TARGET/$(target "$srv")}"
			secs[$srv]+="$M_SECS " cpu[$srv]+="$M_CPU " pss[$srv]+="$M_PSS "
			wio[$srv]+="$(echo "$M_WIO / $n" | bc -l) " flush[$srv]+="$(echo "$M_FLUSH / $n" | bc -l) "
			[ "$srv" = smtpkit ] && secs_sk=$M_SECS || secs_pf=$M_SECS
			if [ -n "${LAST_OUT:-}" ]; then cp "$W/client.out" "$W/$LAST_OUT-$srv.txt"; fi
		done
		ratios+=("$(echo "$secs_pf / $secs_sk" | bc -l)")
	done
	# the medians, kept per scenario for the "other servers" table
	for srv in smtpkit postfix; do
		RES["$name|$srv|rate"]=$(echo "$n / $(median ${secs[$srv]})" | bc -l)
		RES["$name|$srv|cpu"]=$(echo "$(median ${cpu[$srv]}) / $CLK_TCK / $n * 1000" | bc -l)
		RES["$name|$srv|pss"]=$(echo "$(median ${pss[$srv]}) / 1024" | bc -l)
	done
	ROWS+=("$(printf '| %s | %d | %.0f | %.0f | **%.2f** (%s) | %.2f | %.2f | %.0f | %.0f | %.2f / %.2f | %.2f / %.2f |' \
		"$name" "$n" "${RES[$name|smtpkit|rate]}" "${RES[$name|postfix|rate]}" \
		"$(median "${ratios[@]}")" "$(minmax "${ratios[@]}")" \
		"${RES[$name|smtpkit|cpu]}" "${RES[$name|postfix|cpu]}" \
		"${RES[$name|smtpkit|pss]}" "${RES[$name|postfix|pss]}" \
		"$(median ${wio[smtpkit]})" "$(median ${flush[smtpkit]})" \
		"$(median ${wio[postfix]})" "$(median ${flush[postfix]})")")
	log "${ROWS[-1]}"
}

# --- setup -------------------------------------------------------------------
install_postfix
command -v go >/dev/null || die "go is needed to build smtpkit"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "building smtpkit"
(cd "$ROOT" && go build -o "$W/smtpkit" ./cmd/smtpkit)
SMTPKIT=$W/smtpkit

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN,IP:127.0.0.1" \
	-keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
chmod 644 "$W/cert.pem" "$W/key.pem"

SK_PORT=$(free_port)
PF_PORT=$(free_port)
while [ "$PF_PORT" = "$SK_PORT" ]; do PF_PORT=$(free_port); done
SKSINK_PORT=$(free_port)
while [ "$SKSINK_PORT" = "$SK_PORT" ] || [ "$SKSINK_PORT" = "$PF_PORT" ]; do SKSINK_PORT=$(free_port); done

# smtpkit: local domain bench.example, mx listener with opportunistic TLS.
cat >"$W/smtpkit.toml" <<EOF
hostname = "bench-smtpkit.example"
data_dir = "$W/sk-data"
[log]
level = "info"
[[domain]]
name = "$DOMAIN"
[[listener]]
address = "127.0.0.1:$SK_PORT"
role = "mx"
tls = "opportunistic"
[[listener]]
address = "127.0.0.1:$SKSINK_PORT"
role = "sink"                 # discards every message: the protocol path alone
tls = "opportunistic"
[[tls.certificate]]
cert = "$W/cert.pem"
key = "$W/key.pem"
[limits]
connections = 20000
connections_per_ip = 20000
connection_rate = 100000000 # per minute per IP: every client is 127.0.0.1 here
session_recipients = 100000000 # smtp-source -d keeps one session for all its messages
EOF
echo benchpassword | "$SMTPKIT" user add -config "$W/smtpkit.toml" "$RCPT" >/dev/null 2>&1 || die "smtpkit user add failed"

# Postfix: private config, queue and data directories; virtual Maildir
# delivery for bench.example; no DNS; the same certificate.
mkdir -p "$PF_CONF" "$W/pf-queue" "$W/pf-data" "$W/vmail"
chown nobody:nogroup "$W/vmail"
chown postfix "$W/pf-data"
pf_master_cf "$PF_PORT" >"$PF_CONF/master.cf"
cat >"$PF_CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $W/pf-queue
data_directory = $W/pf-data
myhostname = bench-postfix.example
mydestination = localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file_prefixes = $W
maillog_file = $W/postfix.log
disable_dns_lookups = yes
smtp_host_lookup = native
smtpd_client_connection_count_limit = 0
biff = no
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $W/vmail
virtual_mailbox_maps = hash:$PF_CONF/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
virtual_minimum_uid = 100
smtpd_tls_security_level = may
smtpd_tls_cert_file = $W/cert.pem
smtpd_tls_key_file = $W/key.pem
EOF
echo "$RCPT $DOMAIN/user/" >"$PF_CONF/vmailbox"
postmap -c "$PF_CONF" "$PF_CONF/vmailbox"

start_servers() {
	"$SMTPKIT" serve -config "$W/smtpkit.toml" >"$W/smtpkit.out" 2>>"$W/smtpkit.log" &
	SK_PID=$!
	PIDS+=("$SK_PID")
	postfix -c "$PF_CONF" check >/dev/null 2>&1 || true
	postfix -c "$PF_CONF" start >/dev/null 2>&1 || die "postfix did not start: $(tail -5 "$W/postfix.log" 2>/dev/null)"
	wait_listen "$SK_PORT"
	wait_listen "$PF_PORT"
}
# restart_servers: fresh processes, so that idle-connection memory is not
# mixed with what earlier runs left (Go heap, Postfix's idle smtpd processes).
restart_servers() {
	kill "$SK_PID" 2>/dev/null || true
	reap "$SK_PID" || true
	postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
	for _ in $(seq 1 100); do
		[ -z "$(pf_pids)" ] || ! kill -0 "$(pf_pids | head -1)" 2>/dev/null && break
		sleep 0.1
	done
	for _ in $(seq 1 100); do listening "$SK_PORT" || listening "$PF_PORT" || break; sleep 0.1; done
	start_servers
}
start_servers
find_disk_stat
log "smtpkit on $SK_PORT (pid $SK_PID), postfix on $PF_PORT (master $(pf_pids | head -1))"

target() { if [ "$1" = smtpkit ]; then echo "127.0.0.1:$SK_PORT"; else echo "127.0.0.1:$PF_PORT"; fi; }

# warm up both (Postfix forks its daemons on demand)
for srv in smtpkit postfix; do
	measure "$srv" 40 smtp-source -s 4 -m 40 -l 1024 -d -f "$FROM" -t "$RCPT" "$(target "$srv")"
done

# --- throughput scenarios (Postfix's own smtp-source drives both) -----------
# name|messages|smtp-source flags (-d = many messages per session)
SCENARIOS=(
	"1 KB, 1 session, many msgs/session|$(scaled 2000)|-s 1 -l 1024 -d"
	"1 KB, 20 sessions, many msgs/session|$(scaled 20000)|-s 20 -l 1024 -d"
	"100 KB, 1 session, many msgs/session|$(scaled 1500)|-s 1 -l 102400 -d"
	"100 KB, 20 sessions, many msgs/session|$(scaled 4000)|-s 20 -l 102400 -d"
	"1 KB, 1 session, 1 msg/connection|$(scaled 1000)|-s 1 -l 1024"
	"1 KB, 20 sessions, 1 msg/connection|$(scaled 2000)|-s 20 -l 1024"
)
for sc in "${SCENARIOS[@]}"; do
	IFS='|' read -r name n flags <<<"$sc"
	# shellcheck disable=SC2086
	pair "$name" "$n" smtp-source $flags -m "$n" -f "$FROM" -t "$RCPT" TARGET
done

# STARTTLS, one message per connection, with smtpkit bench (smtp-source has
# no TLS): sessions/s = msgs/s here.
n=$(scaled 1000)
LAST_OUT=starttls
pair "1 KB, 20 sessions, STARTTLS, 1 msg/connection (smtpkit bench), sessions/s" "$n" \
	"$SMTPKIT" bench --server TARGET --tls starttls --insecure \
	--per-connection 1 --concurrency 20 --messages "$n" --size 1024 --from "$FROM" --to "$RCPT"
LAST_OUT=

# --- other servers, same load: mailpit and Haraka ----------------------------
# Issue #7 compares smtpkit with these two. Neither delivers to a Maildir, so
# their rate is the acceptance rate (smtp-source's wall time, every message
# answered 250). Installs are cached under PEER_CACHE so reruns are fast;
# when one fails the report says "not run: <reason>" and the script goes on.
PEERS=${PEERS:-1}
PEER_CACHE=${PEER_CACHE:-/var/cache/smtpkit-bench}
MAILPIT_VERSION=${MAILPIT_VERSION:-v1.33.1}
HARAKA_VERSION=${HARAKA_VERSION:-3.3.4}
PEER_SCENARIO="1 KB, 20 sessions, many msgs/session"
PEER_ROWS=() PEER_RAN=
# peer_pids PID: the process and its children (Haraka's cluster worker).
peer_pids() { echo "$1"; ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }
# wait_listen_pid PORT PID: like wait_listen, bounded to 30 s, but returns 1
# (instead of dying) when PID exits or nothing listens.
wait_listen_pid() {
	for _ in $(seq 1 300); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
stop_peer() { # stop_peer PID: TERM, up to 10 s, then KILL; workers by PID too
	local p=$1 kids
	kids=$(ps -o pid= --ppid "$p" 2>/dev/null | tr -d ' ' || true)
	kill "$p" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	reap "$p" || true
	for k in $kids; do kill "$k" 2>/dev/null || true; done
}
install_mailpit() { # sets MAILPIT or PEER_WHY
	MAILPIT=$PEER_CACHE/mailpit-$MAILPIT_VERSION/mailpit
	[ -x "$MAILPIT" ] && return 0
	command -v go >/dev/null || { PEER_WHY="go is missing"; return 1; }
	log "building mailpit $MAILPIT_VERSION (cached in $(dirname "$MAILPIT"); up to 15 minutes)"
	if ! (cd "$W" && GOBIN=$W/gobin timeout 900 go install "github.com/axllent/mailpit@$MAILPIT_VERSION") >"$W/mailpit-install.log" 2>&1; then
		PEER_WHY="go install github.com/axllent/mailpit@$MAILPIT_VERSION failed: $(tail -1 "$W/mailpit-install.log")"
		return 1
	fi
	mkdir -p "$(dirname "$MAILPIT")" && cp "$W/gobin/mailpit" "$MAILPIT.tmp" && mv "$MAILPIT.tmp" "$MAILPIT"
}
install_haraka() { # sets HARAKA or PEER_WHY
	local dir=$PEER_CACHE/haraka-$HARAKA_VERSION
	HARAKA=$dir/node_modules/.bin/haraka
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		[ "$(id -u)" = 0 ] || { PEER_WHY="node/npm missing and not root"; return 1; }
		log "installing nodejs and npm"
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q nodejs npm >"$W/node-install.log" 2>&1 ||
			{ PEER_WHY="apt-get install nodejs npm failed: $(tail -1 "$W/node-install.log")"; return 1; }
	fi
	[ -x "$HARAKA" ] && return 0
	log "installing Haraka $HARAKA_VERSION (cached in $dir)"
	if ! timeout 600 npm install --prefix "$dir" --no-audit --no-fund "Haraka@$HARAKA_VERSION" >"$W/haraka-install.log" 2>&1; then
		PEER_WHY="npm install Haraka@$HARAKA_VERSION failed: $(grep -m1 -i 'err' "$W/haraka-install.log" || tail -1 "$W/haraka-install.log")"
		return 1
	fi
	[ -x "$HARAKA" ] || { PEER_WHY="npm install left no $HARAKA"; return 1; }
}
start_mailpit() { # start_mailpit PORT: sets PEER_PID; the database under $W
	local ui
	ui=$(free_port)
	while [ "$ui" = "$1" ]; do ui=$(free_port); done
	mkdir -p "$W/mailpit"
	# --max 0: keep every message (the default prunes beyond 500); no SMTP
	# auth is configured, so it accepts plain unauthenticated SMTP.
	"$MAILPIT" --smtp "127.0.0.1:$1" --listen "127.0.0.1:$ui" --database "$W/mailpit/mailpit.db" \
		--max 0 --smtp-disable-rdns --disable-version-check >"$W/mailpit.log" 2>&1 &
	PEER_PID=$!
	PIDS+=("$PEER_PID")
	MAILPIT_UI=$ui
}
mailpit_count() { # messages in its database, via its own API
	curl -s --max-time 10 "http://127.0.0.1:$MAILPIT_UI/api/v1/messages?limit=1" 2>/dev/null |
		sed -n 's/.*"total":\([0-9]*\).*/\1/p'
}
start_haraka() { # start_haraka PORT: sets PEER_PID
	local dir=$W/haraka
	rm -rf "$dir"
	"$HARAKA" -i "$dir" >"$W/haraka-init.log" 2>&1 || return 1
	mkdir -p "$W/haraka-mail/tmp" "$W/haraka-mail/new"
	# smtp.ini: only the address; nodes stays unset, i.e. Haraka's default of
	# one cluster worker under a master process.
	printf 'listen=127.0.0.1:%s\n' "$1" >"$dir/config/smtp.ini"
	echo "$DOMAIN" >"$dir/config/host_list"
	cp "$W/cert.pem" "$dir/config/tls_cert.pem" && cp "$W/key.pem" "$dir/config/tls_key.pem" # as the others
	printf '[main]\nlevel=warn\n' >"$dir/config/log.ini" # no per-message log lines
	printf 'rcpt_to.in_host_list\nbench_queue\n' >"$dir/config/plugins"
	# bench_queue: each message to tmp/, fsync, rename into new/, then 250
	# (no directory fsync). Core Haraka has no queue plugin that stores
	# locally and answers 250 (queue/quarantine only stores when another
	# plugin asks, and then declines).
	mkdir -p "$dir/plugins"
	cat >"$dir/plugins/bench_queue.js" <<JS
const fs = require('node:fs')
const path = require('node:path')
const base = '$W/haraka-mail'
exports.hook_queue = function (next, connection) {
    const txn = connection.transaction
    const tmp = path.join(base, 'tmp', txn.uuid)
    const fail = (err) => {
        connection.logerror(this, err.message)
        next(DENYSOFT, 'could not store the message')
    }
    fs.open(tmp, 'w', (err, fd) => {
        if (err) return fail(err)
        const ws = fs.createWriteStream(null, { fd, autoClose: false })
        ws.on('error', fail)
        ws.on('finish', () => {
            fs.fsync(fd, (err) => {
                fs.close(fd, () => {
                    if (err) return fail(err)
                    fs.rename(tmp, path.join(base, 'new', txn.uuid), (err) => {
                        if (err) return fail(err)
                        next(OK)
                    })
                })
            })
        })
        txn.message_stream.pipe(ws, { line_endings: '\n' })
    })
}
JS
	"$HARAKA" -c "$dir" >"$W/haraka.log" 2>&1 &
	PEER_PID=$!
	PIDS+=("$PEER_PID")
}
# peer_run NAME PORT N: REPEAT rounds of the main row's load; sets PEER_RATE
# (median msgs/s), PEER_CPU (s per 1,000), PEER_PSS (peak MB) or PEER_WHY.
peer_run() {
	local name=$1 port=$2 n=$3 rep t0 c0 secs peak p i rc
	local secss=() cpus=() psss=()
	smtp-source -s 4 -m 40 -l 1024 -d -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >"$W/peer-client.out" 2>&1 ||
		{ PEER_WHY="warm-up failed: $(tail -1 "$W/peer-client.out")"; return 1; }
	for rep in $(seq 1 "$REPEAT"); do
		log "other servers: $name (round $rep)"
		c0=$(cpu_ticks $(peer_pids "$PEER_PID"))
		peak=0
		t0=$(now)
		timeout 600 smtp-source -s 20 -m "$n" -l 1024 -d -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >"$W/peer-client.out" 2>&1 &
		local cpid=$!
		PIDS+=("$cpid")
		i=0
		while kill -0 "$cpid" 2>/dev/null && [ $i -lt 12000 ]; do # 0.05 s polls, 10 minutes
			if [ $((i % 10)) = 0 ]; then p=$(pss_kb $(peer_pids "$PEER_PID")); [ "$p" -gt "$peak" ] && peak=$p; fi
			sleep 0.05
			i=$((i + 1))
		done
		rc=0
		reap "$cpid" || rc=$?
		secs=$(echo "$(now) - $t0" | bc -l)
		[ "$rc" = 0 ] || { PEER_WHY="smtp-source failed (exit $rc): $(tail -1 "$W/peer-client.out")"; return 1; }
		p=$(pss_kb $(peer_pids "$PEER_PID")); [ "$p" -gt "$peak" ] && peak=$p
		secss+=("$secs")
		cpus+=("$(echo "$(( $(cpu_ticks $(peer_pids "$PEER_PID")) - c0 )) / $CLK_TCK / $n * 1000" | bc -l)")
		psss+=("$(echo "$peak / 1024" | bc -l)")
	done
	# n over the median time, as pair() computes its msgs/s
	PEER_RATE=$(echo "$n / $(median "${secss[@]}")" | bc -l) PEER_CPU=$(median "${cpus[@]}") PEER_PSS=$(median "${psss[@]}")
}
peer_row() { # peer_row SERVER VERSION DURABILITY [COUNTED]: from PEER_* (or PEER_WHY)
	if [ -n "${PEER_WHY:-}" ]; then
		PEER_ROWS+=("| $1 | $2 | not run: ${PEER_WHY//|/\\|} | | | | $3 |")
		log "other servers: $1 not run: $PEER_WHY"
	else
		PEER_ROWS+=("$(printf '| %s | %s | %.0f | %.2f | %.0f | %s | %s |' "$1" "$2" "$PEER_RATE" "$PEER_CPU" "$PEER_PSS" "${4:-}" "$3")")
		log "${PEER_ROWS[-1]}"
	fi
}
other_servers() {
	local n port total sent
	n=$(scaled 4000)
	sent=$((40 + REPEAT * n)) # warm-up and rounds
	PEER_N=$n PEER_RAN=1
	for srv in smtpkit postfix; do
		if [ -n "${RES[$PEER_SCENARIO|$srv|rate]:-}" ]; then
			PEER_ROWS+=("$(printf '| %s | %s | %.0f | %.2f | %.0f | %s | %s |' "$srv" \
				"$([ "$srv" = smtpkit ] && echo "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')" || postconf -h mail_version)" \
				"${RES[$PEER_SCENARIO|$srv|rate]}" "${RES[$PEER_SCENARIO|$srv|cpu]}" "${RES[$PEER_SCENARIO|$srv|pss]}" \
				"each round waits for all $n in new/" "$([ "$srv" = smtpkit ] && echo 'journal record fdatasynced (or message file flushed) before 250; rate counts delivery into Maildir' || echo 'queue file fsynced before 250; rate counts delivery into Maildir')")")
		else
			PEER_ROWS+=("| $srv | | not run: select \"$PEER_SCENARIO\" too (ONLY) | | | | |")
		fi
	done

	PEER_WHY=
	local mp_dur="SQLite, WAL journal, synchronous=NORMAL (its source: internal/storage/database.go): each message is committed before 250 but the WAL is not fsynced per commit, so a power loss can lose the last ones; a process crash cannot"
	if install_mailpit; then
		port=$(free_port)
		start_mailpit "$port"
		if wait_listen_pid "$port" "$PEER_PID"; then
			peer_run mailpit "$port" "$n" || true
			total=$(mailpit_count)
			stop_peer "$PEER_PID"
		else
			PEER_WHY="mailpit did not listen: $(tail -1 "$W/mailpit.log")"
			stop_peer "$PEER_PID"
		fi
	fi
	peer_row mailpit "$MAILPIT_VERSION" "$mp_dur" "${total:-?} of $sent in its database"

	PEER_WHY= total=
	local hk_dur="bench/run.sh's bench_queue plugin: message written to a file, fsynced, renamed into new/ before 250 (no directory fsync)"
	if install_haraka; then
		port=$(free_port)
		if ! start_haraka "$port"; then
			PEER_WHY="haraka -i failed: $(tail -1 "$W/haraka-init.log")"
		elif wait_listen_pid "$port" "$PEER_PID"; then
			peer_run Haraka "$port" "$n" || true
			total=$(find "$W/haraka-mail/new" -maxdepth 1 -type f | wc -l)
			stop_peer "$PEER_PID"
		else
			PEER_WHY="Haraka did not listen: $(grep -m1 -i -E 'crit|error' "$W/haraka.log" || tail -1 "$W/haraka.log")"
			stop_peer "$PEER_PID"
		fi
	fi
	peer_row Haraka "$HARAKA_VERSION (node $(node --version 2>/dev/null || echo '?'))" "$hk_dur" "${total:-?} of $sent files in new/"
}
if [ "$PEERS" != 0 ] && wanted "other servers"; then other_servers; fi

# --- discarding servers: Postfix's smtp-sink against smtpkit's sink listener
SINK_RATES=() SKSINK_RATES=() SINK_RATIOS=() SINK_RATE= SKSINK_RATE= PINNED=
discarding() {
	SINK_PORT=$(free_port)
	smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 >/dev/null 2>&1 &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	for i in $(seq 1 50); do [ -n "$(ss -Htln "sport = :$SINK_PORT")" ] && break; sleep 0.1; done
	n=$(scaled 20000)
	SINK_N=$n
	sink_rate() { # sink_rate PORT [PREFIX...]: msgs/s of one smtp-source run (PREFIX: e.g. taskset -c 0)
		local port=$1 t0; shift
		t0=$(now)
		"$@" smtp-source -s 20 -m "$n" -l 1024 -d -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >/dev/null 2>&1 || log "smtp-source to port $port failed"
		printf '%.0f' "$(echo "$n / ($(now) - $t0)" | bc -l)"
}
for rep in $(seq 1 "$REPEAT"); do
	log "discarding servers, round $rep"
	if [ $((rep % 2)) = 1 ]; then a=$(sink_rate "$SINK_PORT"); b=$(sink_rate "$SKSINK_PORT")
	else b=$(sink_rate "$SKSINK_PORT"); a=$(sink_rate "$SINK_PORT"); fi
	SINK_RATES+=("$a") SKSINK_RATES+=("$b") SINK_RATIOS+=("$(echo "$b / $a" | bc -l)")
done
kill "$SINK_PID" 2>/dev/null || true; reap "$SINK_PID" || true
SINK_RATE=$(median "${SINK_RATES[@]}") SKSINK_RATE=$(median "${SKSINK_RATES[@]}")

# The same with one CPU each, like for like: the load generator on CPU 0,
# each discarding server alone on CPU 1 (smtp-sink is one single-threaded
# process; smtpkit gets a process of its own holding only a sink listener,
# and the Go runtime sizes itself to the one CPU it may use). Unpinned, the
# client and the server compete for both CPUs and Go's runtime hands
# goroutines between threads on different CPUs, which costs it more than
# smtp-sink's one select loop.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	PSINK_PORT=$(free_port)
	PSK_PORT=$(free_port)
	while [ "$PSK_PORT" = "$PSINK_PORT" ]; do PSK_PORT=$(free_port); done
	{
		echo "hostname = \"bench-smtpkit.example\""
		echo "data_dir = \"$W/psink-data\""
		echo "[log]"
		echo "level = \"info\""
		echo "[[domain]]"
		echo "name = \"$DOMAIN\""
		echo "[[listener]]"
		echo "address = \"127.0.0.1:$PSK_PORT\""
		echo "role = \"sink\""
		echo "tls = \"none\""
		echo "[limits]"
		echo "connections = 20000"
		echo "connections_per_ip = 20000"
		echo "connection_rate = 100000000"
		echo "session_recipients = 100000000"
	} >"$W/psink.toml"
	taskset -c 1 smtp-sink -u nobody -c "127.0.0.1:$PSINK_PORT" 1000 >/dev/null 2>&1 &
	PSINK_PID=$!
	PIDS+=("$PSINK_PID")
	taskset -c 1 "$SMTPKIT" serve -config "$W/psink.toml" >"$W/psink.out" 2>"$W/psink.log" &
	PSK_PID=$!
	PIDS+=("$PSK_PID")
	wait_listen "$PSINK_PORT"
	wait_listen "$PSK_PORT"
	P_SINK=() P_SK=() P_RATIOS=()
	for rep in $(seq 1 "$REPEAT"); do
		log "discarding servers, one CPU each, round $rep"
		if [ $((rep % 2)) = 1 ]; then a=$(sink_rate "$PSINK_PORT" taskset -c 0); b=$(sink_rate "$PSK_PORT" taskset -c 0)
		else b=$(sink_rate "$PSK_PORT" taskset -c 0); a=$(sink_rate "$PSINK_PORT" taskset -c 0); fi
		P_SINK+=("$a") P_SK+=("$b") P_RATIOS+=("$(echo "$b / $a" | bc -l)")
	done
	kill "$PSINK_PID" "$PSK_PID" 2>/dev/null || true
	reap "$PSINK_PID" || true
	reap "$PSK_PID" || true
	PINNED="One CPU each (smtp-source on CPU 0, each server alone on CPU 1): smtp-sink $(median "${P_SINK[@]}") msgs/s, smtpkit sink $(median "${P_SK[@]}") msgs/s (ratio $(printf '%.2f' "$(median "${P_RATIOS[@]}")"), range $(minmax "${P_RATIOS[@]}"))."
fi
}
if wanted "discarding servers"; then discarding; fi

# --- idle connections --------------------------------------------------------
IDLE_ROWS=()
idle_one() { # idle_one SERVER N: sets I_BEFORE, I_PSS (kB) and I_HELD
	local srv=$1 n=$2 held=0
	I_BEFORE=$(pss_kb $(server_pids "$srv")) # a fresh server after one EHLO
	"$SMTPKIT" bench --server "$(target "$srv")" --idle "$n" --hold 600s --concurrency 50 >"$W/idle.out" 2>&1 &
	local bp=$!
	PIDS+=("$bp")
	for _ in $(seq 1 1200); do # up to 10 minutes to open them
		grep -q '^holding' "$W/idle.out" 2>/dev/null && break
		kill -0 "$bp" 2>/dev/null || break
		sleep 0.5
	done
	held=$(awk '/^holding/ {print $2}' "$W/idle.out")
	sleep 2 # let forked daemons settle
	I_PSS=$(pss_kb $(server_pids "$srv"))
	I_HELD=${held:-0}
	kill -INT "$bp" 2>/dev/null || true
	reap "$bp" || true
}
avail_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
for n in $IDLE; do
	restart_servers
	for srv in smtpkit postfix; do
		"$SMTPKIT" bench --server "$(target "$srv")" --idle 1 --hold 0s >/dev/null 2>&1 || true
		if [ "$srv" = postfix ] && [ -n "${PF_PER_CONN:-}" ] && [ $((PF_PER_CONN * n)) -gt $(( $(avail_kb) / 3 )) ]; then
			IDLE_ROWS+=("| $srv | $n | skipped: would need about $((PF_PER_CONN * n / 1024)) MB, more than a third of the free memory of this shared machine | | | |")
			continue
		fi
		log "idle $n: $srv"
		idle_one "$srv" "$n"
		per=$(( I_HELD > 0 ? (I_PSS - I_BEFORE) / I_HELD : 0 ))
		[ "$srv" = postfix ] && PF_PER_CONN=$per
		per1=0
		if [ "$I_HELD" -gt 0 ]; then per1=$(echo "($I_PSS - $I_BEFORE) / $I_HELD" | bc -l); fi
		IDLE_ROWS+=("| $srv | $n | $I_HELD | $((I_BEFORE / 1024)) | $((I_PSS / 1024)) | $(printf '%.1f' "$per1") |")
		# wait (bounded) for the server to drop the connections again
		for _ in $(seq 1 100); do
			[ "$(ss -Htn state established "( sport = :$(target "$srv" | cut -d: -f2) )" | wc -l)" -lt 10 ] && break
			sleep 0.2
		done
	done
done

# --- report ------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
{
	echo "# smtpkit vs Postfix — latest run"
	echo
	echo "Generated by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); smtpkit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'), $(postconf -h mail_version | sed 's/^/Postfix /')."
	echo
	echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -sr)."
	echo "Disk holding the Maildirs and queues: $(df -hT "$W" | awk 'NR==2 {print $1, $2, $3}')."
	echo "The machine is shared with other engineers' tests running at the same time: expect noise of ±20%."
	echo
	echo "Both servers answer 250 only once the message is on stable storage (Postfix: its queue file fsynced;"
	echo "smtpkit: its journal record fdatasynced, or the message file flushed), and the clock stops when every"
	echo "message is a file in new/. Each scenario ran $REPEAT times per server, alternating which went first."
	echo "msgs/s = messages / wall seconds (median); ratio = median of the per-round ratios (range in brackets);"
	echo "CPU s/1k = server CPU seconds (user+system) per 1,000 messages; PSS = peak proportional set size of the"
	echo "server processes, sampled every 0.5 s; disk = write requests / flushes completed by the block device"
	echo "per message (both servers' work, medians; see docs/performance.md)."
	echo
	echo "| scenario | messages | smtpkit msgs/s | Postfix msgs/s | smtpkit/Postfix | smtpkit CPU s/1k | Postfix CPU s/1k | smtpkit peak PSS MB | Postfix peak PSS MB | smtpkit disk writes / flushes per msg | Postfix disk writes / flushes per msg |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${ROWS[@]}"
	echo
	if [ -n "$SINK_RATE" ]; then
	echo "Discarding servers (accept and discard, no disk), 1 KB, 20 sessions, many per session:"
	echo "Postfix \`smtp-sink\` $SINK_RATE msgs/s, smtpkit \`role = \"sink\"\` listener $SKSINK_RATE msgs/s (medians of $REPEAT"
	echo "alternating rounds of $SINK_N messages; ratio $(printf '%.2f' "$(median "${SINK_RATIOS[@]}")"), range $(minmax "${SINK_RATIOS[@]}")). smtp-sink skips most of SMTP; the smtpkit sink runs"
	echo "the full server path (parsing, strict DATA reader, limits, Received header) and only skips storage."
	if [ -n "$PINNED" ]; then echo; echo "$PINNED"; fi
	fi
	if [ -n "$PEER_RAN" ]; then
	echo
	echo "## Other servers, same load"
	echo
	echo "1 KB, 20 sessions, many msgs/session (\`smtp-source -s 20 -m $PEER_N -l 1024 -d\`), $REPEAT rounds each, medians."
	echo "smtpkit and Postfix: the main table's row from this run (msgs/s = delivered into Maildir new/)."
	echo "mailpit and Haraka do not deliver to a Maildir: their msgs/s is the acceptance rate, messages over"
	echo "smtp-source's wall time (every message answered 250). They ran one after the other, after the main rows;"
	echo "Haraka with one cluster worker (smtp.ini nodes unset), log level warn, plugins rcpt_to.in_host_list and"
	echo "bench_queue only. CPU s/1k and peak PSS cover all of each server's processes."
	echo
	echo "| server | version | msgs/s | CPU s/1k | peak PSS MB | messages stored | what it does before its 250 |"
	echo "|---|---|---:|---:|---:|---|---|"
	printf '%s\n' "${PEER_ROWS[@]}"
	fi
	echo
	echo "## Idle connections (each said EHLO, then held)"
	echo
	echo "| server | requested | held | PSS before MB | PSS held MB | kB per connection |"
	echo "|---|---:|---:|---:|---:|---:|"
	printf '%s\n' "${IDLE_ROWS[@]}"
	echo
	echo "## smtpkit bench output, STARTTLS scenario"
	echo
	for srv in smtpkit postfix; do
		echo "### $srv"
		echo '```'
		cat "$W/starttls-$srv.txt" 2>/dev/null || echo "(not run)"
		echo '```'
	done
} >"$OUT"
# --- the relay path: bench/relay.sh, its own servers and sinks --------------
if [ "${RELAY:-1}" != 0 ]; then
	log "relay rows (bench/relay.sh)"
	if SCALE=$SCALE REPEAT=$REPEAT ONLY=$ONLY OUT="$W/relay.md" "$ROOT/bench/relay.sh"; then
		{ echo; sed 's/^# /## /' "$W/relay.md"; } >>"$OUT"
	else
		printf '\n## Relay path\n\nbench/relay.sh failed (exit %s).\n' "$?" >>"$OUT"
	fi
fi
cat "$OUT"
log "wrote $OUT"
