package queue

// crashsim_test.go: power-loss simulation of the spool (issue #11 item 2,
// the journal of issue #17). A workload of concurrent Commits, deliveries
// (removals), deferrals (env rewrites) and journal checkpoints runs on
// crashfs; the power is cut at every operation boundary of it
// (crashfs.CrashAfter) and at random points, the file system comes back
// strict (only what was made durable) or with a random part of the
// unsynced changes, and the queue reopened on it must hold every
// acknowledged message exactly once, whole, with its envelope, nothing
// half-written, and no message whose delivery was recorded. It runs for
// each way of committing (simVariants): the file path, and the journal
// with either flush of its checkpoints.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smtpkit/internal/vfs/crashfs"
)

// simRoot is the spool on the simulated file system; nothing of the path
// exists at the start, so the directories' own entries are tested too.
const simRoot = "/srv/data/queue"

// simBody is message i's content: some span several Writer buffers.
func simBody(i int) string {
	n := 3 + i%4*10
	if i%3 == 0 {
		n = bufSize/20 + 500 // > bufSize: flushed in parts
	}
	return fmt.Sprintf("Subject: %d\r\n\r\n", i) + strings.Repeat(fmt.Sprintf("line %04d of message\r\n", i), n)
}

// simRcpts are message i's recipients: later.example always defers, so
// odd messages stay queued with their state rewritten, even ones are
// delivered and removed.
func simRcpts(i int) []string {
	if i%2 == 0 {
		return []string{fmt.Sprintf("r%d@ok.example", i)}
	}
	return []string{fmt.Sprintf("r%d@ok.example", i), fmt.Sprintf("s%d@later.example", i)}
}

// simVariant is a way of committing the workload runs with.
type simVariant struct {
	name    string
	journal bool  // Options.NoJournal is !journal
	fsType  int64 // what Statfs reports: ext4 (syncfs flushes) or FUSE (fsync per file)
	atOnce  bool  // journaled messages' files are written at Commit, not held in memory
	// journalMax is Options.JournalMax: 64 KiB makes the workload's
	// larger messages (simBody, about 83 KB) take the file path beside
	// the journaled ones; 0 (the default, 256 KiB) journals them all.
	journalMax int
}

var simVariants = []simVariant{
	{"files", false, unix.EXT4_SUPER_MAGIC, false, 0},
	{"journal+syncfs", true, unix.EXT4_SUPER_MAGIC, false, 64 << 10},
	{"journal+fsync", true, unix.FUSE_SUPER_MAGIC, false, 64 << 10},
	{"journal+fsync+written-at-commit", true, unix.FUSE_SUPER_MAGIC, true, 64 << 10},
	{"journal+syncfs+large-records", true, unix.EXT4_SUPER_MAGIC, false, 0},
}

// newFS is an empty simulated file system of v's kind.
func (v simVariant) newFS() *crashfs.FS { return crashfs.New(crashfs.Options{Type: v.fsType}) }

// options are the queue's on fsys: checkpoints only where the workload
// runs them, journal segments of 4 KiB (appends and checkpoints cross
// them), no preallocated zeros; with atOnce no message held in memory.
func (v simVariant) options(fsys *crashfs.FS, c Courier, now func() time.Time) Options {
	hold := 0
	if v.atOnce {
		hold = -1
	}
	return Options{Dir: simRoot, FS: fsys, Courier: c, Now: now, Logger: slog.New(slog.DiscardHandler),
		NoJournal: !v.journal, JournalMax: v.journalMax, Checkpoint: -1, journalSegment: 4 << 10, journalPrealloc: -1, JournalMemory: hold}
}

// checkpoint runs a journal checkpoint, as the checkpointer does.
func checkpoint(q *Queue) {
	if q.journal != nil {
		q.journal.checkpoint()
	}
}

// simRun is one life of the workload: what was acknowledged and what the
// courier was told it delivered.
type simRun struct {
	mu        sync.Mutex
	acked     map[string]int             // id → message index, once Commit returned nil
	delivered map[string]map[string]bool // id → recipients the courier delivered
	// marked are the deliveries whose recording was complete: RunOnce
	// returned after them with the file system still working.
	marked map[string]map[string]bool
}

// markDelivered notes, after a RunOnce that ran on a working file system
// to its end, that its deliveries are recorded.
func (r *simRun) markDelivered(fsys *crashfs.FS) {
	if fsys.Frozen() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rcpts := range r.delivered {
		if r.marked[id] == nil {
			r.marked[id] = map[string]bool{}
		}
		for a := range rcpts {
			r.marked[id][a] = true
		}
	}
}

const (
	simWriters   = 3
	simPerWriter = 3
	simLate      = 2 // messages 10 and 11: both small, one delivered, one deferred
)

// run commits simWriters×simPerWriter messages from concurrent writers
// while deliveries run, on fsys, until done or the file system froze.
func (r *simRun) run(fsys *crashfs.FS, clock *clock, v simVariant) {
	r.acked = map[string]int{}
	r.delivered = map[string]map[string]bool{}
	r.marked = map[string]map[string]bool{}
	courier := courierFunc(func(_ context.Context, d *Attempt) []Result {
		if d.Domain == "later.example" {
			return allTemporary(d.Recipients, temp)
		}
		rc, err := d.Open()
		if err != nil {
			return allTemporary(d.Recipients, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return allTemporary(d.Recipients, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.delivered[d.ID] == nil {
			r.delivered[d.ID] = map[string]bool{}
		}
		out := make([]Result, len(d.Recipients))
		for i, a := range d.Recipients {
			r.delivered[d.ID][a] = true // the next hop said 250
			out[i] = Result{Rcpt: a}
		}
		return out
	})
	q, err := Open(v.options(fsys, courier, clock.Now))
	if err != nil {
		return // the power went during Open: nothing acknowledged
	}
	defer q.Close()
	var wg sync.WaitGroup
	first := make(chan struct{}, simWriters) // each writer's first Commit returned
	for g := range simWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signal := sync.OnceFunc(func() { first <- struct{}{} })
			defer signal()
			for k := range simPerWriter {
				if k == 1 {
					signal()
				}
				if !r.commit(q, g*simPerWriter+k) {
					return
				}
			}
		}()
	}
	for range simWriters {
		<-first
	}
	// The first deliveries remove messages whose records are still in the
	// journal (remove records); the later ones, after a checkpoint, some
	// whose records are not.
	for k := range 3 {
		q.RunOnce(context.Background())
		r.markDelivered(fsys)
		if k == 0 {
			checkpoint(q) // while commits go on
		}
	}
	wg.Wait()
	// Two last small messages (simLate), not yet attempted when the
	// checkpoint comes: with the journal they are still in memory then.
	for i := range simLate {
		r.commit(q, simWriters*simPerWriter+1+i)
	}
	checkpoint(q)
	clock.Advance(time.Hour) // the deferred recipients are due again
	q.RunOnce(context.Background())
	r.markDelivered(fsys)
}

// commit commits message i and notes it acknowledged; false when it was
// refused (the file system froze).
func (r *simRun) commit(q *Queue, i int) bool {
	w, err := q.Begin(envelopeOf("a@example.org", simRcpts(i), Meta{ReceivedFrom: fmt.Sprint(i)}))
	if err != nil {
		return false
	}
	if _, err := io.WriteString(w, simBody(i)); err != nil {
		w.Abort()
		return false
	}
	id, err := w.Commit()
	if err != nil {
		return false
	}
	r.mu.Lock()
	r.acked[id] = i
	r.mu.Unlock()
	return true
}

// simTally sums what the checks saw over many crashes.
type simTally struct {
	crashes, acked, present, unackedVisible, repeated, lost int
	forgotten                                               int // recorded deliveries pending again
}

// check recovers the spool from the crashed file system fsys and compares
// it with what run acknowledged and delivered.
func (r *simRun) check(t *testing.T, fsys *crashfs.FS, v simVariant, how string, tally *simTally) {
	t.Helper()
	tally.crashes++
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s, %s: "+format, append([]any{v.name, how}, args...)...)
	}
	q, err := Open(v.options(fsys, &recorder{}, time.Now))
	if err != nil {
		fail("recovery failed: %v", err)
		return
	}
	defer q.Close()
	listed := map[string]Summary{}
	for _, s := range q.List() {
		listed[s.ID] = s
	}
	// Everything visible is whole and consistent, acknowledged or not.
	for id, s := range listed {
		d, err := q.Show(id)
		if err != nil {
			fail("Show(%s): %v", id, err)
			continue
		}
		var i int
		if _, err := fmt.Sscan(d.Meta.ReceivedFrom, &i); err != nil {
			fail("%s: envelope lost its meta: %+v", id, d.Meta)
			continue
		}
		if ai, ok := r.acked[id]; ok && ai != i {
			fail("%s: is message %d, was acknowledged as %d", id, i, ai)
		}
		body, err := fsys.ReadFile(filepath.Join(simRoot, "msg", id))
		if err != nil || string(body) != simBody(i) {
			fail("%s (message %d): body not whole (%d of %d bytes, %v)", id, i, len(body), len(simBody(i)), err)
		}
		if s.Size != int64(len(simBody(i))) {
			fail("%s: envelope size %d, want %d", id, s.Size, len(simBody(i)))
		}
		var addrs []string
		for _, rs := range s.Recipients {
			addrs = append(addrs, rs.Addr)
		}
		if !slices.Equal(addrs, simRcpts(i)) {
			fail("%s: recipients %v, want %v", id, addrs, simRcpts(i))
		}
		if _, ok := r.acked[id]; !ok {
			tally.unackedVisible++
		}
	}
	// Every acknowledged message is there, unless all of it was delivered;
	// no recipient is marked delivered that the courier did not deliver.
	for id, i := range r.acked {
		tally.acked++
		s, ok := listed[id]
		if !ok {
			for _, a := range simRcpts(i) {
				if !r.delivered[id][a] {
					tally.lost++
					fail("acknowledged message %s (%d) is gone, %s never delivered", id, i, a)
				}
			}
			continue
		}
		tally.present++
		for _, rs := range s.Recipients {
			switch {
			case rs.State == Delivered && !r.delivered[id][rs.Addr]:
				tally.lost++
				fail("%s: %s marked delivered, never was", id, rs.Addr)
			case rs.State == Failed:
				tally.lost++
				fail("%s: %s failed after a crash", id, rs.Addr)
			case rs.State != Delivered && r.marked[id][rs.Addr]:
				tally.forgotten++
				fail("%s: %s is pending again, its delivery was recorded before the crash", id, rs.Addr)
			case rs.State != Delivered && r.delivered[id][rs.Addr]:
				tally.repeated++ // the crash came before the delivery was recorded
			}
		}
	}
	// Recovery leaves no garbage: tmp/ is empty, msg/ and env/ pair up.
	if ents, _ := fsys.ReadDir(filepath.Join(simRoot, "tmp")); len(ents) != 0 {
		fail("tmp/ holds %d files after recovery", len(ents))
	}
	var msgs, envs []string
	if ents, err := fsys.ReadDir(filepath.Join(simRoot, "msg")); err == nil {
		for _, e := range ents {
			msgs = append(msgs, e.Name())
		}
	}
	if ents, err := fsys.ReadDir(filepath.Join(simRoot, "env")); err == nil {
		for _, e := range ents {
			envs = append(envs, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	ids := make([]string, 0, len(listed))
	for id := range listed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !slices.Equal(msgs, ids) || !slices.Equal(envs, ids) {
		fail("after recovery msg/ %v and env/ %v, listed %v", msgs, envs, ids)
	}
}

// TestPowerLoss crashes the workload at every operation boundary (strict
// and with a random write-back each; every third boundary for the
// written-at-commit variant), then at random points with random
// write-backs, bounded in count and time; for each variant.
func TestPowerLoss(t *testing.T) {
	for i, v := range simVariants {
		t.Run(v.name, func(t *testing.T) { powerLoss(t, v, uint64(i)) })
	}
}

func powerLoss(t *testing.T, v simVariant, seed0 uint64) {
	var tally simTally
	var base simRun
	fsys := v.newFS()
	base.run(fsys, newClock(), v)
	ops := fsys.Ops()
	if len(base.acked) != simWriters*simPerWriter+simLate {
		t.Fatalf("without a crash %d of %d messages were acknowledged", len(base.acked), simWriters*simPerWriter+simLate)
	}
	base.check(t, fsys.Crash(), v, "after the whole run, strict", &tally)

	step := int64(1)
	if testing.Short() {
		step = 7
	}
	if v.atOnce {
		step *= 3 // the path the others cover but for where files are written
	}
	for n := int64(0); n <= ops && !t.Failed(); n += step {
		var r simRun
		fsys := v.newFS()
		fsys.CrashAfter(n)
		r.run(fsys, newClock(), v)
		r.check(t, fsys.Crash(), v, fmt.Sprintf("crash after %d of %d ops, strict", n, ops), &tally)
		seed := uint64(n)*2 + seed0
		r.check(t, fsys.CrashRandom(seed), v, fmt.Sprintf("crash after %d of %d ops, random write-back %d", n, ops, seed), &tally)
	}

	rng := rand.New(rand.NewPCG(11, 11+seed0))
	deadline := time.Now().Add(600 * time.Millisecond)
	for k := 0; k < 300 && time.Now().Before(deadline) && !t.Failed(); k++ {
		var r simRun
		fsys := v.newFS()
		n := rng.Int64N(ops + 1)
		fsys.CrashAfter(n)
		r.run(fsys, newClock(), v)
		seed := rng.Uint64()
		r.check(t, fsys.CrashRandom(seed), v, fmt.Sprintf("random crash after %d ops, write-back %d", n, seed), &tally)
	}
	tally.log(t, ops)
}

func (tally simTally) log(t *testing.T, ops int64) {
	t.Logf("%d ops a run; %d simulated crashes, %d acknowledged messages checked (%d still queued, the rest delivered), "+
		"%d unacknowledged but whole messages visible, %d deliveries repeated (crash before they were recorded), "+
		"%d recorded deliveries pending again, %d lost",
		ops, tally.crashes, tally.acked, tally.present, tally.unackedVisible, tally.repeated, tally.forgotten, tally.lost)
}

// TestPowerLossInReplay cuts the power again while the queue recovers
// from a first power loss — at every operation of that Open (the
// journal's replay, its checkpoint, recover) — and checks what a third
// Open then finds, against what the first life acknowledged. The first
// crash comes at points spread over the workload, strict and with random
// write-back.
func TestPowerLossInReplay(t *testing.T) {
	for i, v := range simVariants {
		if !v.journal {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			var tally simTally
			var base simRun
			fsys := v.newFS()
			base.run(fsys, newClock(), v)
			ops := fsys.Ops()
			points := int64(10)
			if testing.Short() {
				points = 3
			}
			deadline := time.Now().Add(2 * time.Second)
			for p := int64(1); p <= points && time.Now().Before(deadline) && !t.Failed(); p++ {
				n := ops * p / (points + 1)
				var r simRun
				fsys := v.newFS()
				fsys.CrashAfter(n)
				r.run(fsys, newClock(), v)
				seed := uint64(i)*1000 + uint64(n)
				first := fsys.CrashRandom(seed) // copies of it: first.Crash() (all of it is durable)
				probe := first.Crash()
				if q, err := Open(v.options(probe, &recorder{}, time.Now)); err == nil {
					q.Close()
				}
				rops := probe.Ops()
				for m := int64(0); m <= rops && !t.Failed(); m++ {
					second := first.Crash()
					second.CrashAfter(m)
					if q, err := Open(v.options(second, &recorder{}, time.Now)); err == nil {
						q.Close()
					}
					how := fmt.Sprintf("crash after %d of %d ops, write-back %d, then after %d of %d ops of the recovery", n, ops, seed, m, rops)
					r.check(t, second.Crash(), v, how+", strict", &tally)
					r.check(t, second.CrashRandom(seed+uint64(m)), v, how+", random write-back", &tally)
				}
			}
			tally.log(t, ops)
		})
	}
}
