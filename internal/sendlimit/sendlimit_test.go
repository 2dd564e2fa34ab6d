package sendlimit

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clock is a fake time source the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)} }
func open(t *testing.T, l Limits, c *clock, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Limits: l, Now: c.now, Dir: dir, Flush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// step is one request at an offset from the previous one: a message
// (rcpt "") or a recipient, and the limit it must exceed ("" = allowed).
type step struct {
	after time.Duration
	rcpt  string
	want  string
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{"messages per hour, sliding", Limits{MessagesPerHour: 3}, []step{
			{0, "", ""}, {10 * time.Minute, "", ""}, {10 * time.Minute, "", ""},
			{10 * time.Minute, "", MessagesPerHour}, // 3 in the last hour
			{30*time.Minute + time.Second, "", ""},  // the first fell out (60m01s after it)
			{0, "", MessagesPerHour},
		}},
		{"messages per day over hours", Limits{MessagesPerHour: 2, MessagesPerDay: 3}, []step{
			{0, "", ""}, {0, "", ""}, {0, "", MessagesPerHour},
			{time.Hour + time.Second, "", ""}, {0, "", MessagesPerDay},
			{23 * time.Hour, "", ""}, // the first two fell out of the day
			{0, "", ""}, {0, "", MessagesPerHour},
		}},
		{"distinct recipients per hour", Limits{RecipientsPerHour: 2}, []step{
			{0, "a@x.example", ""}, {0, "b@x.example", ""},
			{0, "A@X.example", ""}, // the same address, any case: not new
			{0, "c@x.example", RecipientsPerHour},
			{0, "b@x.example", ""},
			{time.Hour, "c@x.example", ""}, // a and b counted an hour ago: gone
		}},
		{"distinct recipients per day", Limits{RecipientsPerHour: 10, RecipientsPerDay: 2}, []step{
			{0, "a@x.example", ""}, {2 * time.Hour, "b@x.example", ""},
			{2 * time.Hour, "a@x.example", ""}, // in the day's set already
			{0, "c@x.example", RecipientsPerDay},
			{22*time.Hour + time.Second, "c@x.example", ""}, // b (counted 26h ago) fell out; a, re-counted 22h ago, stays
		}},
		{"zero is no limit", Limits{}, []step{
			{0, "", ""}, {0, "", ""}, {0, "a@x.example", ""}, {0, "b@x.example", ""},
		}},
		{"messages and recipients apart", Limits{MessagesPerHour: 1, RecipientsPerHour: 1}, []step{
			{0, "", ""}, {0, "a@x.example", ""}, {0, "", MessagesPerHour}, {0, "b@x.example", RecipientsPerHour},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := open(t, tt.limits, c, "")
			for i, st := range tt.steps {
				c.add(st.after)
				var got Exceeded
				if st.rcpt == "" {
					got = s.Message("alice@example.com")
				} else {
					got = s.Recipient("Alice@example.com", st.rcpt)
				}
				if got.Limit != st.want {
					t.Fatalf("step %d (%q at +%v): exceeded %q, want %q", i, st.rcpt, st.after, got.Limit, st.want)
				}
			}
			// Another account has its own counts.
			if e := s.Message("bob@example.com"); !e.OK() {
				t.Errorf("bob limited by alice's count: %v", e)
			}
		})
	}
}

func TestExceededString(t *testing.T) {
	tests := []struct {
		e    Exceeded
		want string
	}{
		{Exceeded{Limit: MessagesPerHour, Max: 500, Window: hour}, "500 messages per hour"},
		{Exceeded{Limit: RecipientsPerDay, Max: 3000, Window: day}, "3000 distinct recipients per day"},
		{Exceeded{}, "within the limits"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

// TestBounded: what is refused is not recorded, so an account's counts
// never hold more than its limits, however hard it pushes.
func TestBounded(t *testing.T) {
	c := newClock()
	s := open(t, Limits{MessagesPerHour: 50, MessagesPerDay: 100, RecipientsPerHour: 70, RecipientsPerDay: 80}, c, "")
	for i := range 5000 {
		if i%100 == 0 {
			c.add(10 * time.Minute)
		}
		s.Message("spammer@example.com")
		s.Recipient("spammer@example.com", fmt.Sprintf("victim%d@far.example", i))
	}
	a := s.byName["spammer@example.com"]
	if len(a.sent) > 100 || len(a.rcpts) > 80 {
		t.Errorf("%d messages and %d recipients kept, want at most 100 and 80", len(a.sent), len(a.rcpts))
	}
}

// TestMaxAccounts: past MaxAccounts followed at once, accounts whose
// windows are empty make room; when none is, a new account is not
// counted (never refused).
func TestMaxAccounts(t *testing.T) {
	c := newClock()
	s := open(t, Limits{MessagesPerHour: 1}, c, "")
	for i := range MaxAccounts {
		s.Message(fmt.Sprintf("u%d@example.com", i))
	}
	if e := s.Message("new@example.com"); !e.OK() || len(s.byName) != MaxAccounts {
		t.Fatalf("full store: %v, %d accounts", e, len(s.byName))
	}
	if e := s.Message("new@example.com"); !e.OK() {
		t.Errorf("an account not counted was limited: %v", e)
	}
	c.add(time.Hour + time.Second)
	s.Message("new@example.com") // the old ones are empty now: pruned
	if e := s.Message("new@example.com"); e.Limit != MessagesPerHour {
		t.Errorf("after the prune new@ is not counted: %v (%d accounts)", e, len(s.byName))
	}
}

// TestSurvivesRestart: the counts are written to counts.json and read
// back, so a restart does not give a spammer a fresh hour; an unreadable
// file is moved aside and counting starts afresh.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := Limits{MessagesPerHour: 2, RecipientsPerDay: 1}
	s := open(t, l, c, dir)
	s.Message("alice@example.com")
	s.Message("alice@example.com")
	s.Recipient("alice@example.com", "a@far.example")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "counts.json"))
	if err != nil || len(data) > 200 {
		t.Fatalf("counts.json: %d octets, %v: %s", len(data), err, data)
	}
	s2 := open(t, l, c, dir)
	if e := s2.Message("alice@example.com"); e.Limit != MessagesPerHour {
		t.Errorf("after a restart: %v, want %s", e, MessagesPerHour)
	}
	if e := s2.Recipient("alice@example.com", "b@far.example"); e.Limit != RecipientsPerDay {
		t.Errorf("after a restart: %v, want %s", e, RecipientsPerDay)
	}
	if e := s2.Recipient("alice@example.com", "a@far.example"); !e.OK() {
		t.Errorf("the recipient counted before the restart is new again: %v", e)
	}
	s2.Close()

	if err := os.WriteFile(filepath.Join(dir, "counts.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := open(t, l, c, dir)
	if e := s3.Message("alice@example.com"); !e.OK() {
		t.Errorf("after a bad file: %v, want a fresh count", e)
	}
	if _, err := os.Stat(filepath.Join(dir, "counts.json.bad")); err != nil {
		t.Errorf("the bad file was not moved aside: %v", err)
	}
}

// TestConcurrent: sessions of one account racing for the last slots get
// exactly the limit between them, while other accounts go on; with
// -race, the locking is checked too.
func TestConcurrent(t *testing.T) {
	c := newClock()
	s := open(t, Limits{MessagesPerHour: 100, RecipientsPerHour: 150}, c, t.TempDir())
	var wg sync.WaitGroup
	var mu sync.Mutex
	type counts struct{ msgs, rcpts int }
	accepted := map[string]counts{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				name := "alice@example.com"
				if i%4 == 0 {
					name = fmt.Sprintf("user%d@example.com", g)
				}
				m := s.Message(name).OK()
				r := s.Recipient(name, fmt.Sprintf("r%d-%d@far.example", g, i)).OK()
				mu.Lock()
				n := accepted[name]
				if m {
					n.msgs++
				}
				if r {
					n.rcpts++
				}
				accepted[name] = n
				mu.Unlock()
				if i%25 == 0 {
					s.Flush()
				}
			}
		}()
	}
	wg.Wait()
	// alice: 8 × 75 = 600 attempts each; 100 messages, 150 recipients.
	if got := accepted["alice@example.com"]; got != (counts{100, 150}) {
		t.Errorf("alice got %+v, want 100 messages and 150 recipients", got)
	}
	for g := range 8 {
		if got := accepted[fmt.Sprintf("user%d@example.com", g)]; got != (counts{25, 25}) {
			t.Errorf("user%d got %+v, want 25 messages and 25 recipients", g, got)
		}
	}
}
