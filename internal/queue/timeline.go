package queue

// timeline.go: the scheduler's time-ordered structure. Every message of
// the active set has one item per destination group with pending
// recipients (and one for its DSN hand-off when one is owed), keyed by
// when it is next due. A pass pops the items that are due; an item whose
// destination has no free slot waits in that destination's FIFO (dest.go)
// and goes back on the heap when a slot frees. Nothing scans the queue:
// a pass costs O(log n) per item it pops, and the next wake-up is the
// heap's top.

import (
	"container/heap"
	"time"
)

// noteGroup is the group of a message's DSN hand-off item (not a domain:
// domains have no NUL).
const noteGroup = "\x00dsn"

// item is one wake-up: m's recipients of group are due at at, or (group
// noteGroup) m's bounce, success notice or delay warning is. An item is in
// at most one place: the heap (idx ≥ 0) or a destination's waiting list
// (wait != nil). Guarded by Queue.mu.
type item struct {
	m     *message
	group string
	at    time.Time
	idx   int   // position in the heap; -1 when not in it
	wait  *dest // the destination whose waiting list holds it
	prev  *item // waiting-list links
	next  *item
	// suspended is set by acquire when its destination is suspended
	// (dest.go): the job fails at once with this error, no attempt made.
	suspended error
}

func (it *item) key() string { return it.m.id + "/" + it.group }

// timeline is a min-heap of items by (at, message id, group): oldest
// message first among those due at the same time.
type timeline []*item

func (t timeline) Len() int { return len(t) }
func (t timeline) Less(i, j int) bool {
	a, b := t[i], t[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.m.id != b.m.id {
		return a.m.id < b.m.id
	}
	return a.group < b.group
}
func (t timeline) Swap(i, j int) {
	t[i], t[j] = t[j], t[i]
	t[i].idx, t[j].idx = i, j
}
func (t *timeline) Push(x any) {
	it := x.(*item)
	it.idx = len(*t)
	*t = append(*t, it)
}
func (t *timeline) Pop() any {
	old := *t
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*t = old[:len(old)-1]
	it.idx = -1
	return it
}

// top returns the earliest item, nil when there is none.
func (t timeline) top() *item {
	if len(t) == 0 {
		return nil
	}
	return t[0]
}

// place puts it on the heap at at, taking it out of a waiting list first.
// An item already waiting for a slot stays there when it is still due by
// now (it keeps its place in the line).
func (t *timeline) place(it *item, at, now time.Time) {
	if it.wait != nil {
		if !at.After(now) {
			it.at = at
			return
		}
		it.wait.unlink(it)
	}
	it.at = at
	if it.idx >= 0 {
		heap.Fix(t, it.idx)
		return
	}
	heap.Push(t, it)
}

// unplace takes it off the heap or out of its waiting list.
func (t *timeline) unplace(it *item) {
	if it.wait != nil {
		it.wait.unlink(it)
	}
	if it.idx >= 0 {
		heap.Remove(t, it.idx)
	}
}

// popTop removes and returns the earliest item.
func (t *timeline) popTop() *item { return heap.Pop(t).(*item) }
