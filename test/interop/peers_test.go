package interop

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// peerTimeout bounds one run of an external peer.
const peerTimeout = 30 * time.Second

// peerRun is what an external peer did.
type peerRun struct {
	Stdout, Stderr string
	Err            error // nil when the peer exited 0
}

// runPeer runs an external program with stdin, bounded by peerTimeout.
func runPeer(t *testing.T, stdin []byte, name string, args ...string) peerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v\nstdout:\n%s\nstderr:\n%s",
			name, strings.Join(args, " "), peerTimeout, out.String(), errb.String())
	}
	return peerRun{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// mustRun is runPeer that fails the test unless the peer exits 0.
func mustRun(t *testing.T, stdin []byte, name string, args ...string) peerRun {
	t.Helper()
	r := runPeer(t, stdin, name, args...)
	if r.Err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s",
			name, strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r
}

// resolveArg maps the server's hostname to addr's loopback port for curl,
// so that curl verifies the certificate against the real name without DNS.
func resolveArg(addr string) (url, resolve string) {
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	return testHostname + ":" + port, testHostname + ":" + port + ":127.0.0.1"
}
