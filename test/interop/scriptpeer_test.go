package interop

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// scriptpeer_test.go: the Python peers of the interop tests (testdata/*.py:
// aiosmtpd servers for DSN, LIMITS, downgrade and SRS). Each prints
// "READY <port>" once it listens, then one line (a JSON object) for each
// thing it saw.

// startScriptPeer starts cmd, hands every line after READY to onLine (on
// the reader goroutine: onLine must lock what it shares) and returns the
// port of the READY line. The process is killed when the test ends, its
// stderr shown when the test failed.
func startScriptPeer(t *testing.T, name string, cmd *exec.Cmd, onLine func(line []byte)) (port string) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20) // decoded messages come as one line
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- p
				continue
			}
			onLine(sc.Bytes())
		}
		close(ready)
	}()
	select {
	case p, ok := <-ready:
		if !ok {
			t.Fatalf("%s exited:\n%s", name, stderr.String())
		}
		return p
	case <-time.After(outWait):
		t.Fatalf("%s not ready:\n%s", name, stderr.String())
	}
	return ""
}
