// Package sendlimit counts what each authenticated account sends — messages
// and distinct recipient addresses per hour and per day — so that a
// compromised account is slowed (451 4.7.1, the caller's reply) and
// logged before it sends spam in volume, as the per-user quotas of large
// mail services do.
//
// Windows slide: a limit counts what was accepted in the hour (or day)
// before now, to the second, so there is no boundary at which an account
// may send twice its limit. A message counts when its MAIL is accepted, a
// recipient when its RCPT is accepted and it was not counted in the window
// already (as Postfix's anvil counts requests, not deliveries): what a
// client tries and is refused later does not come back.
//
// Memory and the state file are bounded by the limits themselves: an
// account keeps at most one timestamp per message and one per distinct
// recipient inside the longest window that has a limit, and what is
// refused is not recorded. Recipients are kept as a hash of the
// lower-cased address, not the address. With Options.Dir set, the counts
// survive a restart (<dir>/counts.json, written by a statefile.Flusher).
package sendlimit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/statefile"
)

// Limits are the most an account may send; 0 is no limit.
type Limits struct {
	MessagesPerHour   int
	MessagesPerDay    int
	RecipientsPerHour int // distinct recipient addresses
	RecipientsPerDay  int
}

// The limit names, as in the configuration ([account_limits]) and the
// metrics label.
const (
	MessagesPerHour   = "messages_per_hour"
	MessagesPerDay    = "messages_per_day"
	RecipientsPerHour = "recipients_per_hour"
	RecipientsPerDay  = "recipients_per_day"
)

// Exceeded names the limit a message or recipient would go over; the zero
// value means it was within every limit (and was counted).
type Exceeded struct {
	Limit  string        // one of the limit names, "" when within the limits
	Max    int           // the limit's value
	Window time.Duration // an hour or a day
}

// OK reports whether nothing was exceeded.
func (e Exceeded) OK() bool { return e.Limit == "" }

// String is "500 messages per hour", for replies and logs.
func (e Exceeded) String() string {
	if e.OK() {
		return "within the limits"
	}
	what := "messages"
	if strings.HasPrefix(e.Limit, "recipients") {
		what = "distinct recipients"
	}
	per := "hour"
	if e.Window == day {
		per = "day"
	}
	return fmt.Sprintf("%d %s per %s", e.Max, what, per)
}

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// MaxAccounts bounds how many accounts are followed at once; an account
// whose windows are empty is dropped first. Beyond it new accounts are
// not counted (and logged): counting never keeps mail from flowing.
const MaxAccounts = 100000

// Options configure a Store.
type Options struct {
	Limits Limits
	// Dir holds counts.json; "" keeps the counts in memory only.
	Dir string
	// Flush is how often the counts are written, default 30s.
	Flush  time.Duration
	Now    func() time.Time // default time.Now
	Logger *slog.Logger
}

// Store is the counts of every account. It is safe for concurrent use:
// mu guards the table of accounts and the limits, each account's own
// mutex its counts (so that an account at its limit, whose every RCPT
// looks at thousands of recipients, slows only its own sessions). Lock
// order: Store.mu, then an account's.
type Store struct {
	now     func() time.Time
	log     *slog.Logger
	path    string // "" without Dir
	flusher *statefile.Flusher

	gen     atomic.Uint64 // bumped on every change; Flush writes when it moved
	flushMu sync.Mutex    // one Flush at a time
	saved   uint64        // gen written last (under flushMu)

	mu     sync.Mutex
	limits Limits
	byName map[string]*account
	full   int // accounts not counted since the last Flush (MaxAccounts)
}

// account is what one account sent inside the longest window kept.
type account struct {
	mu    sync.Mutex
	dead  bool             // pruned from Store.byName: look the account up again
	sent  []int64          // Unix seconds of each message counted, ascending
	rcpts map[uint64]int64 // recipient hash → Unix seconds it was last counted
}

// Open starts a Store, reading opts.Dir's counts when there are any.
func Open(opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Flush <= 0 {
		opts.Flush = 30 * time.Second
	}
	s := &Store{now: opts.Now, log: opts.Logger, limits: opts.Limits, byName: map[string]*account{}}
	if opts.Dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("account limits: %w", err)
	}
	s.path = filepath.Join(opts.Dir, "counts.json")
	if err := statefile.Load(s.path, s.parse, s.reset, s.log); err != nil {
		return nil, fmt.Errorf("account limits: %w", err)
	}
	s.flusher = statefile.Start(opts.Flush, s.Flush, func(err error) {
		s.log.Error("account limits: writing the counts failed; will retry", "path", s.path, "err", err)
	})
	return s, nil
}

// SetLimits replaces the limits (a reload); the counts are kept.
func (s *Store) SetLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
}

// check is one limit of a kind.
type check struct {
	limit  string
	max    int
	window time.Duration
}

// Message is asked at MAIL of an authenticated session: when the account
// is within its message limits the message is counted, otherwise the
// limit it would exceed is returned and nothing is counted.
func (s *Store) Message(name string) Exceeded {
	return s.with(name, func(l Limits) bool { return l.MessagesPerHour > 0 || l.MessagesPerDay > 0 },
		func(a *account, l Limits, now int64) Exceeded {
			for _, c := range []check{{MessagesPerHour, l.MessagesPerHour, hour}, {MessagesPerDay, l.MessagesPerDay, day}} {
				if c.max > 0 && countSince(a.sent, now-seconds(c.window)) >= c.max {
					return Exceeded{Limit: c.limit, Max: c.max, Window: c.window}
				}
			}
			a.sent = append(a.sent, now)
			return Exceeded{}
		})
}

// Recipient is asked at RCPT of an authenticated session: a recipient
// already counted inside a window does not count again there; a new one
// is counted when the account is within its recipient limits, otherwise
// the limit it would exceed is returned and nothing is counted.
func (s *Store) Recipient(name, rcpt string) Exceeded {
	h := rcptHash(rcpt)
	return s.with(name, func(l Limits) bool { return l.RecipientsPerHour > 0 || l.RecipientsPerDay > 0 },
		func(a *account, l Limits, now int64) Exceeded {
			last, seen := a.rcpts[h]
			for _, c := range []check{{RecipientsPerHour, l.RecipientsPerHour, hour}, {RecipientsPerDay, l.RecipientsPerDay, day}} {
				since := now - seconds(c.window)
				if c.max <= 0 || (seen && last > since) {
					continue // no limit, or already one of this window's
				}
				n := 0
				for _, t := range a.rcpts {
					if t > since {
						n++
					}
				}
				if n >= c.max {
					return Exceeded{Limit: c.limit, Max: c.max, Window: c.window}
				}
			}
			a.rcpts[h] = now
			return Exceeded{}
		})
}

// with runs count on name's counts, under the account's lock, with what
// fell out of the kept window dropped, when active says the limits count
// anything; a count that returns OK changed the counts.
func (s *Store) with(name string, active func(Limits) bool, count func(*account, Limits, int64) Exceeded) Exceeded {
	name = strings.ToLower(name)
	for {
		s.mu.Lock()
		l, keep := s.limits, s.keep()
		if !active(l) {
			s.mu.Unlock()
			return Exceeded{}
		}
		now := s.now().Unix()
		a := s.account(name, now)
		s.mu.Unlock()
		if a == nil {
			return Exceeded{}
		}
		a.mu.Lock()
		if a.dead { // pruned meanwhile: its replacement is in the table
			a.mu.Unlock()
			continue
		}
		a.expire(now - seconds(keep))
		e := count(a, l, now)
		a.mu.Unlock()
		if e.OK() {
			s.gen.Add(1)
		}
		return e
	}
}

// account returns name's counts, creating them; nil when MaxAccounts are
// followed already. Called with mu held.
func (s *Store) account(name string, now int64) *account {
	a := s.byName[name]
	if a == nil {
		if len(s.byName) >= MaxAccounts {
			s.prune(now)
		}
		if len(s.byName) >= MaxAccounts {
			s.full++
			return nil
		}
		a = &account{rcpts: map[uint64]int64{}}
		s.byName[name] = a
	}
	return a
}

// keep is the longest window that has a limit: what is older counts for
// nothing. Called with mu held.
func (s *Store) keep() time.Duration {
	if s.limits.MessagesPerDay > 0 || s.limits.RecipientsPerDay > 0 {
		return day
	}
	return hour
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// expire drops what was counted at or before since. Called with a.mu held.
func (a *account) expire(since int64) {
	i := sort.Search(len(a.sent), func(i int) bool { return a.sent[i] > since })
	if i > 0 {
		a.sent = append(a.sent[:0], a.sent[i:]...)
	}
	for h, t := range a.rcpts {
		if t <= since {
			delete(a.rcpts, h)
		}
	}
}

// prune drops the accounts with nothing left in their windows. Called with
// mu held; takes each account's lock.
func (s *Store) prune(now int64) {
	since := now - seconds(s.keep())
	for name, a := range s.byName {
		a.mu.Lock()
		a.expire(since)
		if len(a.sent) == 0 && len(a.rcpts) == 0 {
			a.dead = true
			delete(s.byName, name)
		}
		a.mu.Unlock()
	}
}

// countSince counts the times after since in ascending ts.
func countSince(ts []int64, since int64) int {
	return len(ts) - sort.Search(len(ts), func(i int) bool { return ts[i] > since })
}

// rcptHash is the key of a recipient address: the first 8 octets of the
// SHA-256 of the lower-cased address, so that the state file holds no
// addresses and crafted addresses cannot collide to pass as one.
func rcptHash(rcpt string) uint64 {
	sum := sha256.Sum256([]byte(strings.ToLower(rcpt)))
	return binary.BigEndian.Uint64(sum[:8])
}
