package queue

// index.go: the queue's memory bound. Only the active set (Options.
// ActiveLimit messages at most, plus those being received) is held whole
// in memory: messages that are due, in flight, or owe a DSN. A message
// with nothing due — deferred, or held — leaves it for the index (park):
// its id and when it is next due, 28 bytes or so, and its env file. When
// it becomes due and the active set has room, activateDue reads the env
// file again. This is Postfix's split of the active queue (bounded by
// qmgr_message_active_limit, 20000) from the deferred queue on disk, with
// an in-memory index so that no pass scans the disk.
//
// Open fills the index from the first bytes of each env file (the prefix:
// readPrefix), not from decoding every envelope; files without a prefix
// (written before it existed) are decoded whole.

import (
	"container/heap"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"time"
)

// msgKey is a message id in 12 bytes (ids are 24 lower-case hex digits).
type msgKey [idLen / 2]byte

func keyOf(id string) (msgKey, bool) {
	var k msgKey
	if !ValidID(id) {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(id))
	return k, err == nil
}

func (k msgKey) String() string { return hex.EncodeToString(k[:]) }

// An index due is a time in Unix nanoseconds, even; the low bit marks an
// entry Flush made due (its recipients are made due when it is loaded).
// never (held messages) is not on the heap.
const (
	never     = math.MaxInt64 - 1
	flushMark = 1
)

// parkedEntry is one heap entry of the index. An entry whose due differs
// from the map's is stale and skipped (lazy deletion).
type parkedEntry struct {
	due int64
	key msgKey
}

type parkedHeap []parkedEntry

func (h parkedHeap) Len() int { return len(h) }
func (h parkedHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return string(h[i].key[:]) < string(h[j].key[:])
}
func (h parkedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *parkedHeap) Push(x any)   { *h = append(*h, x.(parkedEntry)) }
func (h *parkedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// parked is what the index keeps of a message: when it is due, and what
// the queue's gauges count (Queue.Counts) — its size and its recipients by
// state, saturated at the field widths.
type parked struct {
	due    int64
	size   uint32
	counts [numStates]uint16
}

func parkedOf(due int64, size int64, counts [numStates]int) parked {
	p := parked{due: due, size: uint32(min(max(size, 0), math.MaxUint32))}
	for i, n := range counts {
		p.counts[i] = uint16(min(max(n, 0), math.MaxUint16))
	}
	return p
}

// index is the set of messages only on disk, by when they are next due,
// with running totals of what they count. Guarded by Queue.mu.
type index struct {
	due map[msgKey]parked
	h   parkedHeap
	// totals over due: messages held, octets, recipients by state
	held   int
	bytes  int64
	counts [numStates]int
}

func newIndex() index { return index{due: make(map[msgKey]parked)} }

func (x *index) len() int { return len(x.due) }

// add and sub keep the totals.
func (x *index) add(p parked, sign int) {
	if p.due == never {
		x.held += sign
	}
	x.bytes += int64(sign) * int64(p.size)
	for i, n := range p.counts {
		x.counts[i] += sign * int(n)
	}
}

// put records k (due never: held).
func (x *index) put(k msgKey, p parked) {
	if old, ok := x.due[k]; ok {
		x.add(old, -1)
	}
	x.due[k] = p
	x.add(p, +1)
	if p.due != never {
		heap.Push(&x.h, parkedEntry{due: p.due, key: k})
	}
}

// putAll records entries at once (Open): one heap.Init instead of a push
// each. Keys are new.
func (x *index) putAll(keys []msgKey, ps []parked) {
	if len(x.due) == 0 {
		x.due = make(map[msgKey]parked, len(keys))
	}
	for i, k := range keys {
		x.due[k] = ps[i]
		x.add(ps[i], +1)
		if ps[i].due != never {
			x.h = append(x.h, parkedEntry{due: ps[i].due, key: k})
		}
	}
	heap.Init(&x.h)
}

// take removes k, returning its due.
func (x *index) take(k msgKey) (int64, bool) {
	p, ok := x.due[k]
	if ok {
		delete(x.due, k)
		x.add(p, -1)
	}
	return p.due, ok
}

// clean drops stale entries off the top of the heap.
func (x *index) clean() {
	for len(x.h) > 0 {
		top := x.h[0]
		if p, ok := x.due[top.key]; ok && p.due == top.due {
			return
		}
		heap.Pop(&x.h)
	}
}

// peek is the earliest due.
func (x *index) peek() (time.Time, bool) {
	x.clean()
	if len(x.h) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, x.h[0].due&^flushMark), true
}

// popDue removes and returns the earliest entry due by now.
func (x *index) popDue(now time.Time) (msgKey, int64, bool) {
	x.clean()
	if len(x.h) == 0 || x.h[0].due&^flushMark > now.UnixNano() {
		return msgKey{}, 0, false
	}
	e := heap.Pop(&x.h).(parkedEntry)
	x.take(e.key)
	return e.key, e.due, true
}

// flushAll makes every entry that is not held due at now, marked.
func (x *index) flushAll(now time.Time) {
	d := nanos(now) | flushMark
	x.h = x.h[:0]
	for k, p := range x.due {
		if p.due == never {
			continue
		}
		p.due = d
		x.due[k] = p
		x.h = append(x.h, parkedEntry{due: d, key: k})
	}
	heap.Init(&x.h)
}

// oldest is the smallest id (ids begin with the arrival time), false when
// the index is empty. It walks the index: for a scrape, not a pass.
func (x *index) oldest() (msgKey, bool) {
	var min msgKey
	found := false
	for k := range x.due {
		if !found || string(k[:]) < string(min[:]) {
			min, found = k, true
		}
	}
	return min, found
}

// nanos is t as an index due (even; times before 1970 are 0).
func nanos(t time.Time) int64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return t.UnixNano() &^ flushMark
}

// parkable reports whether m should leave the active set: nothing of it
// is due before a later time (or it is held), nothing is in flight, and
// it is not being received or notified; or the active set is over its
// limit and m is not busy. The caller holds m.mu and q.mu; want is what
// rearm computed.
func (q *Queue) parkable(m *message, want map[string]time.Time, now time.Time) bool {
	if len(m.busy) > 0 || m.notifying || m.prepared {
		return false
	}
	if m.env.Held {
		return true
	}
	if len(want) == 0 {
		return false
	}
	if len(q.msgs) > q.opts.ActiveLimit {
		return true
	}
	for _, at := range want {
		if !at.After(now) {
			return false
		}
	}
	return true
}

// park moves m to the index at its earliest wake-up (never when held).
// The caller holds m.mu and q.mu.
func (q *Queue) park(m *message, want map[string]time.Time) {
	due := int64(never)
	if !m.env.Held {
		for _, at := range want {
			due = min(due, nanos(at))
		}
	}
	for _, it := range m.items {
		q.tl.unplace(it)
	}
	m.items = nil
	m.parked = true
	delete(q.msgs, m.id)
	k, _ := keyOf(m.id)
	q.idx.put(k, parkedOf(due, m.env.Size, m.env.countStates()))
	q.pokeLocked()
}

// activateDue brings the index's due messages into the active set while
// it has room, oldest due first.
func (q *Queue) activateDue(now time.Time) {
	for {
		q.mu.Lock()
		if len(q.msgs) >= q.opts.ActiveLimit {
			q.mu.Unlock()
			return
		}
		k, due, ok := q.idx.popDue(now)
		if !ok {
			q.mu.Unlock()
			return
		}
		m := q.enter(k)
		q.mu.Unlock()
		if m == nil {
			continue
		}
		if q.load(m, due) {
			q.rearm(m)
		}
		m.mu.Unlock()
	}
}

// enter puts an empty message for k into the active set, locked, for the
// caller to load; nil when k is active already. Taking m.mu under q.mu
// cannot block: nobody else can reach m yet. The caller holds q.mu.
func (q *Queue) enter(k msgKey) *message {
	id := k.String()
	if q.msgs[id] != nil {
		return nil
	}
	m := &message{id: id, busy: make(map[string]bool)}
	m.mu.Lock()
	q.msgs[id] = m
	return m
}

// load reads m's env file into m (the recovery rules of recover apply: a
// message without data, an unreadable envelope or a finished message goes
// and load reports false). On a read error m goes back to the index,
// due again after RetryMin. due is its index due (the flush mark makes
// its recipients due now). The caller holds m.mu.
func (q *Queue) load(m *message, due int64) bool {
	e, err := q.loadEnv(m.id)
	if err != nil {
		q.log.Error("queue: reading an envelope, will retry", "msgid", m.id, "err", err)
		m.parked = true
		q.mu.Lock()
		delete(q.msgs, m.id)
		k, _ := keyOf(m.id)
		q.idx.put(k, parked{due: nanos(q.now().Add(q.opts.RetryMin))}) // counted as nothing until read
		q.mu.Unlock()
		return false
	}
	if e == nil {
		m.deleted = true
		q.forget(m.id)
		return false
	}
	m.env = e
	if due&flushMark != 0 && !e.Held {
		e.retryNow(q.now())
	}
	return true
}

// loadEnv reads and checks env/<id>.json by the rules of recover. It
// returns nil, nil when the message is not (or no longer) in the spool:
// it had no env file, no data (removed), an unreadable envelope (set
// aside) or only final recipients (removed).
func (q *Queue) loadEnv(id string) (*envelope, error) {
	if err := q.journal.writeOut(id, true); err != nil { // still in memory (journal.go)
		return nil, err
	}
	data, err := q.dir.fs.ReadFile(q.dir.env(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if _, err := q.dir.fs.Stat(q.dir.msg(id)); errors.Is(err, fs.ErrNotExist) {
		q.log.Error("queue: envelope without message data, removing it", "msgid", id)
		return nil, q.dir.fs.Remove(q.dir.env(id))
	} else if err != nil {
		return nil, err
	}
	e, perr := parseEnvelope(data, id)
	if perr != nil {
		q.log.Error("queue: unreadable envelope, moved to corrupt/", "msgid", id, "err", perr)
		return nil, q.setAside(id)
	}
	if e.done() {
		return nil, q.remove(id)
	}
	for _, r := range e.Rcpts {
		if r.Domain == "" {
			r.Domain = domainOf(r.Addr)
		}
	}
	return e, nil
}

// readEnvQuiet reads env/<id>.json for a look (List) without applying
// the recovery rules; nil when it cannot be read.
func (q *Queue) readEnvQuiet(id string) *envelope {
	if q.journal.writeOut(id, true) != nil { // still in memory (journal.go)
		return nil
	}
	data, err := q.dir.fs.ReadFile(q.dir.env(id))
	if err != nil {
		return nil
	}
	e, err := parseEnvelope(data, id)
	if err != nil || e.done() {
		return nil
	}
	return e
}

// hold returns message id of the active set, bringing it in from the
// index if it is there, with its mu held. The caller runs rearm before
// unlocking (which parks it again when nothing of it is due).
func (q *Queue) hold(id string) (*message, error) {
	k, ok := keyOf(id)
	if !ok {
		return nil, fmt.Errorf("queue: invalid message id %q", id)
	}
	for range 100 { // a message parked between the lookup and the lock is looked up again
		q.mu.Lock()
		m := q.msgs[id]
		if m == nil {
			due, ok := q.idx.take(k)
			if !ok {
				q.mu.Unlock()
				return nil, ErrNotFound
			}
			m = q.enter(k)
			q.mu.Unlock()
			if !q.load(m, due) {
				m.mu.Unlock()
				if m.deleted {
					return nil, ErrNotFound
				}
				return nil, fmt.Errorf("queue: reading message %s failed; see the log", id)
			}
			return m, nil
		}
		q.mu.Unlock()
		m.mu.Lock()
		if !m.parked {
			if m.deleted {
				m.mu.Unlock()
				return nil, ErrNotFound
			}
			return m, nil
		}
		m.mu.Unlock()
	}
	return nil, fmt.Errorf("queue: message %s is busy, try again", id)
}
