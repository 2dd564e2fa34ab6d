package maildir

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/vfs"
	"smtpkit/internal/vfs/crashfs"
)

// Crash simulation (issue #11): many concurrent deliveries run on
// crashfs, the power is cut at every step boundary of the run (and at
// random points, with the page cache written back in part), the machine
// comes back (journal replay on a new boot id), and then every message
// whose Commit returned nil must be in each of its Maildirs exactly once,
// byte for byte, and no file in new/ or cur/ may be anything but a whole
// message addressed to that Maildir.

// crashCase is one configuration of the Maildir writer under test.
type crashCase struct {
	name  string
	mode  Sync
	named bool // named tmp files (no O_TMPFILE)
	// segment is the journal's segment size: tiny, so that concurrent
	// appenders rotate segments often.
	segment int64
}

var crashCases = []crashCase{
	{name: "file", mode: SyncFile},
	{name: "file/named-tmp", mode: SyncFile, named: true},
	{name: "filesystem", mode: SyncFileSystem},
	{name: "filesystem/named-tmp", mode: SyncFileSystem, named: true},
	{name: "journal", mode: SyncJournal, segment: 4 << 10},
	{name: "journal/named-tmp", mode: SyncJournal, named: true, segment: 4 << 10},
}

// The workload: crashWorkers goroutines deliver crashEach messages each,
// into five Maildirs, one of them on a file system of its own (so some
// links cross file systems and take the copy path); some messages go to
// two or three Maildirs. In journal mode a checkpointer runs alongside.
const (
	crashWorkers = 8
	crashEach    = 2
	crashFar     = "/far" // the second file system
	crashJournal = "/data/journal"
)

var crashBoxes = []string{
	"/data/mail/example.com/a", "/data/mail/example.com/b",
	"/data/mail/example.com/c", "/data/mail/example.org/d",
	crashFar + "/e",
}

// crashMessage is message id: a header naming it and a body of a size
// from a cycle (a few hundred octets up to over the 64 KiB write buffer,
// which bypasses the journal), every line naming it too, so a torn page
// or a mix of two messages never passes for a whole one.
func crashMessage(id int) []byte { return crashMessages()[id] }

// crashMessages are the workload's messages, made once.
var crashMessages = sync.OnceValue(func() [][]byte {
	msgs := make([][]byte, crashWorkers*crashEach)
	for id := range msgs {
		msgs[id] = makeCrashMessage(id)
	}
	return msgs
})

func makeCrashMessage(id int) []byte {
	sizes := []int{300, 1500, 5000, 700, 70 << 10, 2500, 9000, 400}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-Id: <%d@crash.test>\r\nSubject: crash %d\r\n\r\n", id, id)
	line := fmt.Sprintf("message %d says hello, and again, and again.\r\n", id)
	for b.Len() < sizes[id%len(sizes)] {
		b.WriteString(line)
	}
	return b.Bytes()
}

// crashID reads the id back from a message's first line.
func crashID(msg []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(msg, []byte("Message-Id: <"))
	if !ok {
		return 0, false
	}
	end := bytes.IndexByte(rest, '@')
	if end < 0 {
		return 0, false
	}
	id, err := strconv.Atoi(string(rest[:end]))
	return id, err == nil
}

// crashDirs are the Maildirs of message id; the first holds its tmp file.
func crashDirs(id int) []int {
	n := len(crashBoxes)
	dirs := []int{id % n}
	if id%3 == 0 {
		dirs = append(dirs, (id+1)%n)
	}
	if id%4 == 1 {
		dirs = append(dirs, (id+2)%n)
	}
	return dirs
}

// crashWorld is the simulated machine: its file system and Maildirs.
type crashWorld struct {
	tc    crashCase
	fs    *crashfs.FS
	boxes []Dir
}

// newCrashWorld makes the file system with its Maildirs (and the journal
// directory), all durable.
func newCrashWorld(t *testing.T, tc crashCase) *crashWorld {
	t.Helper()
	fsys := crashfs.New(crashfs.Options{Mounts: []string{crashFar}, NoAnonymous: tc.named})
	w := &crashWorld{tc: tc, fs: fsys}
	setup := w.newWriter(fsys, bootBefore)
	for _, p := range crashBoxes {
		d, err := setup.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w.boxes = append(w.boxes, d)
	}
	if err := fsys.MkdirAll(crashJournal, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"/", crashFar} {
		if err := fsys.SyncFS(m); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *crashWorld) newWriter(fsys vfs.FS, boot string) *Writer {
	n := NewWriter(nil)
	n.SetFS(fsys)
	n.SetSync(w.tc.mode)
	n.SetBootID(boot)
	n.namedTmp = w.tc.named
	return n
}

// crashRun is what a run acknowledged.
type crashRun struct {
	acked []int // ids whose Commit returned nil
}

// run is a server delivering the workload on the world's file system,
// through hook (may be nil), and returns what was acknowledged.
// Messages fail once the file system froze at its crash point (or the
// hook killed the process); the run goes on to the end.
func (w *crashWorld) run(t *testing.T, hook func(string) error) crashRun {
	t.Helper()
	fsys := &hookFS{FS: w.fs, before: hook}
	n := w.newWriter(fsys, bootBefore)
	var checkpoints chan struct{}
	var cpDone sync.WaitGroup
	if w.tc.mode == SyncJournal {
		log, err := openCrashLog(fsys, w.tc.segment)
		if err != nil {
			return crashRun{} // the crash point came before the log opened
		}
		n.setJournal(log, 0)
		// The checkpointer: one checkpoint per three finished deliveries,
		// concurrent with the appends of the others.
		checkpoints = make(chan struct{}, crashWorkers*crashEach)
		cpDone.Add(1)
		go func() {
			defer cpDone.Done()
			k := 0
			for range checkpoints {
				if k++; k%3 == 0 {
					log.Checkpoint(n.journal.flush)
				}
			}
		}()
	}
	var mu sync.Mutex
	var run crashRun
	var wg sync.WaitGroup
	for g := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range crashEach {
				id := g*crashEach + i
				if deliverCrash(n, w.boxes, id) {
					mu.Lock()
					run.acked = append(run.acked, id)
					mu.Unlock()
				}
				if checkpoints != nil {
					checkpoints <- struct{}{}
				}
			}
		}()
	}
	wg.Wait()
	if checkpoints != nil {
		close(checkpoints)
		cpDone.Wait()
	}
	return run
}

// deliverCrash delivers message id and reports whether Commit
// acknowledged it.
func deliverCrash(n *Writer, boxes []Dir, id int) bool {
	idx := crashDirs(id)
	d, err := n.NewMessage(boxes[idx[0]])
	if err != nil {
		return false
	}
	msg := crashMessage(id)
	for len(msg) > 0 { // in pieces, so large ones spill from the buffer
		k := min(len(msg), 4000)
		if _, err := d.Write(msg[:k]); err != nil {
			d.Abort()
			return false
		}
		msg = msg[k:]
	}
	dirs := make([]Dir, len(idx))
	for i, k := range idx {
		dirs[i] = boxes[k]
	}
	_, err = d.Commit(dirs)
	return err == nil
}

// restart is the machine coming back on post, the file system after the
// crash: in journal mode the server replays its journal on the given
// boot.
func (w *crashWorld) restart(t *testing.T, post vfs.FS, boot string) (RecoverStats, error) {
	t.Helper()
	if w.tc.mode != SyncJournal {
		return RecoverStats{}, nil
	}
	log, err := openCrashLog(post, w.tc.segment)
	if err != nil {
		return RecoverStats{}, fmt.Errorf("reopening the journal: %w", err)
	}
	defer log.Close()
	return Recover(log, w.newWriter(post, boot))
}

// crashCheck is what check found.
type crashCheck struct {
	checked int // acknowledged (message, Maildir) pairs found whole, once
	lost    int // acknowledged pairs missing (or there more than once)
}

// check compares the Maildirs on post with what was acknowledged:
// every acknowledged message once, whole, in each of its Maildirs;
// anything else visible in new/ or cur/ a whole message addressed there,
// at most once; except the messages in gone, which may be missing.
func check(t *testing.T, post vfs.FS, acked []int, gone map[int]bool) crashCheck {
	t.Helper()
	var res crashCheck
	count := make([]map[int]int, len(crashBoxes))
	for b, box := range crashBoxes {
		count[b] = map[int]int{}
		for _, sub := range []string{"new", "cur"} {
			dir := filepath.Join(box, sub)
			entries, err := post.ReadDir(dir)
			if err != nil {
				t.Errorf("%s: %v", dir, err)
				continue
			}
			for _, e := range entries {
				p := filepath.Join(dir, e.Name())
				got, err := post.ReadFile(p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				id, ok := crashID(got)
				if !ok || id < 0 || id >= crashWorkers*crashEach || !bytes.Equal(got, crashMessage(id)) {
					t.Errorf("%s is not a whole message (%d octets: %.40q…)", p, len(got), got)
					continue
				}
				if !containsInt(crashDirs(id), b) {
					t.Errorf("%s: message %d was not addressed to %s", p, id, box)
				}
				if !strings.HasSuffix(e.Name(), fmt.Sprintf(",S=%d", len(got))) {
					t.Errorf("%s: the name's size is not the file's (%d)", p, len(got))
				}
				count[b][id]++
			}
		}
		for id, c := range count[b] {
			if c > 1 {
				t.Errorf("%s holds message %d %d times", box, id, c)
			}
		}
	}
	for _, id := range acked {
		if gone[id] {
			continue
		}
		for _, b := range crashDirs(id) {
			if count[b][id] == 1 {
				res.checked++
			} else {
				res.lost++
				t.Errorf("acknowledged message %d is in %s %d times, want once", id, crashBoxes[b], count[b][id])
			}
		}
	}
	return res
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// crashTotals adds up a test's simulated crashes for its log line.
type crashTotals struct {
	crashes, checked, lost, replayed int
}

func (c *crashTotals) add(r crashCheck, st RecoverStats) {
	c.crashes++
	c.checked += r.checked
	c.lost += r.lost
	c.replayed += st.Records
}

// crashBudget bounds one case's random crashes in count and time.
const (
	crashRandomRuns = 80
	crashRandomTime = 1500 * time.Millisecond
)

// TestCrashEveryStep cuts the power at every step boundary of the
// concurrent workload (each mutating file-system call is a step) in the
// strict mode — everything not made durable is lost — and then at random
// points with a random part of the page cache written back, and checks
// the Maildirs after the restart.
func TestCrashEveryStep(t *testing.T) {
	var all crashTotals
	for _, tc := range crashCases {
		t.Run(tc.name, func(t *testing.T) {
			var tot crashTotals
			// A run without a crash counts the steps.
			w := newCrashWorld(t, tc)
			setup := w.fs.Ops()
			clean := w.run(t, nil)
			steps := w.fs.Ops() - setup
			if len(clean.acked) != crashWorkers*crashEach {
				t.Fatalf("without a crash %d of %d deliveries succeeded", len(clean.acked), crashWorkers*crashEach)
			}
			// Concurrent runs differ a little in their step count: sweep
			// past the end.
			for k := int64(0); k <= steps+steps/20; k++ {
				tot.add(crashAt(t, tc, k, 0))
				if t.Failed() {
					t.Fatalf("after a crash at step %d of %d", k, steps)
				}
			}
			deadline := time.Now().Add(crashRandomTime)
			for i := range crashRandomRuns {
				if time.Now().After(deadline) {
					break
				}
				seed := uint64(i + 1)
				k := int64(seed*7919) % (steps + 1)
				tot.add(crashAt(t, tc, k, seed))
				if t.Failed() {
					t.Fatalf("after a random crash (seed %d) at step %d of %d", seed, k, steps)
				}
			}
			t.Logf("%s: %d steps; %d simulated crashes, %d acknowledged copies checked, %d lost, %d journal records replayed",
				tc.name, steps, tot.crashes, tot.checked, tot.lost, tot.replayed)
			all.crashes += tot.crashes
			all.checked += tot.checked
			all.lost += tot.lost
		})
	}
	t.Logf("all modes: %d simulated crashes, %d acknowledged copies checked, %d lost", all.crashes, all.checked, all.lost)
}

// crashAt runs the workload with the power cut after step k: strictly
// when seed is 0, else with the page cache written back in part as seed
// chooses. It restarts and checks.
func crashAt(t *testing.T, tc crashCase, k int64, seed uint64) (crashCheck, RecoverStats) {
	t.Helper()
	w := newCrashWorld(t, tc)
	w.fs.CrashAfter(k)
	run := w.run(t, nil)
	var post *crashfs.FS
	if seed == 0 {
		post = w.fs.Crash()
	} else {
		post = w.fs.CrashRandom(seed)
	}
	st, err := w.restart(t, post, bootAfter)
	if err != nil {
		t.Errorf("restart: %v", err)
		return crashCheck{}, st
	}
	return check(t, post, run.acked, nil), st
}

// TestCrashProcessKill is the crash of the process alone (kill -9, the
// OOM killer) at every file-system call of the journaled workload: the
// kernel keeps its page cache, so the file system stays as the process
// left it. Then a mail client expunges some of the acknowledged messages
// (from new/, or after moving them to cur/), and the server restarts on
// the same boot. Every other acknowledged message must be there once and
// whole, and no expunged one may come back (issue #11: journal replay
// brought back messages Dovecot had expunged).
func TestCrashProcessKill(t *testing.T) {
	for _, tc := range crashCases {
		if tc.mode != SyncJournal {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var tot crashTotals
			var calls atomic.Int64
			w := newCrashWorld(t, tc)
			if clean := w.run(t, func(string) error { calls.Add(1); return nil }); len(clean.acked) != crashWorkers*crashEach {
				t.Fatalf("without a crash %d of %d deliveries succeeded", len(clean.acked), crashWorkers*crashEach)
			}
			steps := calls.Load()
			expunged := 0
			for k := int64(0); k <= steps+steps/20; k++ {
				w := newCrashWorld(t, tc)
				run := w.run(t, killAfter(k))
				gone := expunge(t, w.fs, run.acked)
				expunged += len(gone)
				st, err := w.restart(t, w.fs, bootBefore)
				if err != nil {
					t.Fatalf("restart after a kill at call %d: %v", k, err)
				}
				tot.add(check(t, w.fs, run.acked, gone), st)
				if back := present(t, w.fs, gone); back > 0 {
					t.Errorf("%d expunged messages came back", back)
				}
				if t.Failed() {
					t.Fatalf("after a kill at call %d of %d (replay %+v)", k, steps, st)
				}
			}
			t.Logf("%s: %d calls; %d kills, %d acknowledged copies checked, %d lost, %d expunged and none brought back, %d journal records replayed",
				tc.name, steps, tot.crashes, tot.checked, tot.lost, expunged, tot.replayed)
		})
	}
}

// TestCrashExpungedThenPowerLoss is the window that remains: messages
// expunged before the checkpoint and then a power loss. Nothing
// acknowledged and kept may be lost; expunged messages may come back
// (counted, not failed: docs/operations.md says so).
func TestCrashExpungedThenPowerLoss(t *testing.T) {
	for _, tc := range crashCases {
		if tc.mode != SyncJournal {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			w := newCrashWorld(t, tc)
			run := w.run(t, nil)
			gone := expunge(t, w.fs, run.acked)
			post := w.fs.Crash()
			st, err := w.restart(t, post, bootAfter)
			if err != nil {
				t.Fatal(err)
			}
			res := check(t, post, run.acked, gone)
			t.Logf("%s: %d acknowledged copies checked, %d lost; of %d expunged messages %d came back after the power loss (replay %+v)",
				tc.name, res.checked, res.lost, len(gone), present(t, post, gone), st)
		})
	}
}

// expunge is a mail client removing every third acknowledged message from
// all its Maildirs, half of them after moving them to cur/ (read). It
// works on the file system directly (the page cache) and returns the ids.
func expunge(t *testing.T, fsys vfs.FS, acked []int) map[int]bool {
	t.Helper()
	gone := map[int]bool{}
	for _, id := range acked {
		if id%3 != 0 {
			continue
		}
		for _, b := range crashDirs(id) {
			p := findMessage(t, fsys, crashBoxes[b], id)
			if p == "" {
				t.Fatalf("acknowledged message %d is not in %s", id, crashBoxes[b])
			}
			if id%2 == 0 {
				read := filepath.Join(crashBoxes[b], "cur", filepath.Base(p)+":2,S")
				if err := fsys.Rename(p, read); err != nil {
					t.Fatal(err)
				}
				p = read
			}
			if err := fsys.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		gone[id] = true
	}
	return gone
}

// findMessage returns the path of message id in box's new/ or cur/, or "".
func findMessage(t *testing.T, fsys vfs.FS, box string, id int) string {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		entries, err := fsys.ReadDir(filepath.Join(box, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(box, sub, e.Name())
			if b, err := fsys.ReadFile(p); err == nil {
				if got, ok := crashID(b); ok && got == id {
					return p
				}
			}
		}
	}
	return ""
}

// present counts the messages of ids found in any of their Maildirs.
func present(t *testing.T, fsys vfs.FS, ids map[int]bool) int {
	t.Helper()
	n := 0
	for id := range ids {
		for _, b := range crashDirs(id) {
			if findMessage(t, fsys, crashBoxes[b], id) != "" {
				n++
				break
			}
		}
	}
	return n
}

// TestCrashDuringRecovery cuts the power again at every step of the
// journal replay that follows a first power loss, then lets the next
// start replay in full: what was acknowledged before the first crash must
// still be there, once and whole. The first crash comes at a few points
// late in the run (where the most records wait for a checkpoint), with
// the page cache written back in part.
func TestCrashDuringRecovery(t *testing.T) {
	for _, tc := range crashCases {
		if tc.mode != SyncJournal {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var tot crashTotals
			w := newCrashWorld(t, tc)
			setup := w.fs.Ops()
			w.run(t, nil)
			steps := w.fs.Ops() - setup
			for _, first := range []int64{steps * 4 / 5, steps - 1} {
				// Count the replay's steps once, then cut it at each.
				replaySteps := int64(-1)
				for j := int64(0); replaySteps < 0 || j <= replaySteps; j++ {
					w := newCrashWorld(t, tc)
					w.fs.CrashAfter(first)
					run := w.run(t, nil)
					post := w.fs.CrashRandom(uint64(first))
					before := post.Ops()
					if replaySteps >= 0 {
						post.CrashAfter(j)
					}
					_, err := w.restart(t, post, bootAfter)
					if replaySteps < 0 {
						if err != nil {
							t.Fatalf("replay without a crash point: %v", err)
						}
						replaySteps = post.Ops() - before
						continue
					}
					post = post.CrashRandom(uint64(j + 1))
					st, err := w.restart(t, post, bootAfter)
					if err != nil {
						t.Fatalf("second replay: %v", err)
					}
					tot.add(check(t, post, run.acked, nil), st)
					if t.Failed() {
						t.Fatalf("first crash at step %d of %d, second at step %d of the replay's %d", first, steps, j, replaySteps)
					}
				}
			}
			t.Logf("%s: %d crashes during replays, %d acknowledged copies checked, %d lost", tc.name, tot.crashes, tot.checked, tot.lost)
		})
	}
}
