package tlsrpt

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var day1 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func newTestStore(t *testing.T, dir string, c *clock) *Store {
	t.Helper()
	s, err := NewStore(StoreOptions{Dir: dir, Now: c.Now, Flush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	stsLines = []string{"version: STSv1", "mode: enforce", "mx: *.mail.example.com", "mx: backup.example.net", "max_age: 86400"}
	tlsaRecs = []string{"3 1 1 aabbcc"}
	mx1IP    = netip.MustParseAddr("192.0.2.10")
	ourIP    = netip.MustParseAddr("198.51.100.1")
)

func TestRecordCounts(t *testing.T) {
	tests := []struct {
		name     string
		sessions []Session
		want     []PolicyResult
	}{
		{
			name: "successes and failures under one sts policy",
			sessions: []Session{
				{Domain: "Example.COM", Policy: PolicySTS, Strings: stsLines, MXHost: "mx1.mail.example.com"},
				{Domain: "example.com", Policy: PolicySTS, Strings: stsLines, MXHost: "mx1.mail.example.com"},
				{Domain: "example.com", Policy: PolicySTS, Strings: stsLines, MXHost: "mx1.mail.example.com", ReceivingIP: mx1IP, SendingIP: ourIP, Result: CertificateExpired, Detail: "x509: expired"},
				{Domain: "example.com", Policy: PolicySTS, Strings: stsLines, MXHost: "mx1.mail.example.com", ReceivingIP: mx1IP, SendingIP: ourIP, Result: CertificateExpired, Detail: "x509: expired"},
				{Domain: "example.com.", Policy: PolicySTS, Strings: stsLines, MXHost: "mx2.mail.example.com", Result: StartTLSNotSupported},
			},
			want: []PolicyResult{{
				Policy:  Policy{Type: PolicySTS, String: stsLines, Domain: "example.com", MXHost: []string{"*.mail.example.com", "backup.example.net"}},
				Summary: Summary{Successful: 2, Failed: 3},
				FailureDetails: []FailureDetail{
					{ResultType: CertificateExpired, SendingMTAIP: "198.51.100.1", ReceivingIP: "192.0.2.10", ReceivingMXHostname: "mx1.mail.example.com", FailedSessionCount: 2, FailureReasonCode: "x509: expired"},
					{ResultType: StartTLSNotSupported, ReceivingMXHostname: "mx2.mail.example.com", FailedSessionCount: 1},
				},
			}},
		},
		{
			name: "tlsa policies per record set, mx-host from the sessions",
			sessions: []Session{
				{Domain: "example.com", Policy: PolicyTLSA, Strings: tlsaRecs, MXHost: "mx1.example.com"},
				{Domain: "example.com", Policy: PolicyTLSA, Strings: tlsaRecs, MXHost: "mx1.example.com", Result: ValidationFailure},
				{Domain: "example.com", Policy: PolicyTLSA, Strings: []string{"2 0 1 ddee"}, MXHost: "mx2.example.com"},
			},
			want: []PolicyResult{
				{
					Policy:         Policy{Type: PolicyTLSA, String: tlsaRecs, Domain: "example.com", MXHost: []string{"mx1.example.com"}},
					Summary:        Summary{Successful: 1, Failed: 1},
					FailureDetails: []FailureDetail{{ResultType: ValidationFailure, ReceivingMXHostname: "mx1.example.com", FailedSessionCount: 1}},
				},
				{
					Policy:  Policy{Type: PolicyTLSA, String: []string{"2 0 1 ddee"}, Domain: "example.com", MXHost: []string{"mx2.example.com"}},
					Summary: Summary{Successful: 1},
				},
			},
		},
		{
			name:     "no policy; an empty domain is not counted",
			sessions: []Session{{Domain: "example.com"}, {Domain: "example.com", Policy: PolicyNone}, {Domain: ""}},
			want:     []PolicyResult{{Policy: Policy{Type: PolicyNone, Domain: "example.com"}, Summary: Summary{Successful: 2}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: day1.Add(10 * time.Hour)}
			s := newTestStore(t, t.TempDir(), c)
			for _, ss := range tt.sessions {
				s.Record(ss)
			}
			got := s.Snapshot()
			if len(got) != 1 {
				t.Fatalf("%d pending, want 1: %+v", len(got), got)
			}
			if got[0].Domain != "example.com" || !got[0].Start.Equal(day1) || !got[0].End.Equal(c.Now()) {
				t.Errorf("pending %s %v..%v", got[0].Domain, got[0].Start, got[0].End)
			}
			if !reflect.DeepEqual(got[0].Policies, tt.want) {
				t.Errorf("policies:\n got %s\nwant %s", js(got[0].Policies), js(tt.want))
			}
		})
	}
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

// The counters survive a restart: Close writes them, NewStore reads them.
func TestStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: day1.Add(time.Hour)}
	s := newTestStore(t, dir, c)
	for range 3 {
		s.Record(Session{Domain: "a.example", Policy: PolicySTS, Strings: stsLines, MXHost: "mx.a.example"})
	}
	s.Record(Session{Domain: "b.example", Result: StartTLSNotSupported, MXHost: "mx.b.example", ReceivingIP: mx1IP})
	c.Set(day1.Add(25 * time.Hour))
	s.Record(Session{Domain: "a.example", Result: CertificateNotTrusted})
	before := s.Snapshot()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newTestStore(t, dir, c)
	if after := s2.Snapshot(); !reflect.DeepEqual(after, before) {
		t.Errorf("after restart:\n got %s\nwant %s", js(after), js(before))
	}
	// Only what changed is written: a second Flush with no change
	// leaves the file alone.
	fi, _ := os.Stat(filepath.Join(dir, "counters.json"))
	s2.Flush()
	if fi2, _ := os.Stat(filepath.Join(dir, "counters.json")); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("Flush without a change rewrote the file")
	}
}

// The periodic flush writes without Close: what a crash would leave.
func TestStoreFlushesPeriodically(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: day1}
	s, err := NewStore(StoreOptions{Dir: dir, Now: c.Now, Flush: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Record(Session{Domain: "a.example"})
	path := filepath.Join(dir, "counters.json")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counters never written by the periodic flush")
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded above
	}
	crashed := newTestStore(t, t.TempDir(), c) // a fresh store on a copy of the file
	data, _ := os.ReadFile(path)
	if err := crashed.parse(data); err != nil {
		t.Fatal(err)
	}
	if got := crashed.Snapshot(); len(got) != 1 || got[0].Policies[0].Summary.Successful != 1 {
		t.Errorf("flushed counters: %s", js(got))
	}
}

func TestTakeAndRestore(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: day1.Add(23 * time.Hour)}
	s := newTestStore(t, dir, c)
	s.Record(Session{Domain: "a.example"})
	c.Set(day1.Add(26 * time.Hour)) // day 2, 02:00
	s.Record(Session{Domain: "a.example", Result: StartTLSNotSupported})
	s.Record(Session{Domain: "b.example"})

	got := s.Take(false) // the timer: finished days only
	if len(got) != 1 || got[0].Domain != "a.example" || !got[0].Start.Equal(day1) || !got[0].End.Equal(day1.Add(day)) {
		t.Fatalf("Take(false) = %s", js(got))
	}
	if again := s.Take(false); len(again) != 0 {
		t.Fatalf("Take(false) twice: %s", js(again))
	}
	s.Restore(got[0])
	if back := s.Take(false); !reflect.DeepEqual(back, got) {
		t.Fatalf("after Restore:\n got %s\nwant %s", js(back), js(got))
	}

	cut := c.Now()
	now := s.Take(true) // --send: today until now as well
	if len(now) != 2 || !now[0].End.Equal(cut) || !now[1].End.Equal(cut) {
		t.Fatalf("Take(true) = %s", js(now))
	}
	c.Set(cut.Add(time.Hour))
	s.Record(Session{Domain: "a.example"})
	next := s.Snapshot()
	if len(next) != 1 || !next[0].Start.Equal(cut) || next[0].Policies[0].Summary.Successful != 1 {
		t.Fatalf("after a cut, today starts again at the cut: %s", js(next))
	}
	// The cut survives a restart, so the next report does not overlap.
	s.Close()
	s2 := newTestStore(t, dir, c)
	if got := s2.Snapshot(); !reflect.DeepEqual(got, next) {
		t.Errorf("after restart:\n got %s\nwant %s", js(got), js(next))
	}
}

func TestTakeDropsOldDays(t *testing.T) {
	c := &clock{t: day1}
	s := newTestStore(t, t.TempDir(), c)
	s.Record(Session{Domain: "a.example"})
	c.Set(day1.Add(day + MaxPendingAge + time.Hour))
	if got := s.Take(true); len(got) != 0 {
		t.Errorf("a day older than MaxPendingAge was reported: %s", js(got))
	}
}

func TestStoreBounds(t *testing.T) {
	c := &clock{t: day1}
	s := newTestStore(t, t.TempDir(), c)
	for i := range MaxDetails + 10 {
		s.Record(Session{Domain: "a.example", Result: ValidationFailure, MXHost: "mx.a.example", ReceivingIP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})})
	}
	for i := range MaxPolicies + 3 {
		s.Record(Session{Domain: "a.example", Policy: PolicyTLSA, Strings: []string{string(rune('a' + i))}})
	}
	long := string(make([]byte, 2*MaxDetailLen))
	s.Record(Session{Domain: "b.example", Result: ValidationFailure, Detail: long})
	got := s.Snapshot()
	a := got[0].Policies
	if len(a) != MaxPolicies {
		t.Errorf("%d policies, want at most %d", len(a), MaxPolicies)
	}
	if n := len(a[0].FailureDetails); n != MaxDetails || a[0].Summary.Failed != MaxDetails+10 {
		t.Errorf("%d details (want %d), %d failures counted (want %d)", n, MaxDetails, a[0].Summary.Failed, MaxDetails+10)
	}
	if n := len(got[1].Policies[0].FailureDetails[0].FailureReasonCode); n != MaxDetailLen {
		t.Errorf("detail of %d bytes kept, want %d", n, MaxDetailLen)
	}
}

func TestCorruptCountersMovedAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "counters.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, dir, &clock{t: day1})
	if got := s.Snapshot(); len(got) != 0 {
		t.Errorf("counters from a corrupt file: %s", js(got))
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("corrupt file not moved aside: %v", err)
	}
}

func TestRecordConcurrent(t *testing.T) {
	c := &clock{t: day1}
	s := newTestStore(t, t.TempDir(), c)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				ss := Session{Domain: "a.example"}
				if i%5 == 0 {
					ss.Result = StartTLSNotSupported
				}
				s.Record(ss)
				if i%100 == g {
					s.Flush()
				}
			}
		}()
	}
	wg.Wait()
	succ, fail := s.Snapshot()[0].Totals()
	if succ != 8*400 || fail != 8*100 {
		t.Errorf("counted %d/%d, want %d/%d", succ, fail, 8*400, 8*100)
	}
}

// BenchmarkRecord: the cost delivery pays per session (no I/O), with
// successes and failures spread over 1000 domains.
func BenchmarkRecord(b *testing.B) {
	c := &clock{t: day1}
	s, err := NewStore(StoreOptions{Dir: b.TempDir(), Now: c.Now, Flush: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	domains := make([]string, 1000)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%d.example", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ss := Session{Domain: domains[i%len(domains)], Policy: PolicySTS, Strings: stsLines, MXHost: "mx1.mail.example.com", ReceivingIP: mx1IP}
			if i%10 == 0 {
				ss.Result, ss.Detail = CertificateExpired, "x509: certificate has expired"
			}
			s.Record(ss)
			i++
		}
	})
}
