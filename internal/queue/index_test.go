package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParsePrefix(t *testing.T) {
	due := time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)
	arr := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	const id = "0123456789abcdef01234567"
	tests := []struct {
		name string
		in   string
		want prefix
		ok   bool
	}{
		{"all fields", `{"v":1,"due":"2025-03-01T11:00:00Z","held":true,"warned":true,"arrival":"2025-03-01T10:00:00Z","id":"` + id + `","rcpts":[]}`,
			prefix{due: due, held: true, warned: true, arrival: arr, id: id}, true},
		{"indented as marshal writes it", "{\n\t\"v\": 1,\n\t\"due\": \"2025-03-01T11:00:00Z\",\n\t\"arrival\": \"2025-03-01T10:00:00Z\",\n\t\"id\": \"" + id + "\",\n\t\"from\": \"\"",
			prefix{due: due, arrival: arr, id: id}, true},
		{"optional fields absent", `{"v":1,"id":"` + id + `"`, prefix{id: id}, true},
		{"size and counts", `{"v":1,"arrival":"2025-03-01T10:00:00Z","size":1234,"counts":[1, 2,0,3],"id":"` + id + `"`,
			prefix{arrival: arr, size: 1234, counts: [numStates]int{1, 2, 0, 3}, hasCounts: true, id: id}, true},
		{"counts too short", `{"v":1,"counts":[1,2,3],"id":"` + id + `"`, prefix{}, false},
		{"counts too long", `{"v":1,"counts":[1,2,3,4,5],"id":"` + id + `"`, prefix{}, false},
		{"negative size", `{"v":1,"size":-1,"id":"` + id + `"`, prefix{}, false},
		{"fractional size", `{"v":1,"size":1.5,"id":"` + id + `"`, prefix{}, false},
		{"leading zero", `{"v":1,"size":012,"id":"` + id + `"`, prefix{}, false},
		{"truncated after id is enough", `{"v":1,"due":"2025-03-01T11:00:00Z","id":"` + id + `"`, prefix{due: due, id: id}, true},
		{"older file: id first", `{"v":1,"id":"` + id + `","from":"a@b","arrival":"2025-03-01T10:00:00Z"}`, prefix{id: id}, true},
		{"older file: from before id", `{"v":1,"from":"a@b","id":"` + id + `"}`, prefix{}, false},
		{"v missing", `{"due":"2025-03-01T11:00:00Z","id":"` + id + `"}`, prefix{}, false},
		{"other version", `{"v":2,"id":"` + id + `"}`, prefix{}, false},
		{"out of order", `{"v":1,"id":"` + id + `","due":"2025-03-01T11:00:00Z"}`, prefix{id: id}, true}, // stops at id
		{"due after held", `{"v":1,"held":false,"due":"2025-03-01T11:00:00Z","id":"x"}`, prefix{}, false},
		{"bad due", `{"v":1,"due":"soon","id":"` + id + `"}`, prefix{}, false},
		{"held not a bool", `{"v":1,"held":"yes","id":"` + id + `"}`, prefix{}, false},
		{"cut before id", `{"v":1,"due":"2025-03-01T11:00:00Z","hel`, prefix{}, false},
		{"not an object", `[1,2]`, prefix{}, false},
		{"empty", ``, prefix{}, false},
		{"garbage", `{not json`, prefix{}, false},
		{"duplicate v", `{"v":1,"v":1,"id":"` + id + `"}`, prefix{}, false},
	}
	for _, tt := range tests {
		got, err := parsePrefix([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok %v", tt.name, err, tt.ok)
			continue
		}
		if tt.ok && (got.id != tt.want.id || !got.due.Equal(tt.want.due) || !got.arrival.Equal(tt.want.arrival) ||
			got.held != tt.want.held || got.warned != tt.want.warned || got.size != tt.want.size ||
			got.counts != tt.want.counts || got.hasCounts != tt.want.hasCounts) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestPrefixOfMarshal: what marshal writes, parsePrefix reads back within
// prefixMax bytes.
func TestPrefixOfMarshal(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)
	e := &envelope{Version: envelopeVersion, ID: "0123456789abcdef01234567", Arrival: now, Held: true, Warned: true, Size: 4321,
		Rcpts: []*rcpt{{Addr: "a@x", Domain: "x", State: Deferred, Next: now.Add(time.Hour)}, {Addr: "b@x", State: Delivered}}}
	data, err := e.marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePrefix(data[:min(len(data), prefixMax)])
	if err != nil || !p.due.Equal(now.Add(time.Hour)) || !p.held || !p.warned || !p.arrival.Equal(now) || p.id != e.ID ||
		p.size != 4321 || p.counts != [numStates]int{0, 1, 1, 0} || !p.hasCounts {
		t.Fatalf("prefix %+v, %v of\n%s", p, err, data)
	}
}

// TestIndex: deferred messages leave memory for the index, every admin
// command still sees them, and they come back when due — within
// ActiveLimit; a restart indexes them from their prefixes and keeps their
// backoff.
func TestIndex(t *testing.T) {
	var mu sync.Mutex
	fail, attempts, maxActive := true, 0, 0
	var q *Queue
	deliver := courierFunc(func(ctx context.Context, d *Attempt) []Result {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		q.mu.Lock()
		maxActive = max(maxActive, len(q.msgs))
		q.mu.Unlock()
		if fail {
			return allTemporary(d.Recipients, errors.New("connection refused"))
		}
		out := make([]Result, len(d.Recipients))
		for i, r := range d.Recipients {
			out[i] = Result{Rcpt: r}
		}
		return out
	})
	e := open(t, deliver, func(o *Options) { o.ActiveLimit = 4 })
	q = e.q
	const n = 12
	ids := make([]string, n)
	for i := range ids {
		ids[i] = enqueue(t, q, "alice@example.org", fmt.Sprintf("r%d@d%d.example", i, i%3))
	}
	if got := q.RunOnce(ctx); got != n {
		t.Fatalf("%d attempts, want %d", got, n)
	}
	q.mu.Lock()
	active, indexed := len(q.msgs), q.idx.len()
	q.mu.Unlock()
	if active != 0 || indexed != n {
		t.Fatalf("after deferring: %d in memory, %d indexed; want 0 and %d", active, indexed, n)
	}
	if maxActive > 4 {
		t.Errorf("%d messages in memory at once, ActiveLimit 4", maxActive)
	}
	checkCounts(t, q)
	list := q.List()
	if len(list) != n || !slices.IsSortedFunc(list, func(a, b Summary) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatalf("List of the index: %d messages, want %d, oldest first", len(list), n)
	}
	for _, s := range list {
		if !slices.Contains(ids, s.ID) || s.Recipients[0].State != Deferred || s.Recipients[0].Attempts != 1 {
			t.Fatalf("List of the index: %+v", s)
		}
	}
	d, err := q.Show(ids[1])
	if err != nil || d.ID != ids[1] || d.Recipients[0].Attempts != 1 || d.Headers == "" {
		t.Fatalf("Show of an indexed message: %+v, %v", d, err)
	}
	if err := q.Hold(ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ids[3]); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ids[4]); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, q)
	if _, err := q.Show(ids[3]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Show of a deleted message: %v", err)
	}
	q.mu.Lock()
	active, indexed = len(q.msgs), q.idx.len()
	q.mu.Unlock()
	if active != 1 || indexed != n-2 { // ids[4] is due now; ids[3] is gone
		t.Fatalf("after the admin commands: %d in memory, %d indexed; want 1 and %d", active, indexed, n-2)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if got := q.RunOnce(ctx); got != 1 {
		t.Fatalf("Retry: %d attempts, want 1", got)
	}

	// A restart: the remaining nine deferred messages and the held one are
	// indexed from their prefixes, none decoded.
	q.Close()
	q, err = Open(Options{Dir: e.dir, Courier: deliver, Now: e.clock.Now, ActiveLimit: 4,
		Bounce: e.bounces.take, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.mu.Lock()
	active, indexed = len(q.msgs), q.idx.len()
	q.mu.Unlock()
	if active != 0 || indexed != n-2 {
		t.Fatalf("after Open: %d in memory, %d indexed; want 0 and %d", active, indexed, n-2)
	}
	checkCounts(t, q)
	if got := q.RunOnce(ctx); got != 0 {
		t.Fatalf("%d attempts before the backoff ran out", got)
	}
	e.clock.Advance(5 * time.Minute)
	maxActive = 0
	if got := q.RunOnce(ctx); got != n-3 {
		t.Fatalf("%d attempts when due, want %d (the held one waits)", got, n-3)
	}
	if maxActive > 4 {
		t.Errorf("%d messages in memory at once, ActiveLimit 4", maxActive)
	}
	if l := q.List(); len(l) != 1 || l[0].ID != ids[2] || !l[0].Held {
		t.Fatalf("left: %+v, want the held one", l)
	}
	checkCounts(t, q)
	if err := q.Release(ids[2]); err != nil {
		t.Fatal(err)
	}
	q.Flush()
	if got := q.RunOnce(ctx); got != 1 || len(q.List()) != 0 {
		t.Fatalf("after Release: %d attempts, %d left", got, len(q.List()))
	}
}

// TestIndexFlush: Flush makes indexed messages due, and their recipients
// with them when they are loaded.
func TestIndexFlush(t *testing.T) {
	rec := &recorder{script: []error{temp, temp, temp}}
	e := open(t, rec, func(o *Options) { o.ActiveLimit = 1 })
	for i := range 3 {
		enqueue(t, e.q, "alice@example.org", fmt.Sprintf("r%d@x.example", i))
	}
	if got := e.q.RunOnce(ctx); got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
	if got := e.q.RunOnce(ctx); got != 0 {
		t.Fatalf("%d attempts before the backoff", got)
	}
	e.q.Flush()
	if got := e.q.RunOnce(ctx); got != 3 || len(e.q.List()) != 0 {
		t.Fatalf("after Flush: %d attempts, %d left; want 3 and 0", got, len(e.q.List()))
	}
}

// TestIndexDamage: an env file whose prefix reads but whose rest is
// damaged is found when it becomes due: set aside, like at Open.
func TestIndexDamage(t *testing.T) {
	rec := &recorder{script: []error{temp}}
	e := open(t, rec, nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(ctx)
	e.q.Close()
	path := filepath.Join(e.dir, "env", id+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, data[:len(data)-10], 0o600) // torn at the end
	q, err := Open(Options{Dir: e.dir, Courier: rec, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	e.clock.Advance(time.Hour)
	if got := q.RunOnce(ctx); got != 0 {
		t.Fatalf("%d attempts of a damaged message", got)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "corrupt", id+".json")); err != nil {
		t.Fatalf("not set aside: %v", err)
	}
}

// TestSnapshot: after a clean Close, Open indexes the messages of the
// index snapshot without opening their env files, and removes the
// snapshot; a damaged snapshot is ignored (the prefixes are read).
func TestSnapshot(t *testing.T) {
	rec := &recorder{script: []error{temp, temp, temp, temp, temp, temp}}
	ffs := &faultFS{}
	e := open(t, rec, func(o *Options) { o.FS = ffs })
	for i := range 6 {
		enqueue(t, e.q, "alice@example.org", fmt.Sprintf("r%d@x%d.example", i, i%2))
	}
	e.q.RunOnce(ctx)
	e.q.Close()
	snapPath := filepath.Join(e.dir, snapName)
	if _, err := os.Stat(snapPath); err != nil {
		t.Fatalf("no snapshot after Close: %v", err)
	}
	var mu sync.Mutex
	opened := 0
	count := func(op, path string) error {
		if op == "open" && strings.HasPrefix(path, filepath.Join(e.dir, "env")+string(filepath.Separator)) {
			mu.Lock()
			opened++
			mu.Unlock()
		}
		return nil
	}
	reopen := func() *Queue {
		t.Helper()
		mu.Lock()
		opened = 0
		mu.Unlock()
		ffs.set(count)
		q, err := Open(Options{Dir: e.dir, FS: ffs, Courier: rec, Now: e.clock.Now, Bounce: e.bounces.take,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ffs.set(nil)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := reopen()
	if opened != 0 || q.idx.len() != 6 {
		t.Fatalf("Open with a snapshot opened %d env files and indexed %d; want 0 and 6", opened, q.idx.len())
	}
	checkCounts(t, q)
	if _, err := os.Stat(snapPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot still there after Open: %v", err)
	}
	if got := q.RunOnce(ctx); got != 0 {
		t.Fatalf("%d attempts before the backoff", got)
	}
	q.Close()

	os.WriteFile(snapPath, []byte(snapMagic+"torn"), 0o600)
	q = reopen()
	defer q.Close()
	if opened != 6 || q.idx.len() != 6 {
		t.Fatalf("Open with a damaged snapshot opened %d env files and indexed %d; want 6 and 6", opened, q.idx.len())
	}
	e.clock.Advance(5 * time.Minute)
	if got := q.RunOnce(ctx); got != 6 || len(q.List()) != 0 {
		t.Fatalf("when due: %d attempts, %d left; want 6 and 0", got, len(q.List()))
	}
}

func TestParseSnapshot(t *testing.T) {
	k, _ := keyOf("0123456789abcdef01234567")
	entry := append(append([]byte(nil), k[:]...), 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 7, 0, 1, 0, 2, 0, 0, 0, 0)
	seal := func(b []byte) []byte {
		return append(b, byte(crc32.ChecksumIEEE(b)>>24), byte(crc32.ChecksumIEEE(b)>>16), byte(crc32.ChecksumIEEE(b)>>8), byte(crc32.ChecksumIEEE(b)))
	}
	good := seal(append([]byte(snapMagic), entry...))
	tests := []struct {
		name string
		in   []byte
		n    int
		ok   bool
	}{
		{"one entry", good, 1, true},
		{"empty index", seal([]byte(snapMagic)), 0, true},
		{"bad checksum", append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1), 0, false},
		{"cut entry", seal(append([]byte(snapMagic), entry[:10]...)), 0, false},
		{"other magic", seal(append([]byte("smtpkit queue index 1\n"), entry...)), 0, false},
		{"negative due", seal(append(append([]byte(snapMagic), k[:]...), 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), 0, false},
		{"short", []byte("smtp"), 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSnapshot(tt.in)
		want := parked{due: 42, size: 7, counts: [numStates]uint16{1, 2, 0, 0}}
		if ok != tt.ok || len(got) != tt.n || (ok && tt.n == 1 && got[k] != want) {
			t.Errorf("%s: %v %v, want %d entries, ok %v", tt.name, got, ok, tt.n, tt.ok)
		}
	}
}

// checkCounts compares Counts (memory and the index's totals) with what
// List (every env file) says.
func checkCounts(t *testing.T, q *Queue) {
	t.Helper()
	got := q.Counts()
	want := Counts{Recipients: map[State]int{Queued: 0, Deferred: 0, Delivered: 0, Failed: 0}}
	for _, s := range q.List() {
		want.Messages++
		if s.Held {
			want.Held++
		}
		want.Bytes += s.Size
		for _, r := range s.Recipients {
			want.Recipients[r.State]++
		}
		if want.Oldest.IsZero() || s.Arrival.Before(want.Oldest) {
			want.Oldest = s.Arrival
		}
	}
	if got.Messages != want.Messages || got.Held != want.Held || got.Bytes != want.Bytes ||
		!maps.Equal(got.Recipients, want.Recipients) || !got.Oldest.Truncate(time.Millisecond).Equal(want.Oldest.Truncate(time.Millisecond)) {
		t.Fatalf("Counts %+v, List says %+v", got, want)
	}
}

// TestRunRetriesFromIndex drives the real loop: a deferred message leaves
// memory for the index, and Run wakes at its due time (the index's top),
// reads it back and delivers it — no earlier than the backoff.
func TestRunRetriesFromIndex(t *testing.T) {
	type try struct {
		at   time.Time
		rcpt string
	}
	tries := make(chan try, 4)
	var mu sync.Mutex
	n := 0
	e := open(t, courierFunc(func(ctx context.Context, d *Attempt) []Result {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		tries <- try{time.Now(), d.Recipients[0]}
		if first {
			return allTemporary(d.Recipients, errors.New("connection refused"))
		}
		return []Result{{Rcpt: d.Recipients[0]}}
	}), func(o *Options) { o.Now = time.Now; o.RetryMin = 200 * time.Millisecond; o.RetryMax = time.Second })
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- e.q.Run(rctx) }()
	defer func() {
		cancel()
		<-stopped
	}()
	enqueue(t, e.q, "alice@example.org", "bob@example.net")
	var got []try
	for len(got) < 2 {
		select {
		case tr := <-tries:
			got = append(got, tr)
		case <-time.After(10 * time.Second): // deadlock guard only
			t.Fatalf("%d attempts after 10s, want 2", len(got))
		}
	}
	if gap := got[1].at.Sub(got[0].at); gap < 200*time.Millisecond {
		t.Errorf("retried after %v, before the backoff of 200ms", gap)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.q.List()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the delivered message stayed in the queue")
		}
		time.Sleep(time.Millisecond) // polling, bounded by the deadline
	}
}
