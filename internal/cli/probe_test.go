package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/server"
)

func runProbeArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(append([]string{"probe"}, args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestProbeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no host", nil, "no HOST given"},
		{"two modes", []string{"--starttls", "--no-tls", "127.0.0.1"}, "exclude each other"},
		{"no-tls with require", []string{"--no-tls", "--require-tls", "127.0.0.1"}, "cannot meet"},
		{"bad timeout", []string{"--timeout", "0s", "127.0.0.1"}, "--timeout must be positive"},
		{"bad port", []string{"127.0.0.1:99999"}, "port must be a number"},
		{"bad host", []string{"exa mple"}, "invalid character"},
		{"missing --ca", []string{"--ca", filepath.Join(dir, "none.pem"), "127.0.0.1"}, "--ca"},
		{"--ca without PEM", []string{"--ca", notPEM, "127.0.0.1"}, "no PEM certificate"},
		{"unknown flag", []string{"--frobnicate", "127.0.0.1"}, "flag provided but not defined"},
		{"--smuggling without --rcpt", []string{"--smuggling", "127.0.0.1:25"}, "needs --rcpt"},
		{"--rcpt without --smuggling", []string{"--rcpt", "postmaster@x.test", "127.0.0.1:25"}, "--rcpt is for --smuggling"},
		{"--smuggling, bad --rcpt", []string{"--smuggling", "--rcpt", "not an address", "127.0.0.1:25"}, "not a mailbox"},
		{"--smuggling on a domain", []string{"--smuggling", "--rcpt", "postmaster@x.test", "x.test"}, "give HOST:PORT"},
		{"--smuggling on four ports", []string{"--smuggling", "--rcpt", "postmaster@x.test", "127.0.0.1"}, "give HOST:PORT"},
		{"--smuggling with a requirement", []string{"--smuggling", "--rcpt", "postmaster@x.test", "--require-tls", "127.0.0.1:25"}, "own verdict"},
	}
	for _, tt := range tests {
		code, _, stderr := runProbeArgs(tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, stderr, tt.want)
		}
	}
}

func TestProbeHelp(t *testing.T) {
	code, _, stderr := runProbeArgs("-h")
	if code != 0 || !strings.Contains(stderr, "Exit status") || !strings.Contains(stderr, "-require-valid-cert") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	addr := closedAddr(t)
	code, out, _ := runProbeArgs(addr)
	if code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colors written to a buffer:\n%q", out)
	}
}

// TestProbePlaintextServer runs the command against a small plaintext SMTP
// listener: flags after the host, JSON, and the exit statuses of the two
// requirements.
func TestProbePlaintextServer(t *testing.T) {
	addr := plainSMTP(t)
	tests := []struct {
		args []string
		code int
	}{
		{[]string{addr}, 0},
		{[]string{addr, "--require-tls"}, 3},
		{[]string{"--require-valid-cert", addr}, 4},
		{[]string{addr, closedAddr(t), "--require-tls"}, 3},
		{[]string{"--no-tls", addr}, 0},
	}
	for _, tt := range tests {
		code, out, stderr := runProbeArgs(append(tt.args, "--timeout", "5s", "--ehlo", "cli.test")...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tt.args, code, tt.code, out, stderr)
		}
	}

	code, out, _ := runProbeArgs("--json", "-v", "--ehlo", "cli.test", addr)
	var rep struct {
		Results []struct {
			Address         string   `json:"address"`
			Banner          string   `json:"banner"`
			StartTLSOffered bool     `json:"starttls_offered"`
			AuthBeforeTLS   []string `json:"auth_before_tls"`
			TLS             *struct{}
			Warnings        []string `json:"warnings"`
			Transcript      []string `json:"transcript"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Results) != 1 {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	r := rep.Results[0]
	if r.Address != addr || r.Banner != "220 plain.test ESMTP" || r.StartTLSOffered || r.TLS != nil ||
		len(r.AuthBeforeTLS) != 1 || len(r.Warnings) != 2 || !contains(r.Transcript, "C: EHLO cli.test") {
		t.Errorf("%+v", r)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// plainSMTP serves a minimal plaintext SMTP dialogue (no STARTTLS, AUTH
// offered) on loopback until the test ends.
func plainSMTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				nc.Write([]byte("220 plain.test ESMTP\r\n"))
				r := bufio.NewReader(nc)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case strings.HasPrefix(line, "EHLO "):
						nc.Write([]byte("250-plain.test\r\n250-SIZE 1000\r\n250 AUTH PLAIN\r\n"))
					case line == "QUIT\r\n":
						nc.Write([]byte("221 bye\r\n"))
						return
					default:
						nc.Write([]byte("502 no\r\n"))
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestProbeDomain: a domain is probed where the queue would deliver it,
// with the router built from the configuration like the queue's: a static
// route to the plaintext listener, and an MX record (from a loopback DNS
// server named as outbound.resolver) pointing at the same listener.
func TestProbeDomain(t *testing.T) {
	addr := plainSMTP(t)
	_, port, _ := net.SplitHostPort(addr)
	resolver := dnstest.NewServer(t, "mx.test. MX 10 mx1.mx.test.", "mx1.mx.test. A 127.0.0.1", "nullmx.test. MX 0 .")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "smtpkit.toml")
	os.WriteFile(cfg, []byte(`hostname = "probe.cli.test"
data_dir = "`+dir+`"
[[domain]]
name = "cli.test"
[tls]
self_signed = true
[outbound]
tls = "verify"
resolver = "`+resolver+`"
port = `+port+`
allow_loopback = true
[[route]]
domain = "routed.test"
host = "`+addr+`"
tls = "none"
`), 0o600)

	code, out, stderr := runProbeArgs("--json", "-v", "-config", cfg, "routed.test", "mx.test", "nullmx.test")
	var rep struct {
		Results []struct {
			Domain, Host, Address, IP, Route, Plan, Error string
			Pref                                          int
			Transcript                                    []string
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) != 3 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, stderr)
	}
	routed, mx, null := rep.Results[0], rep.Results[1], rep.Results[2]
	if routed.Domain != "routed.test" || routed.Route != "routed.test" || routed.Address != addr ||
		routed.Plan != "no TLS (policy none from route routed.test)" || routed.Error != "" {
		t.Errorf("static route: %+v", routed)
	}
	if mx.Host != "mx1.mx.test" || mx.Pref != 10 || mx.Address != addr || mx.Error != "" ||
		mx.Plan != "STARTTLS when offered, TLS required, certificate must be valid for mx1.mx.test (policy verify from outbound default)" {
		t.Errorf("MX: %+v", mx)
	}
	if !contains(mx.Transcript, "C: EHLO probe.cli.test") {
		t.Errorf("EHLO name is not the configured hostname: %q", mx.Transcript)
	}
	if !strings.Contains(null.Error, "556 5.1.10") || code != 1 {
		t.Errorf("null MX: exit %d, %+v", code, null)
	}
	// --host: the same name is a host again, to be probed on the four
	// ports, and no configuration is read.
	f, err := parseProbeFlags([]string{"--host", "-config", filepath.Join(dir, "none.toml"), "mx.test"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, targets, err := f.options(); err != nil || len(targets) != 1 || targets[0].Host != "mx.test" || len(targets[0].Ports) != 4 {
		t.Errorf("--host: %+v, %v", targets, err)
	}
	// A configuration that does not load is a usage error.
	if code, _, stderr := runProbeArgs("-config", filepath.Join(dir, "none.toml"), "mx.test"); code != 2 || !strings.Contains(stderr, "config") {
		t.Errorf("missing config: exit %d, %s", code, stderr)
	}
}

// TestProbeSmuggling runs the self-test from the command line against
// smtpkit's own server (internal/server, plaintext here; the TLS forms
// are internal/probe's tests): safe, exit 0, nothing accepted; and against
// a closed port: exit 1.
func TestProbeSmuggling(t *testing.T) {
	srv := server.New(server.Options{Hostname: "own.cli.test",
		Listeners: []server.Listener{{Address: "127.13.6.3:0", Role: server.RoleMX}},
		Backend:   server.Discard{}, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	addr := srv.Addrs()[0].String()

	code, out, stderr := runProbeArgs("--smuggling", "--rcpt", "postmaster@own.cli.test", "--json", "--ehlo", "cli.test", addr)
	var rep struct {
		Smuggling []struct {
			Address    string `json:"address"`
			Vulnerable bool   `json:"vulnerable"`
			Endings    []struct{ Ending, Outcome string }
			Injection  *struct{ Outcome string } `json:"starttls_injection"`
		} `json:"smuggling"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Smuggling) != 1 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, stderr)
	}
	r := rep.Smuggling[0]
	if r.Address != addr || r.Vulnerable || len(r.Endings) != 9 || r.Injection != nil {
		t.Errorf("%+v", r)
	}
	for _, e := range r.Endings {
		if e.Outcome != "rejected" {
			t.Errorf("ending %s: %s", e.Ending, e.Outcome)
		}
	}
	code, out, _ = runProbeArgs("--smuggling", "--rcpt", "postmaster@own.cli.test", "--timeout", "5s", closedAddr(t))
	if code != 1 || !strings.Contains(out, "not tested") || !strings.Contains(out, "connection refused") {
		t.Errorf("closed port: exit %d\n%s", code, out)
	}
}
