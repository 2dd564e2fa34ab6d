# bench/lib.sh — helpers shared by bench/run.sh, bench/relay.sh and
# bench/sinkab.sh, which source it. Each script defines die (print and exit) before using these.

now() { date +%s.%N; }

listening() { [ -n "$(ss -Htln "sport = :$1")" ]; }

# free_port: a loopback port nothing listens on now (bounded tries).
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		listening "$p" || { echo "$p"; return; }
	done
	die "no free port"
}

# wait_listen PORT: until something listens on PORT, bounded to 10 s.
wait_listen() {
	for _ in $(seq 1 100); do listening "$1" && return; sleep 0.1; done
	die "nothing listens on port $1${W:+ (see $W)}"
}

# cpu_ticks PID...: utime+stime of each process plus cutime+cstime (children
# it has reaped: a Postfix daemon that exited is counted in the master's).
cpu_ticks() {
	local t=0 f p
	for p in "$@"; do
		f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
		# after ")": state=1 ... utime=12 stime=13 cutime=14 cstime=15
		set -- $f
		t=$((t + ${12} + ${13} + ${14} + ${15}))
	done
	echo "$t"
}

# The helpers below use the sourcing script's W (work directory), PIDS
# (processes it started), PF_CONF (its private Postfix) and SCALE.

# reap PID: wait for a process we started and forget it, so that cleanup
# never signals a PID the system has since given to someone else.
reap() {
	local p=$1 rc=0 i
	wait "$p" 2>/dev/null || rc=$?
	for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$p" ] && unset 'PIDS[i]'; done
	return $rc
}

# bench_cleanup: stop what the script started (by PID) and its private
# Postfix, then remove W unless KEEP is set. For `trap bench_cleanup EXIT`.
bench_cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -f "$PF_CONF/main.cf" ] && postfix -c "$PF_CONF" stop >/dev/null 2>&1
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ -z "${KEEP:-}" ]; then rm -rf "$W"; else log "kept $W"; fi
}

# pf_master_cf PORT: the system master.cf for a private Postfix: smtpd on
# 127.0.0.1:PORT (process limit 10100), nothing chrooted.
pf_master_cf() {
	awk -v port="$1" '
		/^#/ || /^[ \t]/ || NF < 8 { print; next }
		$1 == "smtp" && $2 == "inet" { $1 = "127.0.0.1:" port; $7 = 10100 }
		{ $5 = "n"; print }' /etc/postfix/master.cf
}

# pf_pids: the private Postfix's master and its children.
pf_pids() {
	local m
	m=$(head -1 "$W/pf-queue/pid/master.pid" 2>/dev/null | tr -d ' ')
	[ -n "$m" ] || return 0
	echo "$m"
	ps -o pid= --ppid "$m" 2>/dev/null | tr -d ' '
}

# pss_kb PID...: proportional set size, so shared pages count once.
pss_kb() {
	local t=0 p v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
minmax() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}'; }
scaled() { printf '%.0f' "$(echo "$1 * $SCALE" | bc -l)"; }
