#!/usr/bin/env bash
# bench/relay.sh — the relay path, smtpkit and Postfix side by side (issue
# #17): smtp-source hands mail to each server from a trusted network (both
# relay for loopback clients: smtpkit's default trusted_networks, Postfix's
# mynetworks), each server queues it durably and relays it to its own
# downstream smtp-sink; the clock runs from the first message sent to the
# last message the sink has received. See docs/performance.md.
#
# Usage: bench/relay.sh          (as root: installs Postfix if missing)
# Env:   SCALE=0.1               scale the message counts (default 1)
#        REPEAT=3                rounds per row, alternating which server goes first
#        ONLY='1 KB, 20'         run only the rows whose name matches (regex)
#        DEPTH="1000 10000 100000"  deferred messages held for the queue-depth rows
#                                ("" skips them)
#        OUT=bench/results/relay.md
#        KEEP=1                  keep the work directory (configs, logs)
#        PROFILE=DIR             turn on smtpkit's [http] pprof and write a CPU
#                                profile of each smtpkit round's first
#                                PROFILE_SECS (default 10) seconds to DIR
#
# Both servers run with their defaults for delivery: smtpkit's
# [outbound] concurrency and Postfix's default_destination_concurrency_limit.
# Every process this script starts is stopped by its PID on exit; a system
# Postfix is left alone (ours has its own config, queue and data directories).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${SCALE:-1}
REPEAT=${REPEAT:-3}
ONLY=${ONLY:-}
DEPTH=${DEPTH-"1000 10000 100000"}
OUT=${OUT:-$ROOT/bench/results/relay.md}
PROFILE=${PROFILE:-}
PROFILE_SECS=${PROFILE_SECS:-10}
FROM=sender@client.example
RCPT=user@relay.example
CLK_TCK=$(getconf CLK_TCK)
wanted() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }

W=$(mktemp -d /tmp/smtpkit-relay.XXXXXX)
chmod 755 "$W"
PIDS=()
PF_CONF=$W/postfix
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT

if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
	[ "$(id -u)" = 0 ] || die "Postfix is missing; run as root to install it"
	echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q postfix >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "building smtpkit"
(cd "$ROOT" && go build -o "$W/smtpkit" ./cmd/smtpkit)
SMTPKIT=$W/smtpkit

# distinct ports for the two servers, their sinks, and a dead port (nothing
# listens: connections are refused, recipients are deferred)
declare -A PORT=()
used=" "
for k in sk pf sksink pfsink dead http; do
	p=$(free_port)
	while [[ $used == *" $p "* ]]; do p=$(free_port); done
	PORT[$k]=$p used+="$p "
done

# --- downstream sinks: Postfix's smtp-sink, one per server, counting "." ---
start_sink() { # start_sink NAME PORT
	smtp-sink -c -u nobody "127.0.0.1:$2" 1024 >"$W/$1.count" 2>"$W/$1.err" &
	PIDS+=("$!")
	wait_listen "$2"
}
# sink_count NAME: messages the sink has received so far (its running
# counter, "mesg=N", updated at every ".")
sink_count() {
	local v
	v=$(tail -c 200 "$W/$1.count" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
	echo "${v:-0}"
}
start_sink sksink "${PORT[sksink]}"
start_sink pfsink "${PORT[pfsink]}"

# --- smtpkit: mx listener; loopback is a trusted network by default --------
cat >"$W/smtpkit.toml" <<EOF
hostname = "relay-smtpkit.example"
data_dir = "$W/sk-data"
[log]
level = "info"
[[domain]]
name = "bench-local.example"
[[listener]]
address = "127.0.0.1:${PORT[sk]}"
role = "mx"
tls = "none"
[[route]]
domain = "relay.example"
host = "127.0.0.1:${PORT[sksink]}"
tls = "none"
[[route]]
domain = "deferred.example"
host = "127.0.0.1:${PORT[dead]}"
tls = "none"
[http]
address = "127.0.0.1:${PORT[http]}" # /metrics: the queue depth
pprof = $([ -n "$PROFILE" ] && echo true || echo false)
[limits]
connections = 20000
session_recipients = 100000000
session_transactions = 100000000 # smtp-source -d keeps one session for all its messages
EOF

# --- Postfix: relay for mynetworks to its sink, deferred.example to the dead port
mkdir -p "$PF_CONF" "$W/pf-queue" "$W/pf-data"
chown postfix "$W/pf-data"
pf_master_cf "${PORT[pf]}" >"$PF_CONF/master.cf"
cat >"$PF_CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $W/pf-queue
data_directory = $W/pf-data
myhostname = relay-postfix.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:${PORT[pfsink]}
transport_maps = hash:$PF_CONF/transport
maillog_file_prefixes = $W
maillog_file = $W/postfix.log
disable_dns_lookups = yes
smtp_host_lookup = native
smtpd_client_connection_count_limit = 0
biff = no
EOF
echo "deferred.example smtp:[127.0.0.1]:${PORT[dead]}" >"$PF_CONF/transport"
postmap -c "$PF_CONF" "$PF_CONF/transport"

"$SMTPKIT" serve -config "$W/smtpkit.toml" >"$W/smtpkit.out" 2>>"$W/smtpkit.log" &
SK_PID=$!
PIDS+=("$SK_PID")
postfix -c "$PF_CONF" start >/dev/null 2>&1 || die "postfix did not start: $(tail -5 "$W/postfix.log" 2>/dev/null)"
wait_listen "${PORT[sk]}"
wait_listen "${PORT[pf]}"

server_pids() { if [ "$1" = smtpkit ]; then echo "$SK_PID"; else pf_pids; fi; }
target() { if [ "$1" = smtpkit ]; then echo "127.0.0.1:${PORT[sk]}"; else echo "127.0.0.1:${PORT[pf]}"; fi; }
sink_of() { if [ "$1" = smtpkit ]; then echo sksink; else echo pfsink; fi; }
# queue_files SERVER: messages in the server's queue (smtpkit: its
# smtpkit_queue_messages gauge — a small message may be a journal record
# without files yet; Postfix: incoming, active, deferred and hold files)
queue_files() {
	if [ "$1" = smtpkit ]; then
		local v
		v=$(curl -s --max-time 5 "http://127.0.0.1:${PORT[http]}/metrics" 2>/dev/null | awk '$1 == "smtpkit_queue_messages" {printf "%d", $2}')
		echo "${v:-0}"
	else
		find "$W/pf-queue/incoming" "$W/pf-queue/active" "$W/pf-queue/deferred" "$W/pf-queue/hold" -type f 2>/dev/null | wc -l
	fi
}

# relay_run SERVER N SESSIONS SIZE: one round. Sets R_SECS (first message
# sent to the N-th received by the sink), R_ACCEPT (seconds until
# smtp-source had all N answered), R_DURING (messages the sink had when the
# client finished), R_DEPTH (peak queue files), R_CPU (ticks), R_PSS (kB).
relay_run() {
	local srv=$1 n=$2 s=$3 size=$4 sink base pids c0 t0 i=0 got=0 peak=0 depth=0 q p last= stall=0
	sink=$(sink_of "$srv")
	base=$(sink_count "$sink")
	pids=$(server_pids "$srv")
	c0=$(cpu_ticks $pids)
	R_ACCEPT= R_DURING=
	local prof=
	if [ -n "$PROFILE" ] && [ "$srv" = smtpkit ]; then
		mkdir -p "$PROFILE"
		curl -s --max-time $((PROFILE_SECS + 30)) -o "$PROFILE/$size-$s-$n-$(date +%H%M%S).pprof" \
			"http://127.0.0.1:${PORT[http]}/debug/pprof/profile?seconds=$PROFILE_SECS" &
		prof=$!
		PIDS+=("$prof")
	fi
	t0=$(now)
	smtp-source -s "$s" -m "$n" -l "$size" -d -f "$FROM" -t "$RCPT" "$(target "$srv")" >"$W/client.out" 2>&1 &
	local cpid=$! limit=$((12000 + n / 5)) # 0.05 s polls: 10 minutes plus 0.01 s a message
	PIDS+=("$cpid")
	while [ $i -lt $limit ]; do
		got=$(( $(sink_count "$sink") - base ))
		if [ -z "$R_ACCEPT" ] && ! kill -0 "$cpid" 2>/dev/null; then
			R_ACCEPT=$(echo "$(now) - $t0" | bc -l) R_DURING=$got
		fi
		[ "$got" -ge "$n" ] && break
		if [ "$got" != "$last" ]; then last=$got stall=0; else stall=$((stall + 1)); fi
		[ -n "$R_ACCEPT" ] && [ "$stall" -ge 400 ] && break # 20 s without progress after the client is done
		if [ $((i % 10)) = 0 ]; then
			q=$(queue_files "$srv"); [ "$q" -gt "$depth" ] && depth=$q
			p=$(pss_kb $(server_pids "$srv")); [ "$p" -gt "$peak" ] && peak=$p
		fi
		sleep 0.05
		i=$((i + 1))
	done
	R_SECS=$(echo "$(now) - $t0" | bc -l)
	[ -n "$R_ACCEPT" ] || { R_ACCEPT=$R_SECS R_DURING=$got; }
	reap "$cpid" || log "client exited with an error: $(tail -3 "$W/client.out" | tr '\n' ' ')"
	R_CPU=$(( $(cpu_ticks $(server_pids "$srv")) - c0 ))
	[ -z "$prof" ] || reap "$prof" || log "no CPU profile"
	p=$(pss_kb $(server_pids "$srv")); [ "$p" -gt "$peak" ] && peak=$p
	R_PSS=$peak R_DEPTH=$depth
	[ "$got" -ge "$n" ] || log "WARNING: $srv: the sink got only $got of $n"
}

ROWS=()
# relay_pair NAME N SESSIONS SIZE [ROUNDS]: rounds alternating which server
# goes first; adds a table row of medians.
relay_pair() {
	local name=$1 n=$2 s=$3 size=$4 rounds=${5:-$REPEAT} rep srv order sk pf
	wanted "$name" || return 0
	local -A secs=() during=() depth=() cpu=() pss=() acc=()
	local ratios=()
	for rep in $(seq 1 "$rounds"); do
		order="smtpkit postfix"; [ $((rep % 2)) = 0 ] && order="postfix smtpkit"
		for srv in $order; do
			log "$name: $srv (round $rep)"
			relay_run "$srv" "$n" "$s" "$size"
			secs[$srv]+="$R_SECS " acc[$srv]+="$R_ACCEPT " depth[$srv]+="$R_DEPTH " cpu[$srv]+="$R_CPU " pss[$srv]+="$R_PSS "
			# delivery rate while accepting, as a share of the accept rate
			during[$srv]+="$(echo "$R_DURING / $n" | bc -l) "
			[ "$srv" = smtpkit ] && sk=$R_SECS || pf=$R_SECS
		done
		ratios+=("$(echo "$pf / $sk" | bc -l)")
	done
	ROWS+=("$(printf '| %s | %d | %.0f | %.0f | **%.2f** (%s) | %.0f / %.0f | %.0f%% / %.0f%% | %.0f / %.0f | %.2f / %.2f | %.0f / %.0f |' \
		"$name" "$n" \
		"$(echo "$n / $(median ${secs[smtpkit]})" | bc -l)" "$(echo "$n / $(median ${secs[postfix]})" | bc -l)" \
		"$(median "${ratios[@]}")" "$(minmax "${ratios[@]}")" \
		"$(echo "$n / $(median ${acc[smtpkit]})" | bc -l)" "$(echo "$n / $(median ${acc[postfix]})" | bc -l)" \
		"$(echo "100 * $(median ${during[smtpkit]})" | bc -l)" "$(echo "100 * $(median ${during[postfix]})" | bc -l)" \
		"$(median ${depth[smtpkit]})" "$(median ${depth[postfix]})" \
		"$(echo "$(median ${cpu[smtpkit]}) / $CLK_TCK / $n * 1000" | bc -l)" "$(echo "$(median ${cpu[postfix]}) / $CLK_TCK / $n * 1000" | bc -l)" \
		"$(echo "$(median ${pss[smtpkit]}) / 1024" | bc -l)" "$(echo "$(median ${pss[postfix]}) / 1024" | bc -l)")")
	log "${ROWS[-1]}"
}

# warm-up
for srv in smtpkit postfix; do relay_run "$srv" 40 4 1024; done

# name|messages|sessions|size|rounds
SCENARIOS=(
	"1 KB, 20 sessions|$(scaled 10000)|20|1024|"
	"1 KB, 100 sessions|$(scaled 10000)|100|1024|"
	"100 KB, 20 sessions|$(scaled 10000)|20|102400|"
	"100 KB, 100 sessions|$(scaled 10000)|100|102400|"
	"1 KB, 20 sessions, 100k|$(scaled 100000)|20|1024|1"
)
for sc in "${SCENARIOS[@]}"; do
	IFS='|' read -r name n s size rounds <<<"$sc"
	relay_pair "$name" "$n" "$s" "$size" "${rounds:-$REPEAT}"
done

# --- queue depth: the same relay load with D deferred messages held --------
# D messages to deferred.example (the dead port: refused, deferred for the
# retry delay of 5 minutes on both) fill each queue first; then a 1 KB,
# 20-session relay round measures what a delivery costs with them there.
DEPTH_ROWS=()
fill_deferred() { # fill_deferred SERVER COUNT: waits until COUNT more are in the queue
	local srv=$1 n=$2 before i=0
	before=$(queue_files "$srv")
	smtp-source -s 20 -m "$n" -l 1024 -d -f "$FROM" -t "user@deferred.example" "$(target "$srv")" >"$W/fill.out" 2>&1 ||
		log "fill: smtp-source failed: $(tail -1 "$W/fill.out")"
	while [ "$(queue_files "$srv")" -lt $((before + n)) ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
if [ -n "$DEPTH" ] && wanted "queue depth"; then
	held=0
	m=$(scaled 4000)
	for d in $DEPTH; do
		d=$(scaled "$d")
		for srv in smtpkit postfix; do
			log "queue depth $d: filling $srv with $((d - held)) deferred messages"
			fill_deferred "$srv" $((d - held))
		done
		held=$d
		rates=() sk= pf=
		for rep in $(seq 1 "$REPEAT"); do
			order="smtpkit postfix"; [ $((rep % 2)) = 0 ] && order="postfix smtpkit"
			for srv in $order; do
				log "queue depth $d: $srv (round $rep)"
				relay_run "$srv" "$m" 20 1024
				[ "$srv" = smtpkit ] && sk+="$R_SECS " || pf+="$R_SECS "
			done
		done
		DEPTH_ROWS+=("$(printf '| %d | %d | %.0f | %.0f | %.0f | %.0f |' "$d" "$m" \
			"$(echo "1000000 * $(median $sk) / $m" | bc -l)" "$(echo "1000000 * $(median $pf) / $m" | bc -l)" \
			"$(echo "$m / $(median $sk)" | bc -l)" "$(echo "$m / $(median $pf)" | bc -l)")")
		log "${DEPTH_ROWS[-1]}"
	done
fi

mkdir -p "$(dirname "$OUT")"
{
	echo "# smtpkit vs Postfix — the relay path (latest run)"
	echo
	echo "Generated by \`bench/relay.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); smtpkit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'), $(postconf -h mail_version | sed 's/^/Postfix /')."
	echo "Machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -sr); disk $(df -hT "$W" | awk 'NR==2 {print $1, $2}'). Shared with other work: expect noise."
	echo
	echo "smtp-source (\`-d\`: many messages per session) hands mail from 127.0.0.1 to each server, which relays"
	echo "it (smtpkit: trusted_networks, the default loopback; Postfix: mynetworks + relayhost) to its own"
	echo "downstream smtp-sink. Both answer 250 only once the message is on stable storage; delivery uses each"
	echo "server's defaults. end-to-end = messages / seconds from the first message sent until the sink had the"
	echo "last (median of $REPEAT rounds, alternating which server went first, unless the row says 1);"
	echo "ratio = median of per-round ratios, range in brackets; accept = messages / seconds until smtp-source"
	echo "had every 250; delivered while accepting = share of the messages the sink had when the client finished;"
	echo "peak queue = most message files seen in the queue directory (sampled every 0.5 s); CPU s/1k ="
	echo "server CPU per 1,000 messages; PSS = peak proportional set size of the server's processes."
	echo
	echo "| load | messages | smtpkit msgs/s end-to-end | Postfix msgs/s | smtpkit/Postfix | accept msgs/s smtpkit / Postfix | delivered while accepting smtpkit / Postfix | peak queue smtpkit / Postfix | CPU s/1k smtpkit / Postfix | peak PSS MB smtpkit / Postfix |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${ROWS[@]}"
	if [ ${#DEPTH_ROWS[@]} -gt 0 ]; then
		echo
		echo "## Queue depth: time per delivery with deferred messages held"
		echo
		echo "The queue first holds the given number of deferred messages (to a port that refuses connections;"
		echo "neither server retries them within the run), then a 1 KB, 20-session relay round of the given size"
		echo "runs; µs per delivery = end-to-end seconds / messages (median of $REPEAT rounds)."
		echo
		echo "| deferred held | messages | smtpkit µs/delivery | Postfix µs/delivery | smtpkit msgs/s | Postfix msgs/s |"
		echo "|---:|---:|---:|---:|---:|---:|"
		printf '%s\n' "${DEPTH_ROWS[@]}"
	fi
} >"$OUT"
cat "$OUT"
log "wrote $OUT"
