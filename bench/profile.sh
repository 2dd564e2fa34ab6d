#!/usr/bin/env bash
# bench/profile.sh — where does smtpkit spend its time under the
# "1 KB, 20 sessions, many messages per session" load of bench/run.sh?
# Samples the real `smtpkit serve` process with perf (Go keeps frame
# pointers on amd64 and arm64, so call graphs need no DWARF unwinding) while
# Postfix's smtp-source drives it, and writes the flat and the cumulative
# top lists to bench/results/profile.txt. Needs root (or
# kernel.perf_event_paranoid ≤ 1), perf and smtp-source.
# Env: SECONDS_TO_SAMPLE (default 20), OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SAMPLE=${SECONDS_TO_SAMPLE:-20}
OUT=${OUT:-$ROOT/bench/results/profile.txt}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
command -v smtp-source >/dev/null || { echo "smtp-source is needed (bench/run.sh installs Postfix)" >&2; exit 1; }

W=$(mktemp -d /tmp/smtpkit-profile.XXXXXX)
PIDS=()
cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$W/smtpkit" ./cmd/smtpkit)
PORT=
for _ in $(seq 1 100); do
	p=$((20000 + RANDOM % 40000))
	[ -z "$(ss -Htln "sport = :$p")" ] && { PORT=$p; break; }
done
[ -n "$PORT" ] || { echo "no free port" >&2; exit 1; }
cat >"$W/smtpkit.toml" <<TOML
hostname = "bench-smtpkit.example"
data_dir = "$W/data"
[[domain]]
name = "bench.example"
[[listener]]
address = "127.0.0.1:$PORT"
role = "mx"
tls = "none"
[limits]
connections_per_ip = 1000
connections = 1000
connection_rate = 100000000
session_recipients = 100000000
TOML
echo benchpassword | "$W/smtpkit" user add -config "$W/smtpkit.toml" user@bench.example >/dev/null 2>&1
"$W/smtpkit" serve -config "$W/smtpkit.toml" >/dev/null 2>"$W/smtpkit.log" &
SK=$!
PIDS+=("$SK")
for i in $(seq 1 100); do [ -n "$(ss -Htln "sport = :$PORT")" ] && break; [ "$i" = 100 ] && exit 1; sleep 0.1; done

# Load: rounds of 2,000 messages until the sampling is over (bounded).
# Messages stay in new/: deleting them would free inodes and make ext4's
# allocator skip "recently deleted" ones, which is the harness's cost, not
# smtpkit's.
(
	for _ in $(seq 1 200); do
		smtp-source -s 20 -m 2000 -l 1024 -d -f sender@client.example -t user@bench.example "127.0.0.1:$PORT" || exit 1
		[ -f "$W/stop" ] && exit 0
	done
) &
LOAD=$!
PIDS+=("$LOAD")
sleep 1
perf record -F 997 --call-graph fp -p "$SK" -o "$W/perf.data" -- sleep "$SAMPLE" 2>"$W/perf.err"
touch "$W/stop"
wait "$LOAD" || true
PIDS=("$SK")
{
	echo "# perf profile of smtpkit serve, 1 KB messages, 20 sessions, many per session, ${SAMPLE}s"
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD), $(nproc) CPUs (shared machine)"
	echo
	echo "## by binary: kernel vs smtpkit's own code"
	perf report -i "$W/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$'
	echo
	echo "## flat, smtpkit's own code only (self; % of all samples)"
	perf report -i "$W/perf.data" --stdio --no-children --dsos smtpkit --sort symbol -g none --percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$'
	echo
	echo "## flat: where the CPU samples land (self)"
	perf report -i "$W/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 0.7 2>/dev/null | grep -v '^$'
	echo
	echo "## cumulative: samples under each function (children included)"
	perf report -i "$W/perf.data" --stdio --children --sort symbol -g none --percent-limit 4 2>/dev/null | grep -v '^$'
} >"$OUT"
cat "$OUT"
echo "wrote $OUT" >&2
