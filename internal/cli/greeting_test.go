package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/server"
	"smtpkit/internal/testcert"
)

// startSubmissions runs smtpkit's own server with one listener of each
// kind on 127.17.5.1 (implicit TLS on :0, STARTTLS on :0) with a
// certificate for "mail.test", discarding mail; it returns the two
// addresses and the certificate.
func startSubmissions(t *testing.T) (implicit, starttls string, cert tls.Certificate) {
	t.Helper()
	cert = testcert.New(t, "mail.test")
	cfg := testcert.ServerConfig(cert)
	srv := server.New(server.Options{Hostname: "mail.test", Backend: server.Discard{}, Listeners: []server.Listener{
		{Address: "127.17.5.1:0", Role: server.RoleSubmissions, TLS: server.TLSImplicit, TLSConfig: cfg},
		{Address: "127.17.5.1:0", Role: server.RoleMX, TLS: server.TLSOpportunistic, TLSConfig: cfg},
	}})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	a := srv.Addrs()
	return a[0].String(), a[1].String(), cert
}

func runMain(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// TestSendImplicitTLSHint: send without --tls to a port that speaks
// implicit TLS gives up after the greeting timeout and names --tls
// implicit; sendmail names SMTPKIT_TLS=implicit; with the setting both
// get through. Without --ca the x509 error names --ca and --insecure
// (issue #19).
func TestSendImplicitTLSHint(t *testing.T) {
	implicit, starttls, cert := startSubmissions(t)
	caFile, _ := testcert.WriteFiles(t, cert, t.TempDir())
	base := []string{"send", "--server", implicit, "--servername", "mail.test", "--from", "a@client.test", "--to", "b@mail.test", "--body", "hi"}

	start := time.Now()
	code, _, stderr := runMain("", append(base, "--greeting-timeout", "500ms", "--ca", caFile)...)
	if code != sendExitConnect || !strings.Contains(stderr, "no greeting from "+implicit+" within 500ms") || !strings.Contains(stderr, "use --tls implicit") {
		t.Errorf("send without --tls: exit %d\n%s", code, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("send took %v to give up", d)
	}
	// With the flag: connected over TLS (the submissions port then wants
	// AUTH before MAIL, so the sender is refused: exit 1, not 3).
	connected := "connected to " + implicit + " with TLS"
	if code, out, stderr := runMain("", append(base, "--tls", "implicit", "--ca", caFile)...); code != sendExitRefused || !strings.Contains(out, connected) {
		t.Errorf("send --tls implicit: exit %d\n%s\n%s", code, out, stderr)
	}
	// No --ca: the self-made certificate is not trusted; the message says what to do.
	code, _, stderr = runMain("", append(base, "--tls", "implicit")...)
	if code != sendExitConnect || !strings.Contains(stderr, "--ca FILE") || !strings.Contains(stderr, "--insecure") {
		t.Errorf("send without --ca: exit %d\n%s", code, stderr)
	}
	if code, out, stderr := runMain("", append(base, "--tls", "implicit", "--insecure")...); code != sendExitRefused || !strings.Contains(out, connected) {
		t.Errorf("send --insecure: exit %d\n%s\n%s", code, out, stderr)
	}
	// STARTTLS port, wrong name: the hint names --servername.
	code, _, stderr = runMain("", "send", "--server", starttls, "--servername", "other.test", "--ca", caFile,
		"--from", "a@client.test", "--to", "b@mail.test", "--body", "hi")
	if code != sendExitConnect || !strings.Contains(stderr, "--servername NAME") {
		t.Errorf("send with the wrong name: exit %d\n%s", code, stderr)
	}

	// The other way round: --tls implicit to a STARTTLS port.
	code, _, stderr = runMain("", "send", "--server", starttls, "--tls", "implicit", "--servername", "mail.test", "--ca", caFile,
		"--from", "a@client.test", "--to", "b@mail.test", "--body", "hi")
	if code != sendExitConnect || !strings.Contains(stderr, "use --tls starttls") {
		t.Errorf("send --tls implicit to a STARTTLS port: exit %d\n%s", code, stderr)
	}

	// sendmail through SMTPKIT_SUBMIT; no AUTH offered before TLS, so
	// the failure is the greeting's.
	t.Setenv("SMTPKIT_SUBMIT", implicit)
	t.Setenv("SMTPKIT_SERVERNAME", "mail.test")
	t.Setenv("SMTPKIT_CA", caFile)
	t.Setenv("SMTPKIT_USER", "a@mail.test")
	t.Setenv("SMTPKIT_PASSWORD", "pw")
	t.Setenv("SMTPKIT_GREETING_TIMEOUT", "500ms")
	t.Setenv("SMTPKIT_TLS", "")
	code, _, stderr = runMain("Subject: x\n\nhi\n", "sendmail", "b@mail.test")
	if code != exTempFail || !strings.Contains(stderr, "no greeting from") || !strings.Contains(stderr, "SMTPKIT_TLS=implicit") {
		t.Errorf("sendmail without SMTPKIT_TLS: exit %d\n%s", code, stderr)
	}
	t.Setenv("SMTPKIT_TLS", "implicit")
	code, _, stderr = runMain("Subject: x\n\nhi\n", "sendmail", "b@mail.test")
	if strings.Contains(stderr, "no greeting") || !strings.Contains(stderr, "auth") && !strings.Contains(stderr, "AUTH") {
		// The server has no credentials: AUTH fails, after TLS and the greeting.
		t.Errorf("sendmail with SMTPKIT_TLS=implicit: exit %d\n%s", code, stderr)
	}
}
