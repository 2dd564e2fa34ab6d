package inbound

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/authres"
	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/dnsbl"
	"smtpkit/internal/greylist"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// fakeClock is a clock the greylist tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countEvents records the Events calls.
type countEvents struct {
	noEvents
	mu     sync.Mutex
	counts map[string]int
}

func (e *countEvents) DNSBLHit(z string)         { e.add("dnsbl:" + z) }
func (e *countEvents) GreylistDeferred(r string) { e.add("deferred:" + r) }
func (e *countEvents) GreylistPassed(r string)   { e.add("passed:" + r) }
func (e *countEvents) AccountLimited(l string)   { e.add("limited:" + l) }
func (e *countEvents) add(k string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = map[string]int{}
	}
	e.counts[k]++
}

// withGreylist gives b a greylist (delay 5m) on a fake clock.
func withGreylist(t *testing.T, b *Backend) (*greylist.List, *fakeClock, *countEvents) {
	t.Helper()
	c := &fakeClock{now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	l, err := greylist.Open(greylist.Options{Dir: t.TempDir(), Delay: 5 * time.Minute, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ev := &countEvents{}
	b.opts.Greylist, b.opts.Events = l, ev
	return l, c, ev
}

func tcp(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 4321} }

// TestGreylistAtRcpt: with verification off, a new triplet gets 451 4.7.1
// at RCPT until it is retried after the delay; an unknown recipient is
// refused for good without being recorded; submission, authenticated
// and trusted clients are never greylisted.
func TestGreylistAtRcpt(t *testing.T) {
	mx := &server.SessionInfo{ID: "c1", Role: server.RoleMX, Remote: tcp("192.0.2.7")}
	sameNet := &server.SessionInfo{ID: "c2", Role: server.RoleMX, Remote: tcp("192.0.2.200")}
	otherNet := &server.SessionInfo{ID: "c3", Role: server.RoleMX, Remote: tcp("198.51.100.7")}
	type step struct {
		after   time.Duration
		session *server.SessionInfo
		from    string
		rcpt    string
		code    int
	}
	tests := []struct {
		name    string
		steps   []step
		entries int
		events  map[string]int
	}{
		{name: "new, too early, retried, known", steps: []step{
			{0, mx, "joe@sender.example", "alice@example.com", 451},
			{time.Minute, mx, "joe@sender.example", "alice@example.com", 451},
			{4 * time.Minute, sameNet, "Joe@Sender.example", "alice@example.com", 0}, // same /24, same sender
			{time.Hour, mx, "joe@sender.example", "alice@example.com", 0},
			{0, mx, "joe@sender.example", "bob@example.com", 451}, // a second recipient: a new triplet
			{0, otherNet, "joe@sender.example", "alice@example.com", 451},
		}, entries: 3, events: map[string]int{"deferred:new": 3, "deferred:too_early": 1, "passed:retried": 1, "passed:known": 1}},
		{name: "IPv6: the client's /64", steps: []step{
			{0, &server.SessionInfo{Role: server.RoleMX, Remote: tcp("2001:db8:1:2::7")}, "joe@sender.example", "alice@example.com", 451},
			{5 * time.Minute, &server.SessionInfo{Role: server.RoleMX, Remote: tcp("2001:db8:1:2:ffff::9")}, "joe@sender.example", "alice@example.com", 0},
			{0, &server.SessionInfo{Role: server.RoleMX, Remote: tcp("2001:db8:1:3::7")}, "joe@sender.example", "alice@example.com", 451},
		}, entries: 2, events: map[string]int{"deferred:new": 2, "passed:retried": 1}},
		{name: "null sender greylisted too", steps: []step{
			{0, mx, "", "alice@example.com", 451},
			{5 * time.Minute, mx, "", "alice@example.com", 0},
		}, entries: 1, events: map[string]int{"deferred:new": 1, "passed:retried": 1}},
		{name: "unknown recipient refused, not recorded", steps: []step{
			{0, mx, "joe@sender.example", "nobody@example.com", 550},
			{0, mx, "joe@sender.example", "x@remote.example", 550},
		}},
		{name: "exempt", steps: []step{
			{0, &server.SessionInfo{Role: server.RoleMX, Remote: tcp("192.0.2.7"), AuthUser: "alice@example.com"}, "alice@example.com", "bob@example.com", 0},
			{0, &server.SessionInfo{Role: server.RoleMX, Remote: tcp("192.0.2.7"), Trusted: true}, "cron@host.example", "bob@example.com", 0},
			{0, &server.SessionInfo{Role: server.RoleSubmission, Remote: tcp("192.0.2.7"), AuthUser: "alice@example.com"}, "alice@example.com", "bob@example.com", 0},
			{0, &server.SessionInfo{Role: server.RoleMX}, "joe@sender.example", "bob@example.com", 0}, // no client address
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newBackend(t, nil)
			l, c, ev := withGreylist(t, b)
			for i, s := range tt.steps {
				c.add(s.after)
				var from smtp.Address // the null sender
				if s.from != "" {
					from = addr(s.from)
				}
				err := b.Recipient(context.Background(), s.session, from, addr(s.rcpt))
				if got := code(err); got != s.code {
					t.Fatalf("step %d: %v, want %d", i, err, s.code)
				}
				if s.code == 451 && (!strings.Contains(err.Error(), "4.7.1") || !strings.Contains(err.Error(), "Greylisted")) {
					t.Errorf("step %d: reply %q", i, err)
				}
			}
			if n := l.Len(); n != tt.entries {
				t.Errorf("%d triplets recorded, want %d", n, tt.entries)
			}
			if len(ev.counts) != len(tt.events) {
				t.Errorf("events %v, want %v", ev.counts, tt.events)
			}
			for k, n := range tt.events {
				if ev.counts[k] != n {
					t.Errorf("events %v, want %v", ev.counts, tt.events)
				}
			}
		})
	}
}

// TestGreylistAtData: with verification on, RCPT is accepted and the
// decision comes at the end of DATA: a DKIM signature aligned with the
// From domain lets the message in at once, anything else is deferred as
// a whole (451 4.7.1, nothing stored, no DMARC report row) until its
// retry after the delay; a DMARC rejection stays a rejection.
func TestGreylistAtData(t *testing.T) {
	aligned := authres.Result{Header: testAR, FromDomain: "sender.example",
		DKIM:  []authres.DKIMResult{{Domain: "sender.example", Result: "pass"}},
		DMARC: authres.DMARC{Result: "pass", Domain: "sender.example", DKIMAligned: true}}
	parentNoRecord := authres.Result{Header: testAR, FromDomain: "news.sender.example",
		DKIM: []authres.DKIMResult{{Domain: "sender.example", Result: "pass"}}, DMARC: authres.DMARC{Result: "none"}}
	thirdParty := authres.Result{Header: testAR, FromDomain: "sender.example",
		DKIM:  []authres.DKIMResult{{Domain: "esp.example", Result: "pass"}},
		DMARC: authres.DMARC{Result: "pass", Domain: "sender.example", SPFAligned: true}}
	failedSig := authres.Result{Header: testAR, FromDomain: "sender.example",
		DKIM: []authres.DKIMResult{{Domain: "sender.example", Result: "fail"}}, DMARC: authres.DMARC{Result: "none"}}
	type attempt struct {
		after time.Duration
		res   authres.Result
		code  int
	}
	tests := []struct {
		name     string
		attempts []attempt
		stored   int // messages in alice's new/
		reports  int
	}{
		{name: "aligned DKIM passes at once", attempts: []attempt{{0, aligned, 0}}, stored: 1, reports: 1},
		{name: "parent d= without DMARC record passes", attempts: []attempt{{0, parentNoRecord, 0}}, stored: 1},
		{name: "third-party signature greylisted", attempts: []attempt{
			{0, thirdParty, 451}, {time.Minute, thirdParty, 451}, {5 * time.Minute, thirdParty, 0}, {time.Hour, thirdParty, 0},
		}, stored: 2, reports: 2},
		{name: "failed signature greylisted", attempts: []attempt{{0, failedSig, 451}, {5 * time.Minute, failedSig, 0}}, stored: 1},
		{name: "DMARC reject wins", attempts: []attempt{{0, failing("reject", true), 550}}, reports: 1},
	}
	mx := &server.SessionInfo{ID: "c1", Role: server.RoleMX, Remote: tcp("192.0.2.7"), Helo: "client.example"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, mail := newBackend(t, nil)
			_, c, _ := withGreylist(t, b)
			reports := &fakeReports{}
			b.opts.DMARCReports = reports
			for i, a := range tt.attempts {
				c.add(a.after)
				b.opts.Verify = &Verification{
					Begin:   func(context.Context, netip.Addr, string, smtp.Address) Check { return &fakeCheck{res: a.res} },
					IsOurs:  func(v string) bool { return authres.IsOurs(v, "mx.example.com") },
					Enforce: true,
					TmpDir:  t.TempDir(),
				}
				if err := b.Recipient(context.Background(), mx, addr("joe@sender.example"), addr("alice@example.com")); err != nil {
					t.Fatalf("attempt %d: RCPT %v, want accepted (decided after DATA)", i, err)
				}
				env := &server.Envelope{ID: "ID1", Session: mx, From: addr("joe@sender.example"), Recipients: []smtp.Address{addr("alice@example.com")}}
				w, err := b.Begin(context.Background(), env)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(w, "Received: x\r\nFrom: joe@sender.example\r\n\r\nhi\r\n")
				_, err = w.Commit()
				if got := code(err); got != a.code {
					t.Fatalf("attempt %d: Commit %v, want %d", i, err, a.code)
				}
			}
			if n := countFiles(filepath.Join(mail, "example.com", "alice", "new")); n != tt.stored {
				t.Errorf("%d messages stored, want %d", n, tt.stored)
			}
			if len(reports.got) != tt.reports {
				t.Errorf("%d DMARC report rows, want %d", len(reports.got), tt.reports)
			}
		})
	}
}

// countFiles is the number of entries in dir (0 when it is missing).
func countFiles(dir string) int {
	files, _ := os.ReadDir(dir)
	return len(files)
}

// TestGreylistSkipsDNSWL: a client an allow list outweighs (a negative
// DNSBL score, screen.go) is not greylisted; a listed-but-not-blocked or
// unlisted one is.
func TestGreylistSkipsDNSWL(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{Host: "127.15.4.53", Records: []string{
		"5.4.15.127.wl.test. 60 A 127.0.10.1",
		"6.4.15.127.wl.test. 60 A 127.0.10.1",
		"6.4.15.127.bl.test. 60 A 127.0.0.2",
	}})
	client, err := dns.New(dns.Options{Servers: []string{srv.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checker, err := dnsbl.New(dnsbl.Options{Resolver: dns.NewCache(client, dns.CacheOptions{}), Threshold: 2,
		Zones: []dnsbl.Zone{{Name: "bl.test"}, {Name: "wl.test", Weight: -2}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ip   string
		code int
	}{
		{"127.15.4.5", 0},   // allowlisted
		{"127.15.4.6", 0},   // listed on both: -1, still allowlisted
		{"127.15.4.7", 451}, // unlisted
	} {
		b, _ := newBackend(t, nil)
		withGreylist(t, b)
		b.opts.DNSBL = checker
		s := &server.SessionInfo{ID: "c1", Role: server.RoleMX, Remote: tcp(tt.ip)}
		if err := b.Connect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		err := b.Recipient(context.Background(), s, addr("joe@sender.example"), addr("alice@example.com"))
		if got := code(err); got != tt.code {
			t.Errorf("%s: RCPT %v, want %d", tt.ip, err, tt.code)
		}
		b.Disconnect(s)
	}
}

// TestGreylistAtDataWholeMessage: at the end of DATA one reply covers
// every recipient: a message to a known triplet and a new one is deferred
// as a whole (nothing stored for either); its retry after the delay is
// stored for both.
func TestGreylistAtDataWholeMessage(t *testing.T) {
	b, mail := newBackend(t, nil)
	l, c, _ := withGreylist(t, b)
	unsigned := authres.Result{Header: testAR, FromDomain: "sender.example", DMARC: authres.DMARC{Result: "none"}}
	b.opts.Verify = &Verification{
		Begin:  func(context.Context, netip.Addr, string, smtp.Address) Check { return &fakeCheck{res: unsigned} },
		IsOurs: func(v string) bool { return authres.IsOurs(v, "mx.example.com") },
		TmpDir: t.TempDir(),
	}
	mx := &server.SessionInfo{ID: "c1", Role: server.RoleMX, Remote: tcp("192.0.2.7"), Helo: "client.example"}
	send := func(rcpts ...string) int {
		env := &server.Envelope{ID: "ID1", Session: mx, From: addr("joe@sender.example")}
		for _, r := range rcpts {
			env.Recipients = append(env.Recipients, addr(r))
		}
		w, err := b.Begin(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "Received: x\r\nFrom: joe@sender.example\r\n\r\nhi\r\n")
		_, err = w.Commit()
		return code(err)
	}
	boxes := func() (alice, bob int) {
		return countFiles(filepath.Join(mail, "example.com", "alice", "new")), countFiles(filepath.Join(mail, "example.com", "bob", "new"))
	}
	if got := send("alice@example.com"); got != 451 {
		t.Fatalf("first message: %d, want 451", got)
	}
	c.add(5 * time.Minute)
	if got := send("alice@example.com"); got != 0 {
		t.Fatalf("retry: %d, want 250", got)
	}
	if got := send("alice@example.com", "bob@example.com"); got != 451 {
		t.Fatalf("known and new recipient: %d, want 451", got)
	}
	if a, bb := boxes(); a != 1 || bb != 0 {
		t.Fatalf("stored alice %d bob %d, want 1 and 0 (the deferred message nowhere)", a, bb)
	}
	c.add(5 * time.Minute)
	if got := send("alice@example.com", "bob@example.com"); got != 0 {
		t.Fatalf("retry of both: %d, want 250", got)
	}
	if a, bb := boxes(); a != 2 || bb != 1 {
		t.Errorf("stored alice %d bob %d, want 2 and 1", a, bb)
	}
	if n := l.Len(); n != 2 {
		t.Errorf("%d triplets, want 2", n)
	}
}
