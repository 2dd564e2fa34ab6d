package sasl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The interop tests drive GNU SASL's gsasl command (Debian package gsasl,
// an independent C implementation) over its stdin/stdout: gsasl prints the
// mechanism name, then one base64 line per message it sends, and reads one
// base64 line per message it receives. Debian 12 has no python3-scramp, so
// gsasl is the independent peer (scripts/install-test-deps.sh installs it).

// gsaslPath returns the gsasl binary, skipping the test when it is missing
// outside CI and failing it in CI.
func gsaslPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("gsasl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("gsasl is required in CI (apt-get install gsasl): %v", err)
		}
		t.Skipf("gsasl not installed: %v", err)
	}
	return path
}

// gsaslPeer is one running gsasl process.
type gsaslPeer struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

func startGsasl(t *testing.T, args ...string) *gsaslPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	p := &gsaslPeer{t: t, cmd: exec.CommandContext(ctx, gsaslPath(t), append([]string{"--no-cb", "--quiet"}, args...)...)}
	p.cmd.Env = append(os.Environ(), "LC_ALL=C")
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stdin.Close(); p.cmd.Wait() })
	return p
}

// line reads one stdout line without its newline.
func (p *gsaslPeer) line() (string, error) {
	s, err := p.stdout.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// recv reads one base64 message from gsasl.
func (p *gsaslPeer) recv() []byte {
	p.t.Helper()
	s, err := p.line()
	if err != nil {
		p.t.Fatalf("reading from gsasl: %v; stderr: %s", err, p.stderr.String())
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		p.t.Fatalf("gsasl sent %q: %v", s, err)
	}
	return b
}

// send writes one base64 message to gsasl.
func (p *gsaslPeer) send(b []byte) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, base64.StdEncoding.EncodeToString(b)+"\n"); err != nil {
		p.t.Fatalf("writing to gsasl: %v; stderr: %s", err, p.stderr.String())
	}
}

// expectMechanism reads gsasl's first line, the mechanism it uses.
func (p *gsaslPeer) expectMechanism(mech string) {
	p.t.Helper()
	if s, err := p.line(); err != nil || s != mech {
		p.t.Fatalf("gsasl mechanism line %q, %v; want %q; stderr: %s", s, err, mech, p.stderr.String())
	}
}

// wait closes stdin and returns gsasl's exit error.
func (p *gsaslPeer) wait() error {
	p.stdin.Close()
	io.Copy(io.Discard, p.stdout)
	return p.cmd.Wait()
}

// gsaslClientRun lets gsasl's client authenticate against our server and
// returns the server's final error and gsasl's exit error.
func gsaslClientRun(t *testing.T, mech, user, pass string, tamper func([]byte) []byte) (srvErr, gsaslErr error, srv Server) {
	t.Helper()
	p := startGsasl(t, "--client", "--mechanism", mech, "--authentication-id", user, "--password", pass)
	p.expectMechanism(mech)
	srv, err := NewServer(mech, testCreds())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= MaxSteps; i++ {
		msg := p.recv()
		if i == 0 && len(msg) == 0 {
			msg = nil // gsasl prints an empty line when it has no initial response
		}
		challenge, done, err := srv.Next(context.Background(), msg)
		if done {
			if err == nil {
				// gsasl reads the outcome's additional data: none.
				io.WriteString(p.stdin, "\n")
			}
			return err, p.wait(), srv
		}
		if tamper != nil && bytes.HasPrefix(challenge, []byte("v=")) {
			challenge = tamper(challenge)
		}
		p.send(challenge)
	}
	t.Fatal("exchange did not finish")
	return nil, nil, nil
}

func TestInteropGsaslClient(t *testing.T) {
	for _, tc := range []struct {
		mech, user, pass string
		err              error
	}{
		{MechScramSHA256, "alice@example.org", "s3cret", nil},
		{MechScramSHA256, "a,b=c", "pw", nil},
		{MechScramSHA256, "alice@example.org", "wrong", ErrInvalidCredentials},
		{MechScramSHA256, "nobody@example.org", "s3cret", ErrInvalidCredentials},
		{MechPlain, "alice@example.org", "s3cret", nil},
		{MechPlain, "alice@example.org", "wrong", ErrInvalidCredentials},
		{MechLogin, "alice@example.org", "s3cret", nil},
		{MechLogin, "alice@example.org", "wrong", ErrInvalidCredentials},
	} {
		t.Run(tc.mech+"/"+tc.user+"/"+tc.pass, func(t *testing.T) {
			srvErr, gsaslErr, srv := gsaslClientRun(t, tc.mech, tc.user, tc.pass, nil)
			if !errors.Is(srvErr, tc.err) || (srvErr == nil) != (tc.err == nil) {
				t.Fatalf("server error %v, want %v", srvErr, tc.err)
			}
			if tc.err == nil {
				if gsaslErr != nil {
					t.Fatalf("gsasl client failed: %v", gsaslErr)
				}
				if srv.Username() != tc.user {
					t.Fatalf("Username() = %q, want %q", srv.Username(), tc.user)
				}
			}
		})
	}
}

// TestInteropGsaslClientChecksSignature shows that gsasl's exit status is
// meaningful: a corrupted server signature makes it fail.
func TestInteropGsaslClientChecksSignature(t *testing.T) {
	flip := func(v []byte) []byte {
		sig, _ := base64.StdEncoding.DecodeString(string(v[2:]))
		sig[0] ^= 1
		return []byte("v=" + base64.StdEncoding.EncodeToString(sig))
	}
	p := startGsasl(t, "--client", "--mechanism", MechScramSHA256, "--authentication-id", "alice@example.org", "--password", "s3cret")
	p.expectMechanism(MechScramSHA256)
	srv, _ := NewServer(MechScramSHA256, testCreds())
	for i := 0; i < 2; i++ {
		challenge, done, err := srv.Next(context.Background(), p.recv())
		if done || err != nil {
			t.Fatalf("server: done=%v err=%v", done, err)
		}
		if i == 1 {
			challenge = flip(challenge)
		}
		p.send(challenge)
	}
	io.WriteString(p.stdin, "\n")
	if err := p.wait(); err == nil {
		t.Fatal("gsasl accepted a corrupted server signature")
	}
}

// gsaslServerRun lets our client authenticate against gsasl's server, which
// accepts any username with password serverPass, and returns our client's
// error and gsasl's exit error. gsasl's server stays up after success (it
// waits for more input), so the driver answers the number of challenges the
// mechanism has and then closes gsasl's input.
func gsaslServerRun(t *testing.T, client Client, serverPass string, challenges int) (clientErr, gsaslErr error) {
	t.Helper()
	mech, ir, err := client.Start()
	if err != nil {
		t.Fatal(err)
	}
	p := startGsasl(t, "--server", "--mechanism", mech, "--password", serverPass, "--iteration-count", "4096")
	p.expectMechanism(mech)
	// gsasl's server opens with its first challenge, which is empty for the
	// mechanisms where the client speaks first.
	opening := p.recv()
	if ir != nil {
		if len(opening) != 0 {
			t.Fatalf("gsasl's server opened with %q, want an empty line", opening)
		}
		p.send(ir)
	}
	for i := 0; i < challenges; i++ {
		challenge := opening
		if i > 0 || ir != nil {
			s, err := p.line()
			if err != nil { // gsasl ended the exchange early: a failure
				return nil, p.wait()
			}
			if challenge, err = base64.StdEncoding.DecodeString(s); err != nil {
				t.Fatalf("gsasl sent %q", s)
			}
		}
		resp, err := client.Next(challenge)
		if err != nil {
			return err, p.wait()
		}
		p.send(resp)
	}
	// After success gsasl prints the (empty) outcome data and reads one more
	// line: the client's empty acknowledgement, or empty application data.
	io.WriteString(p.stdin, "\n")
	return nil, p.wait()
}

func TestInteropGsaslServer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		client     Client
		serverPass string
		challenges int
		ok         bool
	}{
		{"SCRAM good", NewScramSHA256Client("alice@example.org", "s3cret"), "s3cret", 2, true},
		{"SCRAM escaped username", NewScramSHA256Client("a,b=c", "s3cret"), "s3cret", 2, true},
		{"SCRAM wrong password", NewScramSHA256Client("alice@example.org", "wrong"), "s3cret", 2, false},
		{"PLAIN good", NewPlainClient("", "alice@example.org", "s3cret"), "s3cret", 0, true},
		{"PLAIN wrong password", NewPlainClient("", "alice@example.org", "wrong"), "s3cret", 0, false},
		{"LOGIN good", NewLoginClient("alice@example.org", "s3cret"), "s3cret", 2, true},
		{"LOGIN wrong password", NewLoginClient("alice@example.org", "wrong"), "s3cret", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientErr, gsaslErr := gsaslServerRun(t, tc.client, tc.serverPass, tc.challenges)
			if clientErr != nil {
				t.Fatalf("our client failed: %v", clientErr)
			}
			if (gsaslErr == nil) != tc.ok {
				t.Fatalf("gsasl server exit %v, want success=%v", gsaslErr, tc.ok)
			}
		})
	}
}

// TestInteropGsaslMkpasswd compares NewScramKeys with gsasl's derivation.
func TestInteropGsaslMkpasswd(t *testing.T) {
	path := gsaslPath(t)
	for _, tc := range []struct {
		password, salt string
		iterations     int
	}{
		{rfcPassword, rfcSalt, 4096},
		{"s3cret with spaces!", "MDEyMzQ1Njc4OWFiY2RlZg==", 5000},
	} {
		out, err := exec.Command(path, "--mkpasswd", "--mechanism", MechScramSHA256, "--password", tc.password,
			"--salt", tc.salt, "--iteration-count", strconv.Itoa(tc.iterations)).Output()
		if err != nil {
			t.Fatalf("gsasl --mkpasswd: %v", err)
		}
		salt, _ := base64.StdEncoding.DecodeString(tc.salt)
		k := NewScramKeys(tc.password, salt, tc.iterations)
		want := "{SCRAM-SHA-256}" + strconv.Itoa(tc.iterations) + "," + tc.salt + "," +
			base64.StdEncoding.EncodeToString(k.StoredKey) + "," + base64.StdEncoding.EncodeToString(k.ServerKey)
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("gsasl: %s\nours:  %s", got, want)
		}
	}
}
