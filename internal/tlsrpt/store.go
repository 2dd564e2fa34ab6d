package tlsrpt

// store.go: the counters of outbound sessions, per policy domain and UTC
// day (RFC 8460 §4.1), kept in memory, flushed to <data_dir>/tlsrpt/
// counters.json and read back at start-up.
//
// Durability rules:
//   - Record only changes memory (a mutex and a few map look-ups, no I/O).
//   - The counters are written whole, atomically (atomicfile: temporary
//     file, fsync, rename, directory fsync), every StoreOptions.Flush
//     (default 30s) when something changed, and on Close; a crash loses at
//     most the sessions of the last Flush interval, never the file.
//   - A counters file that cannot be read is moved aside (counters.json.bad)
//     and counting starts afresh: statistics never keep mail from flowing.

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

// Bounds on what the counters hold: sessions beyond them still count in
// the totals where they can, or are dropped (and logged) when not even a
// bucket is left for them (house rule 4: a hostile domain can make us
// count many distinct MX hosts, addresses and messages).
const (
	MaxBuckets   = 10000 // domain-days held at once
	MaxPolicies  = 16    // distinct policies per domain-day
	MaxDetails   = 64    // distinct failure-details per policy
	MaxStrings   = 64    // policy-string lines kept per policy
	MaxStringLen = 4096  // bytes per policy-string line
	MaxMXHosts   = 16    // mx-host entries per policy
	MaxDetailLen = 256   // bytes of a failure's Detail
	// MaxPendingAge is how long after its day ended a report is still
	// sent (or retried, RFC 8460 §5.5: "for up to 24 hours after the
	// initial attempt"); older counts are dropped.
	MaxPendingAge = 36 * time.Hour
)

// day is 24 hours: UTC days have no leap seconds in Go's time.
const day = 24 * time.Hour

// StoreOptions configure a Store.
type StoreOptions struct {
	Dir    string        // <data_dir>/tlsrpt, created 0700
	Flush  time.Duration // how often changed counters are written; 0 = 30s
	Now    func() time.Time
	Logger *slog.Logger
}

// Store counts sessions per policy domain and UTC day. It implements
// Recorder; Record is safe for concurrent use.
type Store struct {
	opts StoreOptions
	path string
	log  *slog.Logger

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	gen     uint64 // bumped by every change
	dropped int64  // sessions not counted since the last flush (bounds)

	flushMu sync.Mutex         // one write of the file at a time
	saved   uint64             // gen of the last write
	flusher *statefile.Flusher // writes the file every Flush and at Close
}

type bucketKey struct {
	domain string
	day    time.Time // UTC midnight
}

// bucket is one domain-day: the policies met and their counts, from start
// (the day's midnight, or the end of the last report sent for the day).
type bucket struct {
	key      bucketKey
	start    time.Time
	policies []PolicyResult
	pidx     map[string]int
	didx     map[detailKey]int
}

type detailKey struct {
	policy                     int
	result                     ResultType
	sending, receiving, mx, fr string
}

// Pending is the counts of one domain-day not yet reported: the sessions
// from Start until End (exclusive).
type Pending struct {
	Domain   string         `json:"domain"`
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Policies []PolicyResult `json:"policies"`
}

// Totals sums the sessions of every policy.
func (p Pending) Totals() (successful, failed int64) {
	for _, pr := range p.Policies {
		successful += pr.Summary.Successful
		failed += pr.Summary.Failed
	}
	return successful, failed
}

// NewStore opens the counters in opts.Dir and starts writing them every
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
		return nil, fmt.Errorf("tlsrpt: %w", err)
	}
	s := &Store{
		opts: opts, path: filepath.Join(opts.Dir, "counters.json"), log: opts.Logger,
		buckets: map[bucketKey]*bucket{},
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.flusher = statefile.Start(opts.Flush, s.Flush, func(err error) {
		s.log.Error("tlsrpt: writing the counters failed; will retry", "path", s.path, "err", err)
	})
	return s, nil
}

// Record counts one session under its domain and today's UTC date.
func (s *Store) Record(ss Session) {
	if ss.Domain == "" {
		return
	}
	if ss.Policy == "" {
		ss.Policy = PolicyNone
	}
	now := s.opts.Now().UTC()
	k := bucketKey{strings.ToLower(strings.TrimSuffix(ss.Domain, ".")), now.Truncate(day)}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(k, k.day)
	if b == nil {
		s.dropped++
		return
	}
	s.gen++
	pi := b.policy(ss.Policy, ss.Strings)
	if pi < 0 {
		s.dropped++
		return
	}
	p := &b.policies[pi]
	if ss.Policy == PolicyTLSA && ss.MXHost != "" && len(p.Policy.MXHost) < MaxMXHosts && !slices.Contains(p.Policy.MXHost, ss.MXHost) {
		p.Policy.MXHost = append(p.Policy.MXHost, ss.MXHost)
	}
	if ss.Result == "" {
		p.Summary.Successful++
		return
	}
	p.Summary.Failed++
	d := FailureDetail{ResultType: ss.Result, ReceivingMXHostname: ss.MXHost, FailedSessionCount: 1,
		FailureReasonCode: truncate(ss.Detail, MaxDetailLen)}
	if ss.SendingIP.IsValid() {
		d.SendingMTAIP = ss.SendingIP.String()
	}
	if ss.ReceivingIP.IsValid() {
		d.ReceivingIP = ss.ReceivingIP.String()
	}
	b.addDetail(pi, d)
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

// policy returns the index of the policy (typ, text) in b, adding it if
// there is room; -1 when there is none.
func (b *bucket) policy(typ PolicyType, text []string) int {
	pk := string(typ) + "\x00" + strings.Join(text, "\x00")
	if i, ok := b.pidx[pk]; ok {
		return i
	}
	if len(b.policies) >= MaxPolicies {
		return -1
	}
	if b.pidx == nil {
		b.pidx = map[string]int{}
	}
	p := Policy{Type: typ, Domain: b.key.domain}
	for _, line := range text[:min(len(text), MaxStrings)] {
		p.String = append(p.String, truncate(line, MaxStringLen))
	}
	if typ == PolicySTS {
		p.MXHost = stsMXHosts(text)
	}
	b.pidx[pk] = len(b.policies)
	b.policies = append(b.policies, PolicyResult{Policy: p})
	return len(b.policies) - 1
}

// addDetail counts d under policy pi: into the detail with the same
// result, addresses, host and reason, or a new one if there is room.
func (b *bucket) addDetail(pi int, d FailureDetail) {
	k := detailKey{pi, d.ResultType, d.SendingMTAIP, d.ReceivingIP, d.ReceivingMXHostname, d.FailureReasonCode}
	p := &b.policies[pi]
	if i, ok := b.didx[k]; ok {
		p.FailureDetails[i].FailedSessionCount += d.FailedSessionCount
		return
	}
	if len(p.FailureDetails) >= MaxDetails {
		return // counted in the summary only
	}
	if b.didx == nil {
		b.didx = map[detailKey]int{}
	}
	b.didx[k] = len(p.FailureDetails)
	p.FailureDetails = append(p.FailureDetails, d)
}

// merge adds the counts of pr (a policy result of this domain) to b.
func (b *bucket) merge(pr PolicyResult) bool {
	pi := b.policy(pr.Policy.Type, pr.Policy.String)
	if pi < 0 {
		return false
	}
	p := &b.policies[pi]
	p.Summary.Successful += pr.Summary.Successful
	p.Summary.Failed += pr.Summary.Failed
	for _, h := range pr.Policy.MXHost {
		if len(p.Policy.MXHost) < MaxMXHosts && !slices.Contains(p.Policy.MXHost, h) {
			p.Policy.MXHost = append(p.Policy.MXHost, h)
		}
	}
	for _, d := range pr.FailureDetails {
		b.addDetail(pi, d)
	}
	return true
}

func (b *bucket) empty() bool { return len(b.policies) == 0 }

// pending is a deep copy of b's counts, from b.start until end.
func (b *bucket) pending(end time.Time) Pending {
	p := Pending{Domain: b.key.domain, Start: b.start, End: end, Policies: make([]PolicyResult, len(b.policies))}
	for i, pr := range b.policies {
		pr.Policy.String = slices.Clone(pr.Policy.String)
		pr.Policy.MXHost = slices.Clone(pr.Policy.MXHost)
		pr.FailureDetails = slices.Clone(pr.FailureDetails)
		p.Policies[i] = pr
	}
	return p
}

// stsMXHosts is the "mx:" patterns of an MTA-STS policy's lines
// (RFC 8461 §3.2), the report's mx-host for an sts policy.
func stsMXHosts(lines []string) []string {
	var hosts []string
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(k) == "mx" && len(hosts) < MaxMXHosts {
			hosts = append(hosts, strings.TrimSpace(v))
		}
	}
	return hosts
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Snapshot returns the counts not yet reported, each domain-day until
// the end of its day or now, sorted by domain and start. Nothing changes.
func (s *Store) Snapshot() []Pending {
	now := s.opts.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pending
	for _, b := range s.buckets {
		if !b.empty() {
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
// day, and with current also today's counts until now (today's bucket
// then starts again from now). Days that ended more than MaxPendingAge
// ago are dropped unreported.
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
			s.gen++
			if b.empty() {
				continue
			}
			if end := k.day.Add(day); now.Sub(end) > MaxPendingAge {
				s.log.Warn("tlsrpt: counters too old to report, dropped", "domain", k.domain, "day", k.day.Format(time.DateOnly))
			} else {
				out = append(out, b.pending(end))
			}
		case current && k.day.Equal(today) && !b.empty():
			out = append(out, b.pending(now))
			*b = bucket{key: k, start: now}
			s.gen++
		}
	}
	sortPending(out)
	return out
}

// Restore puts back counts that Take returned but that could not be
// reported (the rua lookup failed temporarily, every destination
// refused): they are reported with the next ones of their day.
func (s *Store) Restore(p Pending) {
	k := bucketKey{p.Domain, p.Start.UTC().Truncate(day)}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(k, p.Start)
	if b == nil {
		s.dropped++
		return
	}
	if p.Start.Before(b.start) {
		b.start = p.Start
	}
	for _, pr := range p.Policies {
		if !b.merge(pr) {
			s.dropped++
		}
	}
	s.gen++
}

func sortPending(ps []Pending) {
	slices.SortFunc(ps, func(a, b Pending) int {
		if c := strings.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
}

// Close stops the periodic flush and writes the counters a last time.
func (s *Store) Close() error { return s.flusher.Close() }

// savedFile is the counters file's content.
type savedFile struct {
	Version int           `json:"version"`
	Buckets []savedBucket `json:"buckets"`
}

type savedBucket struct {
	Domain   string         `json:"domain"`
	Day      string         `json:"day"` // YYYY-MM-DD, UTC
	Start    time.Time      `json:"start"`
	Policies []PolicyResult `json:"policies"`
}

const savedVersion = 1

// Flush writes the counters if they changed since the last write.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	gen := s.gen
	if gen == s.saved {
		s.mu.Unlock()
		return nil
	}
	f := savedFile{Version: savedVersion}
	for _, b := range s.buckets {
		if !b.empty() || !b.start.Equal(b.key.day) {
			p := b.pending(time.Time{})
			f.Buckets = append(f.Buckets, savedBucket{Domain: p.Domain, Day: b.key.day.Format(time.DateOnly), Start: p.Start, Policies: p.Policies})
		}
	}
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("tlsrpt: sessions not counted, the counters are full", "sessions", dropped, "max_buckets", MaxBuckets, "max_policies", MaxPolicies)
	}
	slices.SortFunc(f.Buckets, func(a, b savedBucket) int {
		return strings.Compare(a.Day+a.Domain, b.Day+b.Domain)
	})
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, data, 0o600); err != nil {
		return fmt.Errorf("tlsrpt: %w", err)
	}
	s.saved = gen
	return nil
}

// load reads the counters file, if any.
func (s *Store) load() error {
	if err := statefile.Load(s.path, s.parse, func() { s.buckets = map[bucketKey]*bucket{} }, s.log); err != nil {
		return fmt.Errorf("tlsrpt: %w", err)
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
		k := bucketKey{sb.Domain, d.UTC()}
		b := s.bucket(k, sb.Start)
		if b == nil {
			return errors.New("more buckets than MaxBuckets")
		}
		for _, pr := range sb.Policies {
			b.merge(pr)
		}
	}
	return nil
}
