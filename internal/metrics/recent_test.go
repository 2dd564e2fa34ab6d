package metrics

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// TestRecentDeliveries: the courier wrapper keeps one event per recipient
// with its TLS plan and result, the newest first, at most RecentSize.
func TestRecentDeliveries(t *testing.T) {
	tick := time.Unix(1000, 0)
	m := New(Options{NoRuntime: true, Now: func() time.Time { tick = tick.Add(time.Second); return tick }})
	remote := queue.Remote{Host: "mx.example.org", Addr: netip.MustParseAddr("192.0.2.25")}
	inner := &scriptedCourier{m: m, results: []queue.Result{
		{Rcpt: "ok@example.org", Remote: remote, Reply: smtp.R(250, "2.0.0", "queued"),
			TLS: queue.TLS{Policy: "verify", Mechanism: "dane", Version: 0x0304}},
		{Rcpt: "later@example.org", Remote: remote, Err: smtp.E(451, "4.3.0", "try later")},
	}}
	c := m.Courier(inner)
	c.Deliver(context.Background(), &queue.Attempt{ID: "q1", From: "a@example.com", Domain: "example.org",
		Recipients: []string{"ok@example.org", "later@example.org", "missing@example.org"}})
	got := m.RecentDeliveries()
	if len(got) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(got), got)
	}
	byRcpt := map[string]Delivery{}
	for _, d := range got {
		byRcpt[d.Rcpt] = d
	}
	ok := byRcpt["ok@example.org"]
	if ok.Result != resultDelivered || ok.ID != "q1" || ok.From != "a@example.com" || ok.TLSPolicy != "verify" ||
		ok.TLSMechanism != "dane" || ok.TLSVersion != "TLS 1.3" || ok.Remote != "mx.example.org[192.0.2.25]" ||
		ok.Duration != time.Second || !strings.Contains(ok.Detail, "250") {
		t.Errorf("delivered event: %+v", ok)
	}
	if d := byRcpt["later@example.org"]; d.Result != resultTemporary || !strings.Contains(d.Detail, "try later") {
		t.Errorf("deferred event: %+v", d)
	}
	if d := byRcpt["missing@example.org"]; d.Result != resultTemporary || d.Detail == "" {
		t.Errorf("recipient without a result: %+v", d)
	}
	// More than RecentSize: the oldest drop out, the newest come first.
	inner.results = nil
	for i := range RecentSize + 5 {
		c.Deliver(context.Background(), &queue.Attempt{ID: fmt.Sprintf("m%03d", i), Recipients: []string{"x@example.net"}})
	}
	got = m.RecentDeliveries()
	if len(got) != RecentSize || got[0].ID != fmt.Sprintf("m%03d", RecentSize+4) || got[RecentSize-1].ID != "m005" {
		t.Errorf("after %d more: %d events, first %s, last %s", RecentSize+5, len(got), got[0].ID, got[len(got)-1].ID)
	}
}

// TestCertificateExpiry: the gauge reports each certificate's notAfter at
// scrape time, once per file.
func TestCertificateExpiry(t *testing.T) {
	m := New(Options{NoRuntime: true})
	exp := time.Unix(1893456000, 0)
	list := []Certificate{{File: "/etc/a.pem", Name: "mx.example.com", NotAfter: exp}, {File: "/etc/a.pem", Name: "mx.example.com", NotAfter: exp}}
	m.WatchCertificates(func() []Certificate { return list })
	const want = `
# HELP smtpkit_certificate_not_after_timestamp_seconds Expiry (notAfter, Unix time) of each certificate the TLS listeners serve, by file and first DNS name.
# TYPE smtpkit_certificate_not_after_timestamp_seconds gauge
smtpkit_certificate_not_after_timestamp_seconds{file="/etc/a.pem",name="mx.example.com"} 1.893456e+09
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "smtpkit_certificate_not_after_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	list = []Certificate{{File: "/etc/b.pem", Name: "mx2.example.com", NotAfter: exp.Add(time.Hour)}}
	if n := testutil.CollectAndCount(certCollector(func() []Certificate { return list })); n != 1 {
		t.Errorf("%d series after a reload, want 1", n)
	}
}
