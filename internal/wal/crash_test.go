package wal

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/vfs"
	"smtpkit/internal/vfs/crashfs"
)

// The power-loss tests run the log on crashfs with tiny segments, many
// concurrent appenders and a checkpointer, cut the power (at a crash point
// or at random), and check what comes back: every record whose Append
// returned nil is there — in the log, or applied and flushed — exactly
// once and intact, and nothing else is there half-written.

const crashDir = "/data/journal"

// slowSyncs makes every flush let the other goroutines run, as they do
// while a disk flush is in flight: appenders queue up behind an
// fdatasync, which is where the rotation races were.
func slowSyncs() crashfs.Options {
	return crashfs.Options{AfterSync: func() {
		for range 3 {
			runtime.Gosched()
		}
	}}
}

// crashWorkload is one run: appenders that each append their records and
// "apply" each acknowledged one by appending its id to a file of their
// own (as the Maildir journal writes a message file), and a checkpointer
// whose flush is a syncfs (as the Maildir journal's).
type crashWorkload struct {
	writers, each int
	segSize       int64
	prealloc      int64
	every         time.Duration // checkpoint interval
}

// crashResult is what one run acknowledged and what survived it.
type crashResult struct {
	acked, lost, replayed, applied int
}

// payloadOf is the record of writer w's i-th append: its id and filler of
// a length that varies so records straddle segment and page boundaries.
func payloadOf(w, i int) []byte {
	id := fmt.Sprintf("w%02d-%04d", w, i)
	n := 20 + (w*37+i*101)%300
	return append([]byte(id+":"), bytes.Repeat([]byte{byte('a' + (w+i)%26)}, n)...)
}

func appliedPath(w int) string { return fmt.Sprintf("/data/applied-%02d", w) }

// setup makes the durable starting state: /data and the applied files.
func (wl crashWorkload) setup(t *testing.T) *crashfs.FS {
	t.Helper()
	fsys := crashfs.New(slowSyncs())
	if err := fsys.MkdirAll("/data", 0o755); err != nil {
		t.Fatal(err)
	}
	for w := range wl.writers {
		f, err := fsys.OpenFile(appliedPath(w), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := fsys.SyncFS("/"); err != nil {
		t.Fatal(err)
	}
	return fsys
}

func (wl crashWorkload) options(fsys vfs.FS) Options {
	return Options{FS: fsys, SegmentSize: wl.segSize, PreallocSize: wl.prealloc}
}

// run runs the workload on fsys until it is done or fsys froze, and
// returns the ids acknowledged.
func (wl crashWorkload) run(fsys *crashfs.FS) map[string]bool {
	acked := make(map[string]bool)
	l, err := OpenOptions(crashDir, wl.options(fsys))
	if err != nil {
		return acked // the crash point came during Open
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range wl.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := fsys.OpenFile(appliedPath(w), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return
			}
			defer f.Close()
			for i := range wl.each {
				p := payloadOf(w, i)
				tk, err := l.Append(p)
				if err != nil {
					return
				}
				id, _, _ := bytes.Cut(p, []byte(":"))
				mu.Lock()
				acked[string(id)] = true
				mu.Unlock()
				_, err = f.Write(append(id, '\n'))
				tk.Done()
				if err != nil {
					return
				}
			}
		}()
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(wl.every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				l.Checkpoint(func() error { return fsys.SyncFS("/data") })
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-stopped
	l.Close()
	return acked
}

// check opens the log on the file system that came back, replays it and
// compares with what was acknowledged.
func (wl crashWorkload) check(t *testing.T, post *crashfs.FS, acked map[string]bool) crashResult {
	t.Helper()
	res := crashResult{acked: len(acked)}
	l, err := OpenOptions(crashDir, wl.options(post))
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	present := make(map[string]int)
	var last uint64
	err = l.Replay(func(seq uint64, p []byte) error {
		id, _, _ := bytes.Cut(p, []byte(":"))
		var w, i int
		if _, err := fmt.Sscanf(string(id), "w%02d-%04d", &w, &i); err != nil || !bytes.Equal(p, payloadOf(w, i)) {
			return fmt.Errorf("record %d is not one that was appended: %.40q", seq, p)
		}
		if seq <= last {
			return fmt.Errorf("record %d after %d", seq, last)
		}
		last = seq
		present[string(id)]++
		res.replayed++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range present {
		if n > 1 {
			t.Errorf("record %s replayed %d times", id, n)
		}
	}
	for w := range wl.writers {
		data, err := post.ReadFile(appliedPath(w))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if id := strings.Trim(sc.Text(), "\x00"); id != "" {
				present[id]++
				res.applied++
			}
		}
	}
	for id := range acked {
		if present[id] == 0 {
			res.lost++
			t.Errorf("acknowledged record %s lost", id)
		}
	}
	// The log goes on after the crash.
	tk, err := l.Append([]byte("after"))
	if err != nil {
		t.Fatalf("append after the crash: %v", err)
	}
	if tk.Seq <= last {
		t.Errorf("sequence number %d after a replay up to %d", tk.Seq, last)
	}
	tk.Done()
	if err := l.Checkpoint(func() error { return post.SyncFS("/data") }); err != nil {
		t.Fatal(err)
	}
	l.Close()
	return res
}

// TestCrashAtEveryStep cuts the power after every mutating file-system
// call of a concurrent workload in turn (strict: only what was synced
// survives), bounded in count and time.
func TestCrashAtEveryStep(t *testing.T) {
	wl := crashWorkload{writers: 16, each: 4, segSize: 1024, prealloc: 2048, every: time.Millisecond}
	deadline := time.Now().Add(40 * time.Second)
	if testing.Short() {
		deadline = time.Now().Add(5 * time.Second)
	}
	var total crashResult
	crashes, complete := 0, 0
	for n := int64(0); n < 5000 && complete < 3 && time.Now().Before(deadline); n++ {
		fsys := wl.setup(t)
		fsys.CrashAfter(n)
		acked := wl.run(fsys)
		if !fsys.Frozen() {
			complete++ // the workload ended before the crash point
		}
		res := wl.check(t, fsys.Crash(), acked)
		crashes++
		total.acked += res.acked
		total.lost += res.lost
		if t.Failed() {
			t.Fatalf("crash after step %d: %d of %d acknowledged records lost", n, res.lost, res.acked)
		}
	}
	t.Logf("%d crashes, one after each step; %d acknowledged records checked, %d lost", crashes, total.acked, total.lost)
	if complete == 0 && time.Now().Before(deadline) {
		t.Error("the workload never ran to its end")
	}
}

// TestCrashAtRandomPoints cuts the power at random crash points of a
// larger workload, in the strict and in the random mode (unsynced writes
// and directory operations survive or not).
func TestCrashAtRandomPoints(t *testing.T) {
	wl := crashWorkload{writers: 16, each: 40, segSize: 4096, prealloc: 4096, every: 2 * time.Millisecond}
	runs := 60
	if testing.Short() {
		runs = 10
	}
	probe := wl.setup(t)
	wl.run(probe)
	steps := probe.Ops()
	rng := rand.New(rand.NewPCG(11, 0))
	deadline := time.Now().Add(40 * time.Second)
	var total crashResult
	crashes := 0
	for r := 0; r < runs && time.Now().Before(deadline); r++ {
		fsys := wl.setup(t)
		n := rng.Int64N(steps + steps/4)
		fsys.CrashAfter(n)
		acked := wl.run(fsys)
		var post *crashfs.FS
		mode := "strict"
		if r%2 == 1 {
			post, mode = fsys.CrashRandom(uint64(r)), "random"
		} else {
			post = fsys.Crash()
		}
		res := wl.check(t, post, acked)
		crashes++
		total.acked += res.acked
		total.lost += res.lost
		if t.Failed() {
			t.Fatalf("run %d (%s crash after step %d of about %d): %d of %d acknowledged records lost", r, mode, n, steps, res.lost, res.acked)
		}
	}
	t.Logf("%d crashes at random points (of about %d steps); %d acknowledged records checked, %d lost", crashes, steps, total.acked, total.lost)
}

// TestSegmentsRotateOnlyWhenFull reads the segments concurrent appenders
// left (no checkpoint): each one but the last holds at least SegmentSize
// bytes of records — none was closed before it was full.
func TestSegmentsRotateOnlyWhenFull(t *testing.T) {
	const segSize = 4096
	fsys := crashfs.New(slowSyncs())
	l, err := OpenOptions(crashDir, Options{FS: fsys, SegmentSize: segSize, PreallocSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tk, err := l.Append(payloadOf(w, i))
				if err != nil {
					t.Error(err)
					return
				}
				tk.Done()
			}
		}()
	}
	wg.Wait()
	l.Close()
	names, err := segmentNames(fsys, crashDir)
	if err != nil {
		t.Fatal(err)
	}
	early, records := 0, 0
	for k, name := range names {
		var size int64
		first := segFirst(name)
		err := readSegment(fsys, crashDir+"/"+name, first, func(_ uint64, p []byte) error {
			size += headerSize + int64(len(p))
			records++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if k < len(names)-1 && size < segSize {
			early++
		}
	}
	if records != writers*each {
		t.Errorf("%d records in the segments, want %d", records, writers*each)
	}
	t.Logf("%d segments, %d rotated before they were full", len(names), early)
	if early > 0 {
		t.Errorf("%d of %d segments were rotated before they were full", early, len(names))
	}
}

func segFirst(name string) uint64 {
	var first uint64
	fmt.Sscanf(name, "%016x.wal", &first)
	return first
}
