package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/tlspolicy"
)

// TestImplicitTLSGuess: a port other than 465 that speaks implicit TLS
// gives no plaintext greeting; after GreetingWait the probe tries TLS and
// reports the port as implicit TLS, with a warning naming the flags
// (issue #19). A port that greets nobody in either way still fails.
func TestImplicitTLSGuess(t *testing.T) {
	cert := fakeCert(t)
	srv := &fakeServer{Addr: "127.17.5.2:0", Greeting: "220 fake.probe.test ESMTP\r\n", Implicit: true, EHLO: []string{"AUTH PLAIN"}}
	port := srv.start(t, cert)
	opts := testOptions()
	opts.GreetingWait = 200 * time.Millisecond
	start := time.Now()
	r := Port(context.Background(), "127.17.5.2", port, opts)
	if !r.OK() || r.TLS == nil || r.Mode != "implicit" || !strings.Contains(r.Plan, "no plaintext greeting within 200ms") {
		t.Fatalf("%+v\n%s", r, strings.Join(r.Transcript, "\n"))
	}
	wantWarning(t, r, "this port speaks implicit TLS")
	wantWarning(t, r, "--implicit-tls")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}

	// --starttls forced: no guess, the greeting wait is the whole timeout.
	opts.Mode, opts.Timeout = tlspolicy.ModeStartTLS, 400*time.Millisecond
	if r := Port(context.Background(), "127.17.5.2", port, opts); r.OK() || r.TLS != nil {
		t.Errorf("forced STARTTLS: %+v", r)
	}

	// A slow greeter (plaintext, 220 after 600ms > GreetingWait): the TLS
	// guess fails, and the plaintext probe with the whole timeout works.
	slow := &fakeServer{Addr: "127.17.5.2:0", Greeting: "220 slow.probe.test ESMTP\r\n", GreetingDelay: 600 * time.Millisecond}
	slowPort := slow.start(t, cert)
	opts = testOptions()
	opts.GreetingWait, opts.Timeout = 200*time.Millisecond, 2*time.Second
	if r := Port(context.Background(), "127.17.5.2", slowPort, opts); !r.OK() || r.Mode == "implicit" || r.Banner != "220 slow.probe.test ESMTP" {
		t.Errorf("slow greeter: %+v", r)
	}

	silent := &fakeServer{Addr: "127.17.5.2:0"}
	sport := silent.start(t, cert)
	opts = testOptions()
	opts.GreetingWait, opts.Timeout = 200*time.Millisecond, time.Second
	if r := Port(context.Background(), "127.17.5.2", sport, opts); r.OK() || !strings.HasPrefix(r.Error, "greeting") {
		t.Errorf("silent server: %+v", r)
	}
}
