package dmarcrpt

// store.go: the rows, per reporting domain and UTC day (RFC 7489 §7.2),
// kept in memory, flushed to <data_dir>/dmarc/rows.json and read back at
// start-up.
//
// Durability rules (those of internal/tlsrpt's counters):
//   - Add only changes memory (a mutex and a map look-up, no I/O).
//   - The rows are written whole, atomically (atomicfile: temporary file,
//     fsync, rename, directory fsync), every StoreOptions.Flush (default
//     30s) when something changed, and on Close; a crash loses at most the
//     messages of the last Flush interval, never the file.
//   - A file that cannot be read is moved aside (rows.json.bad) and
//     counting starts afresh: reports never keep mail from flowing.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/atomicfile"
	"smtpkit/internal/statefile"
)

// Bounds on what the Store holds (house rule 4: any sender can make us
// count under its own domain, from many addresses).
const (
	MaxBuckets = 10000 // domain-days held at once
	MaxRows    = 1000  // distinct rows per domain-day; more are dropped (and logged)
	// MaxTotalRows bounds the rows of all domain-days together (memory:
	// a few hundred bytes a row).
	MaxTotalRows = 100000
	MaxRecordLen = 2048 // bytes of the DMARC record text kept
	// MaxPendingAge is how long after its day ended a report is still
	// sent (or retried); older rows are dropped.
	MaxPendingAge = 72 * time.Hour
)

const day = 24 * time.Hour

// StoreOptions configure a Store.
type StoreOptions struct {
	Dir    string        // <data_dir>/dmarc, created 0700
	Flush  time.Duration // how often changed rows are written; 0 = 30s
	Now    func() time.Time
	Logger *slog.Logger
}

// Store holds the rows not reported yet. Add is safe for concurrent use.
type Store struct {
	opts StoreOptions
	path string
	log  *slog.Logger

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	rows    int    // rows in all buckets (MaxTotalRows)
	gen     uint64 // bumped by every change
	dropped int64  // messages not counted since the last flush (bounds)

	flushMu sync.Mutex         // one write of the file at a time
	saved   uint64             // gen of the last write
	flusher *statefile.Flusher // writes the file every Flush and at Close
}

type bucketKey struct {
	domain string
	day    time.Time // UTC midnight
}

// bucket is one domain-day from start (its midnight, or the end of the
// last report sent for it).
type bucket struct {
	key    bucketKey
	start  time.Time
	record string // the DMARC record last seen for the domain
	rows   []Counted
	idx    map[string]int
}

// Counted is a Row and how many messages it stands for.
type Counted struct {
	Row
	Count int64 `json:"count"`
}

// Pending is one domain-day not yet reported: the messages from Start
// until End (exclusive).
type Pending struct {
	Domain string    `json:"domain"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Record string    `json:"record"`
	Rows   []Counted `json:"rows"`
}

// Messages is the number of messages p counts.
func (p Pending) Messages() int64 {
	var n int64
	for _, r := range p.Rows {
		n += r.Count
	}
	return n
}

// NewStore opens the rows in opts.Dir and starts writing them every
// opts.Flush. Close stops that and writes them a last time.
func NewStore(opts StoreOptions) (*Store, error) {
	if opts.Flush <= 0 {
		opts.Flush = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dmarcrpt: %w", err)
	}
	s := &Store{
		opts: opts, path: filepath.Join(opts.Dir, "rows.json"), log: opts.Logger,
		buckets: map[bucketKey]*bucket{},
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.flusher = statefile.Start(opts.Flush, s.Flush, func(err error) {
		s.log.Error("dmarcrpt: writing the rows failed; will retry", "path", s.path, "err", err)
	})
	return s, nil
}

// Add counts one message under its policy domain and today's UTC date.
func (s *Store) Add(m Message) {
	domain := domainName(m.PolicyDomain)
	if domain == "" {
		return
	}
	now := s.opts.Now().UTC()
	k := bucketKey{domain, now.Truncate(day)}
	row := m.Row.bounded()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(k, k.day)
	if b == nil || !s.add(b, Counted{Row: row, Count: 1}) {
		s.dropped++
		return
	}
	b.record = cut(m.Record, MaxRecordLen)
	s.gen++
}

// bucket returns the bucket of k, creating it (from start) if there is
// room; the caller holds s.mu.
func (s *Store) bucket(k bucketKey, start time.Time) *bucket {
	if b := s.buckets[k]; b != nil {
		return b
	}
	if len(s.buckets) >= MaxBuckets {
		return nil
	}
	b := &bucket{key: k, start: start}
	s.buckets[k] = b
	return b
}

// add counts c into its row of b, or a new one if there is room; the
// caller holds s.mu.
func (s *Store) add(b *bucket, c Counted) bool {
	k := c.key()
	if i, ok := b.idx[k]; ok {
		b.rows[i].Count += c.Count
		return true
	}
	if len(b.rows) >= MaxRows || s.rows >= MaxTotalRows {
		return false
	}
	s.rows++
	if b.idx == nil {
		b.idx = map[string]int{}
	}
	b.idx[k] = len(b.rows)
	b.rows = append(b.rows, c)
	return true
}

// pending is a copy of b's rows, from b.start until end.
func (b *bucket) pending(end time.Time) Pending {
	rows := make([]Counted, len(b.rows))
	for i, r := range b.rows {
		r.DKIMResults = slices.Clone(r.DKIMResults)
		rows[i] = r
	}
	return Pending{Domain: b.key.domain, Start: b.start, End: end, Record: b.record, Rows: rows}
}

// Snapshot returns the rows not yet reported, each domain-day until the
// end of its day or now, sorted by domain and start. Nothing changes.
func (s *Store) Snapshot() []Pending {
	now := s.opts.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Pending{}
	for _, b := range s.buckets {
		if len(b.rows) > 0 {
			end := b.key.day.Add(day)
			if now.Before(end) {
				end = now
			}
			out = append(out, b.pending(end))
		}
	}
	sortPending(out)
	return out
}

// Take removes and returns what is to be reported now: every finished
// day, and with current also today's rows until now (today's bucket then
// starts again from now). Days that ended more than MaxPendingAge ago are
// dropped unreported.
func (s *Store) Take(current bool) []Pending {
	now := s.opts.Now().UTC()
	today := now.Truncate(day)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pending
	for k, b := range s.buckets {
		switch {
		case k.day.Before(today):
			delete(s.buckets, k)
			s.rows -= len(b.rows)
			s.gen++
			if len(b.rows) == 0 {
				continue
			}
			if end := k.day.Add(day); now.Sub(end) > MaxPendingAge {
				s.log.Warn("dmarcrpt: rows too old to report, dropped", "domain", k.domain, "day", k.day.Format(time.DateOnly))
			} else {
				out = append(out, b.pending(end))
			}
		case current && k.day.Equal(today) && len(b.rows) > 0:
			out = append(out, b.pending(now))
			s.rows -= len(b.rows)
			*b = bucket{key: k, start: now, record: b.record}
			s.gen++
		}
	}
	sortPending(out)
	return out
}

// Restore puts back rows that Take returned but that could not be
// reported (a DNS lookup failed temporarily, the queue refused): they are
// reported with the next ones of their day.
func (s *Store) Restore(p Pending) {
	k := bucketKey{p.Domain, p.Start.UTC().Truncate(day)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restore(k, p)
}

func (s *Store) restore(k bucketKey, p Pending) bool {
	b := s.bucket(k, p.Start)
	if b == nil {
		s.dropped += p.Messages()
		return false
	}
	if p.Start.Before(b.start) {
		b.start = p.Start
	}
	if b.record == "" {
		b.record = p.Record
	}
	for _, r := range p.Rows {
		if !s.add(b, r) {
			s.dropped += r.Count
		}
	}
	s.gen++
	return true
}

func sortPending(ps []Pending) {
	slices.SortFunc(ps, func(a, b Pending) int {
		if c := strings.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
}

// Close stops the periodic flush and writes the rows a last time.
func (s *Store) Close() error { return s.flusher.Close() }

// savedFile is the rows file's content.
type savedFile struct {
	Version int           `json:"version"`
	Buckets []savedBucket `json:"buckets"`
}

type savedBucket struct {
	Day string `json:"day"` // YYYY-MM-DD, UTC
	Pending
}

const savedVersion = 1

// Flush writes the rows if they changed since the last write.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	gen := s.gen
	if gen == s.saved {
		s.mu.Unlock()
		return nil
	}
	f := savedFile{Version: savedVersion, Buckets: []savedBucket{}}
	for _, b := range s.buckets {
		if len(b.rows) > 0 || !b.start.Equal(b.key.day) {
			f.Buckets = append(f.Buckets, savedBucket{Day: b.key.day.Format(time.DateOnly), Pending: b.pending(time.Time{})})
		}
	}
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("dmarcrpt: messages not counted, the report rows are full", "messages", dropped, "max_buckets", MaxBuckets, "max_rows", MaxRows, "max_total_rows", MaxTotalRows)
	}
	slices.SortFunc(f.Buckets, func(a, b savedBucket) int { return strings.Compare(a.Day+a.Domain, b.Day+b.Domain) })
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, data, 0o600); err != nil {
		return fmt.Errorf("dmarcrpt: %w", err)
	}
	s.saved = gen
	return nil
}

// load reads the rows file, if any.
func (s *Store) load() error {
	if err := statefile.Load(s.path, s.parse, func() { s.buckets, s.rows = map[bucketKey]*bucket{}, 0 }, s.log); err != nil {
		return fmt.Errorf("dmarcrpt: %w", err)
	}
	return nil
}

func (s *Store) parse(data []byte) error {
	var f savedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f.Version != savedVersion {
		return fmt.Errorf("version %d, want %d", f.Version, savedVersion)
	}
	for _, sb := range f.Buckets {
		d, err := time.Parse(time.DateOnly, sb.Day)
		if err != nil {
			return err
		}
		if !s.restore(bucketKey{sb.Domain, d.UTC()}, sb.Pending) {
			return errors.New("more buckets than MaxBuckets")
		}
	}
	return nil
}
