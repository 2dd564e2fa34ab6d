package authres

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"
)

// debianPython is Debian's python3, which has the modules
// scripts/install-test-deps.sh installs (python3-spf, python3-dkim), rather
// than whichever python3 comes first on PATH.
const debianPython = "/usr/bin/python3"

// python runs a script of testdata with debianPython, stdin in, stdout
// out. Without it the test skips, unless CI=true.
func python(t testing.TB, stdin []byte, script string, args ...string) []byte {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required with CI=true (scripts/install-test-deps.sh): %v", debianPython, err)
		}
		t.Skipf("%s not available (run scripts/install-test-deps.sh): %v", debianPython, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianPython, append([]string{"testdata/" + script}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 %s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// TestSPFAgainstPyspf runs the SPF table through pyspf (python3-spf) on the
// same zone: both must agree with the table, so that neither the table
// nor our adapter onto internal/dns hides a mistake.
func TestSPFAgainstPyspf(t *testing.T) {
	srv, res := startZone(t, spfZone)
	type pyCase struct {
		IP     string `json:"ip"`
		Sender string `json:"sender"`
		Helo   string `json:"helo"`
	}
	var in []pyCase
	for _, tc := range spfCases {
		sender := tc.from
		if sender == "" {
			sender = "postmaster@" + tc.helo
		}
		in = append(in, pyCase{tc.ip, sender, tc.helo})
	}
	b, _ := json.Marshal(in)
	var got []string
	if err := json.Unmarshal(python(t, b, "spf_oracle.py", srv.Addr), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(spfCases) {
		t.Fatalf("pyspf gave %d results for %d cases", len(got), len(spfCases))
	}
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	for i, tc := range spfCases {
		ours := verify(t, v, tc.ip, tc.helo, tc.from, "").SPF
		if got[i] != tc.want || ours != got[i] {
			t.Errorf("%s: pyspf %q, ours %q, table %q", tc.name, got[i], ours, tc.want)
		}
	}
}
