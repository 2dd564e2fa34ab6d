#!/usr/bin/env bash
# test.sh is the project's one test command (README "Testing"): it installs
# the interop peers, checks gofmt, vets, runs every test with the race detector, then gives
# each fuzz target a short bounded run. It exits non-zero when any step fails
# and ends with one line: "test.sh: N passed, M failed" (counting steps).
#
# Environment:
#   FUZZTIME  time per fuzz target (default 5s; "0" skips fuzzing)
#   CI        exported to the tests; with CI=true a missing peer is a failure
set -uo pipefail

cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
if [ -n "${CI:-}" ]; then
	export CI
fi
fuzztime="${FUZZTIME:-5s}"

passed=0
failed=0
failures=()

# step runs one command as a counted step: NAME CMD...
step() {
	local name="$1"
	shift
	echo "=== test.sh: $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "--- test.sh: FAILED: $name"
	fi
}

# gofmtClean fails when a Go file is not gofmt-formatted (listing it).
gofmtClean() {
	local files
	files=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	[ -z "$files" ] && return 0
	printf 'not gofmt-formatted: %s\n' $files
	return 1
}

step "install test dependencies" ./scripts/install-test-deps.sh
step "gofmt" gofmtClean
step "go vet" go vet ./...
# -timeout: the interop package alone runs past go test's default 10m under
# -race on 2 cores.
step "go test -race" go test -race -count=1 -timeout 30m ./...

# debPackage builds the .deb, installs it on this machine, smoke-tests and
# purges it (packaging/deb/deb_test.go): alone, after the parallel tests,
# because it installs /etc/smtpkit, a user and the sendmail alternative.
debPackage() {
	if [ "$(id -u)" -ne 0 ]; then
		sudo env SMTPKIT_DEB_TEST=1 PATH="$PATH" go test -count=1 -v -run TestDebianPackage ./packaging/deb/
	else
		SMTPKIT_DEB_TEST=1 go test -count=1 -v -run TestDebianPackage ./packaging/deb/
	fi
}
step "deb package" debPackage

# fuzzTargets prints "pkg Name" for every fuzz target. `go test -list`
# prints a package's matching names, then "ok <pkg> <time>".
fuzzTargets() {
	go test -list '^Fuzz' ./... 2>/dev/null | awk '
		/^Fuzz[A-Za-z0-9_]*$/ { names[n++] = $0; next }
		/^ok[ \t]/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0; next }
		{ n = 0 }'
}

# fuzzOne runs one fuzz target. Go's fuzzing coordinator sometimes ends a
# run with "context deadline exceeded" when -fuzztime runs out while a
# worker is busy, without any failing input; that run is repeated once. A
# real finding ("Failing input written to ...") fails at once.
fuzzOne() {
	local pkg=$1 name=$2 out
	for attempt in 1 2; do
		out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s "$pkg" 2>&1)
		local rc=$?
		printf '%s\n' "$out" | grep -v '^fuzz: elapsed'
		[ "$rc" -eq 0 ] && return 0
		if grep -q 'Failing input written' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
			return "$rc"
		fi
		echo "test.sh: $name: fuzzing stopped without a finding (context deadline exceeded); once more"
	done
	return 1
}

if [ "$fuzztime" != "0" ]; then
	targets="$(fuzzTargets)"
	while read -r pkg name; do
		[ -n "${name:-}" ] || continue
		step "fuzz $pkg $name ($fuzztime)" fuzzOne "$pkg" "$name"
	done <<<"$targets"
fi

if [ "$failed" -gt 0 ]; then
	printf 'test.sh: failed step: %s\n' "${failures[@]}"
fi
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
