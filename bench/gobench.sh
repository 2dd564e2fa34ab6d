#!/usr/bin/env bash
# bench/gobench.sh — run every Go benchmark under internal/ and save the
# output in benchstat format (bench/results/go-bench.txt). Compare two runs
# with `benchstat old.txt new.txt` (golang.org/x/perf/cmd/benchstat).
# Env: COUNT (default 5), BENCHTIME (default 1s), OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
OUT=${OUT:-$ROOT/bench/results/go-bench.txt}
cd "$ROOT"
# Only the packages that have benchmarks, so that a package another
# engineer is editing does not stop the run.
mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Benchmark' internal | xargs -n1 dirname | sort -u | sed 's|^|./|')
[ "${#pkgs[@]}" -gt 0 ] || { echo "no benchmarks found" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
	echo "# go test -run '^\$' -bench . -benchmem -count $COUNT -benchtime $BENCHTIME"
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(go version | cut -d' ' -f3-)"
	echo "# $(nproc) CPUs, shared machine (other tests were running): compare runs with benchstat, not single numbers"
} >"$tmp"
rc=0
go test -run '^$' -bench . -benchmem -count "$COUNT" -benchtime "$BENCHTIME" "${pkgs[@]}" | tee -a "$tmp" || rc=$?
mkdir -p "$(dirname "$OUT")"
mv "$tmp" "$OUT"
trap - EXIT
echo "wrote $OUT" >&2
[ "$rc" = 0 ] || echo "some benchmarks failed (see FAIL lines in $OUT)" >&2
exit "$rc"
