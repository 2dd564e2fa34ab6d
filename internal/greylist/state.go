package greylist

// state.go: the greylist on disk, <dir>/greylist.json, written whole and
// atomically (internal/atomicfile) every Options.Flush when it changed
// and at Close, and read back at Open. A crash loses at most the changes
// of the last Flush interval: a sender whose first attempt is lost is
// deferred once more; one whose pass is lost is greylisted again, as a
// new correspondent. A file that cannot be read is moved aside
// (greylist.json.bad) and greylisting starts afresh (statefile.Load):
// the worst outcome is one more delay per correspondent, never lost mail.

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"smtpkit/internal/atomicfile"
)

const (
	stateFile    = "greylist.json"
	savedVersion = 1
	// maxField bounds a sender or recipient read back (RFC 5321
	// §4.5.3.1.3: a path is at most 256 octets; normalization only
	// shortens it).
	maxField = 512
)

type savedFile struct {
	Version int          `json:"version"`
	Entries []savedEntry `json:"entries"`
}

// savedEntry is one triplet; times are Unix seconds, Last is 0 while the
// triplet is pending.
type savedEntry struct {
	Net    string `json:"net"`
	Sender string `json:"sender"`
	Rcpt   string `json:"rcpt"`
	First  int64  `json:"first"`
	Last   int64  `json:"last,omitempty"`
}

// Flush writes the state when it changed since the last write, after
// dropping what has expired.
func (l *List) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	l.expire(l.opts.Now(), -1)
	gen := l.gen
	if gen == l.saved {
		l.mu.Unlock()
		return nil
	}
	f := savedFile{Version: savedVersion, Entries: make([]savedEntry, 0, len(l.m))}
	for _, lst := range []*list.List{l.pending, l.passed} {
		for el := lst.Front(); el != nil; el = el.Next() {
			e := el.Value.(*entry)
			se := savedEntry{Net: e.key.Net.String(), Sender: e.key.Sender, Rcpt: e.key.Rcpt, First: e.first.Unix()}
			if e.isPassed() {
				se.Last = e.last.Unix()
			}
			f.Entries = append(f.Entries, se)
		}
	}
	evicted := l.evicted
	l.evicted = 0
	l.mu.Unlock()
	if evicted > 0 {
		l.log.Warn("greylist: full, oldest triplets dropped", "dropped", evicted, "max_entries", l.opts.MaxEntries)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(l.path, data, 0o600); err != nil {
		return fmt.Errorf("greylist: %w", err)
	}
	l.saved = gen
	return nil
}

// parse reads a state file into the empty list: every entry is checked,
// the expired ones are dropped, and at most MaxEntries are kept (the
// newest).
func (l *List) parse(data []byte) error {
	var f savedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f.Version != savedVersion {
		return fmt.Errorf("version %d, want %d", f.Version, savedVersion)
	}
	now := l.opts.Now()
	var pending, passed []*entry
	for i, se := range f.Entries {
		e, err := se.entry()
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if _, dup := l.m[e.key]; dup {
			return fmt.Errorf("entry %d: duplicate triplet", i)
		}
		l.m[e.key] = e
		if e.isPassed() {
			passed = append(passed, e)
		} else {
			pending = append(pending, e)
		}
	}
	byFirst := func(a, b *entry) int { return a.first.Compare(b.first) }
	byLast := func(a, b *entry) int { return a.last.Compare(b.last) }
	slices.SortStableFunc(pending, byFirst)
	slices.SortStableFunc(passed, byLast)
	for _, e := range pending {
		e.elem = l.pending.PushBack(e)
	}
	for _, e := range passed {
		e.elem = l.passed.PushBack(e)
	}
	l.expire(now, -1)
	for len(l.m) > l.opts.MaxEntries {
		l.evict()
	}
	l.evicted = 0
	return nil
}

// entry checks a saved entry and returns it.
func (se savedEntry) entry() (*entry, error) {
	p, err := netip.ParsePrefix(se.Net)
	if err != nil {
		return nil, err
	}
	if p != Network(p.Addr()) {
		return nil, fmt.Errorf("network %s is not a /%d or /%d", se.Net, v4Bits, v6Bits)
	}
	if se.Sender == "" || se.Rcpt == "" || len(se.Sender) > maxField || len(se.Rcpt) > maxField {
		return nil, errors.New("empty or overlong sender or recipient")
	}
	if se.First <= 0 || se.Last < 0 {
		return nil, errors.New("bad time")
	}
	e := &entry{key: Triplet{Net: p, Sender: se.Sender, Rcpt: se.Rcpt}, first: time.Unix(se.First, 0)}
	if se.Last > 0 {
		e.last = time.Unix(se.Last, 0)
	}
	return e, nil
}
