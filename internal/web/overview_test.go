package web

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/certs"
	"smtpkit/internal/metrics"
	"smtpkit/internal/queue"
	"smtpkit/internal/tlsrpt"
)

// TestOverview: the overview shows the listeners, the certificates with
// their expiry, the queue counts, the last deliveries (from the metrics
// courier wrapper around a real queue run), the TLS-RPT counters and the
// accounts with their admin mark.
func TestOverview(t *testing.T) {
	dir := t.TempDir()
	pair, _, err := certs.EnsureSelfSigned(filepath.Join(dir, "tls"), []string{"mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := certs.Load([]certs.Pair{pair})
	if err != nil {
		t.Fatal(err)
	}
	rpt, err := tlsrpt.NewStore(tlsrpt.StoreOptions{Dir: filepath.Join(dir, "tlsrpt"), Now: time.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer rpt.Close()
	rpt.Record(tlsrpt.Session{Domain: "example.net", Policy: tlsrpt.PolicySTS, MXHost: "mx.example.net", Result: tlsrpt.CertificateExpired})
	m := metrics.New(metrics.Options{NoRuntime: true})
	e := newEnv(t, Options{
		Deliveries:   m,
		TLSReports:   rpt,
		Certificates: store.Certificates,
		Listeners: func() []Listener {
			return []Listener{{Address: "127.17.7.1:25", Role: "mx", TLS: "opportunistic", Auth: "no"}}
		},
	})
	// The page's clock is fixed; the certificate expires a year from now.
	e.clk.t = time.Now()
	id := e.enqueue(t, "bob@example.net")
	// One attempt through the counting wrapper, as serve wires it.
	q2, err := queue.Open(queue.Options{Dir: filepath.Join(dir, "q2"), Courier: m.Courier(deferAll{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	e2 := &env{q: q2}
	id2 := e2.enqueue(t, "dave@example.org")
	if n := q2.RunOnce(context.Background()); n != 1 {
		t.Fatalf("%d attempts", n)
	}
	b := e.browser(t)
	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
	page := body(t, b.do("GET", "/", nil))
	for _, want := range []string{
		"127.17.7.1:25", "opportunistic", // listener
		"mx.example.com", "(default)", pair.Cert, // certificate
		`<a href="/queue">1 messages</a>`,                         // queue
		id2, "dave@example.org", "temporary_failure", "try later", // last delivery
		"example.net", "sts", "certificate-expired", // TLS-RPT
		"alice@example.com", "root@example.com</td><td>admin", // accounts
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
	if strings.Contains(page, "<script") {
		t.Error("the page has a script")
	}
	_ = id
}
