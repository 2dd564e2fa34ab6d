package dmarcrpt

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
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

const rejectRecord = "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("2001:db8::25")
)

func msg(domain string, ip netip.Addr, dkim, spf, disposition string) Message {
	return Message{PolicyDomain: domain, Record: rejectRecord, Row: Row{
		SourceIP: ip, HeaderFrom: domain, Disposition: disposition, DKIM: dkim, SPF: spf,
		DKIMResults: []DKIMResult{{Domain: domain, Selector: "s1", Result: dkim}},
		SPFResult:   SPFResult{Domain: domain, Scope: "mfrom", Result: spf},
	}}
}

func TestStoreCounts(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
		want map[string][]int64 // domain → counts of its rows, in order
	}{
		{"same row counted", []Message{msg("example.com", ip1, "pass", "pass", "none"), msg("Example.COM.", ip1, "pass", "pass", "none")},
			map[string][]int64{"example.com": {2}}},
		{"source address and results make rows", []Message{
			msg("example.com", ip1, "pass", "pass", "none"), msg("example.com", ip2, "pass", "pass", "none"),
			msg("example.com", ip1, "fail", "fail", "reject"), msg("example.com", ip1, "fail", "fail", "reject")},
			map[string][]int64{"example.com": {1, 1, 2}}},
		{"domains apart", []Message{msg("a.example", ip1, "pass", "pass", "none"), msg("b.example", ip1, "pass", "pass", "none")},
			map[string][]int64{"a.example": {1}, "b.example": {1}}},
		{"no policy domain: not counted", []Message{msg("", ip1, "pass", "pass", "none")}, map[string][]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: day1.Add(time.Hour)}
			s := newTestStore(t, t.TempDir(), c)
			for _, m := range tt.msgs {
				s.Add(m)
			}
			got := map[string][]int64{}
			for _, p := range s.Snapshot() {
				for _, r := range p.Rows {
					got[p.Domain] = append(got[p.Domain], r.Count)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rows %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStoreBounded(t *testing.T) {
	c := &clock{t: day1}
	s := newTestStore(t, t.TempDir(), c)
	for i := range MaxRows + 10 {
		s.Add(msg("example.com", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), "pass", "pass", "none"))
	}
	s.Add(Message{PolicyDomain: "x.example", Row: Row{HeaderFrom: "X\x00\x01é.example", DKIMResults: make([]DKIMResult, 50)}})
	snap := s.Snapshot()
	if len(snap) != 2 || len(snap[0].Rows) != MaxRows {
		t.Fatalf("%d domains, %d rows; want 2 and %d", len(snap), len(snap[0].Rows), MaxRows)
	}
	r := snap[1].Rows[0]
	if r.HeaderFrom != "x??é.example" || len(r.DKIMResults) != MaxDKIMRows || r.Disposition != "none" {
		t.Errorf("row not bounded: %+v", r.Row)
	}
	if s.dropped != 10 {
		t.Errorf("dropped %d, want 10", s.dropped)
	}
}

// TestStoreTakeRestorePersist: finished days are taken, today only with
// current, Restore puts rows back, and the rows survive Close and reopen
// (and a damaged file is moved aside).
func TestStoreTakeRestorePersist(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: day1.Add(2 * time.Hour)}
	s := newTestStore(t, dir, c)
	s.Add(msg("example.com", ip1, "pass", "pass", "none"))
	c.Set(day1.Add(day + time.Hour))
	s.Add(msg("example.com", ip2, "fail", "fail", "reject"))
	if got := s.Take(false); len(got) != 1 || !got[0].Start.Equal(day1) || !got[0].End.Equal(day1.Add(day)) || got[0].Messages() != 1 {
		t.Fatalf("Take(false) = %+v, want day 1 only", got)
	} else {
		s.Restore(got[0]) // as if the queue refused the report
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newTestStore(t, dir, c)
	got := s2.Take(true)
	if len(got) != 2 || got[0].Messages() != 1 || got[1].Messages() != 1 || got[1].Record != rejectRecord || !got[1].End.Equal(c.Now()) {
		t.Fatalf("after reopen Take(true) = %+v", got)
	}
	if got := s2.Take(true); len(got) != 0 {
		t.Fatalf("second Take = %+v, want nothing", got)
	}
	s2.Close()
	os.WriteFile(filepath.Join(dir, "rows.json"), []byte("{not json"), 0o600)
	s3 := newTestStore(t, dir, c)
	if len(s3.Snapshot()) != 0 {
		t.Error("a damaged file gave rows")
	}
	if _, err := os.Stat(filepath.Join(dir, "rows.json.bad")); err != nil {
		t.Errorf("damaged file not moved aside: %v", err)
	}
}

func TestStoreDropsOldDays(t *testing.T) {
	c := &clock{t: day1}
	s := newTestStore(t, t.TempDir(), c)
	s.Add(msg("example.com", ip1, "pass", "pass", "none"))
	c.Set(day1.Add(day + MaxPendingAge + time.Hour))
	if got := s.Take(false); len(got) != 0 {
		t.Fatalf("Take = %+v, want the old day dropped", got)
	}
}

// TestStoreTotalBound: rows of all domain-days together stop at
// MaxTotalRows, and a Take makes room again. It logs the heap the full
// Store takes.
func TestStoreTotalBound(t *testing.T) {
	c := &clock{t: day1}
	s := newTestStore(t, t.TempDir(), c)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	perDomain := MaxRows
	for d := range MaxTotalRows/perDomain + 1 {
		for i := range perDomain {
			m := msg(fmt.Sprintf("d%d.example", d), netip.AddrFrom4([4]byte{10, byte(d), byte(i >> 8), byte(i)}), "pass", "pass", "none")
			m.DKIMResults = append(m.DKIMResults, DKIMResult{Domain: "esp-mail-service.example", Selector: "selector2048", Result: "fail"})
			s.Add(m)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d rows: heap %.1f MiB", MaxTotalRows, float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
	if s.rows != MaxTotalRows || s.dropped != int64(perDomain) {
		t.Fatalf("rows %d, dropped %d; want %d and %d", s.rows, s.dropped, MaxTotalRows, perDomain)
	}
	c.Set(day1.Add(day))
	if got := len(s.Take(false)); got != MaxTotalRows/perDomain || s.rows != 0 {
		t.Fatalf("Take gave %d domain-days, %d rows left", got, s.rows)
	}
	s.Add(msg("late.example", ip1, "pass", "pass", "none"))
	if s.rows != 1 {
		t.Errorf("after Take a new row is not counted: rows %d", s.rows)
	}
}
