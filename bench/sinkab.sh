#!/usr/bin/env bash
# bench/sinkab.sh — Postfix's smtp-sink against smtpkit's sink listener,
# alternating, under the load of bench/run.sh's sink row: smtp-source, 20
# sessions, 1 KB, many messages per session, no pipelining. Prints each
# run's msgs/s, the ratio smtpkit/smtp-sink, and each server's CPU time
# (user+system) per message, which is steadier than msgs/s on a shared
# machine.
#
# Usage: bench/sinkab.sh [BINARY [BINARY_B]]   (default: builds ./cmd/smtpkit)
#        With BINARY_B, every round also runs B right after A, so that a
#        change is judged against the same moment's load.
# Env:   N=40000 messages a run, ROUNDS=3, LEVEL=info (smtpkit's log level,
#        the one bench/run.sh uses), PERF=1 samples the first smtpkit with
#        perf during one extra run and prints the top of the profile
#        (PERF_DATA=file keeps the samples).
# Every process this script starts is stopped by its PID on exit. The
# machine is shared: numbers are noisy, compare ratios of adjacent runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-40000}
ROUNDS=${ROUNDS:-3}
LEVEL=${LEVEL:-info}
FROM=sender@client.example
RCPT=user@bench.example

W=$(mktemp -d /tmp/smtpkit-sinkab.XXXXXX)
chmod 755 "$W"
PIDS=()
SKS=()
SK_PORTS=()
cleanup() {
	set +e
	for i in "${!SKS[@]}"; do
		kill -0 "${SKS[$i]}" 2>/dev/null || { echo "smtpkit $i exited early:" >&2; tail -20 "$W/$i.log" "$W/$i.out" >&2; }
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT

die() { echo "$*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
CLK_TCK=$(getconf CLK_TCK)
# rate PORT PID: msgs/s of one smtp-source run against 127.0.0.1:PORT,
# then the server's (PID) CPU time per message in µs.
rate() {
	local t0 c0
	c0=$(cpu_ticks "$2")
	t0=$(now)
	smtp-source -s 20 -m "$N" -l 1024 -d -f "$FROM" -t "$RCPT" "127.0.0.1:$1" >/dev/null 2>&1 || echo "smtp-source to port $1 failed" >&2
	printf '%.0f %.1f' "$(echo "$N / ($(now) - $t0)" | bc -l)" "$(echo "($(cpu_ticks "$2") - $c0) * 1000000 / $CLK_TCK / $N" | bc -l)"
}

# start_smtpkit I BINARY: a sink listener; sets SKS[I] and SK_PORTS[I].
start_smtpkit() {
	local i=$1 port
	port=$(free_port)
	for p in "${SK_PORTS[@]}"; do [ "$p" = "$port" ] && port=$(free_port); done
	cat >"$W/$i.toml" <<EOF
hostname = "bench-smtpkit.example"
data_dir = "$W/data$i"
[log]
level = "$LEVEL"
[[domain]]
name = "bench.example"
[[listener]]
address = "127.0.0.1:$port"
role = "sink"
tls = "none"
[limits]
connections = 20000
connections_per_ip = 20000
connection_rate = 100000000
session_recipients = 100000000
EOF
	"$2" serve -config "$W/$i.toml" >"$W/$i.out" 2>>"$W/$i.log" &
	SKS[i]=$!
	PIDS+=("$!")
	wait_listen "$port"
	SK_PORTS[i]=$port
}

BINS=("${1:-}")
if [ -z "${BINS[0]}" ]; then
	BINS[0]=$W/smtpkit
	(cd "$ROOT" && go build -o "${BINS[0]}" ./cmd/smtpkit)
fi
[ -n "${2:-}" ] && BINS+=("$2")
for i in "${!BINS[@]}"; do start_smtpkit "$i" "${BINS[$i]}"; done

PF_PORT=$(free_port)
smtp-sink -u nobody -c "127.0.0.1:$PF_PORT" 1000 >/dev/null 2>&1 &
PF=$!
PIDS+=("$PF")
wait_listen "$PF_PORT"

for i in "${!BINS[@]}"; do rate "${SK_PORTS[$i]}" "${SKS[$i]}" >/dev/null; done # warm up
hdr="round smtp-sink"
for i in "${!BINS[@]}"; do hdr+="  smtpkit$i ratio"; done
echo "$hdr   server CPU µs/msg: smtp-sink smtpkit0 [smtpkit1]"
for r in $(seq 1 "$ROUNDS"); do
	read -r a ac <<<"$(rate "$PF_PORT" "$PF")"
	line=$(printf '%-5s %9s' "$r" "$a")
	cpu=$ac
	for i in "${!BINS[@]}"; do
		read -r b bc <<<"$(rate "${SK_PORTS[$i]}" "${SKS[$i]}")"
		line+=$(printf ' %9s %5.2f' "$b" "$(echo "$b / $a" | bc -l)")
		cpu+=" $bc"
	done
	echo "$line   $cpu"
done

if [ -n "${PERF:-}" ]; then
	rate "${SK_PORTS[0]}" "${SKS[0]}" >/dev/null &
	LOAD=$!
	PIDS+=("$LOAD")
	sleep 0.3
	perf record -F 1999 --call-graph fp -p "${SKS[0]}" -o "$W/perf.data" -- sleep 2 2>/dev/null >/dev/null
	wait "$LOAD" || true
	[ -n "${PERF_DATA:-}" ] && cp "$W/perf.data" "$PERF_DATA"
	perf report -i "$W/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 0.8 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60
fi
echo "log lines: $(cat "$W"/*.log | wc -l)" >&2
