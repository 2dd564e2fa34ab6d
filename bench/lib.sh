# bench/lib.sh — helpers shared by bench/run.sh and bench/sinkab.sh, which
# source it. Each script defines die (print and exit) before using these.

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
