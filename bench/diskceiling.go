//go:build ignore

// diskceiling measures what the disk under a directory allows for durable
// message delivery with no SMTP at all: 20 writers each create an
// anonymous file, write 1 KiB, make it durable, link it into new/ and
// flush the directory (grouped), for 3 seconds per method: per-file fsync,
// fdatasync, a shared syncfs before and after the link, and a journal (the
// message appended to a shared log with one fdatasync per group, the files
// flushed by a syncfs once a second, as smtpkit's maildir.sync = "journal").
// It is the ceiling a Maildir server on this disk can reach with "250 means
// durable" by each method. Run: go run bench/diskceiling.go [DIR]
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

type group struct {
	mu            sync.Mutex
	cond          *sync.Cond
	running       bool
	started, done uint64
	fn            func() error
}

func newGroup(fn func() error) *group { g := &group{fn: fn}; g.cond = sync.NewCond(&g.mu); return g }
func (g *group) Flush() {
	g.mu.Lock()
	target := g.started + 1
	for g.done < target {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		g.fn()
		g.mu.Lock()
		g.running, g.done = false, gen
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

func main() {
	parent := "."
	if len(os.Args) > 1 {
		parent = os.Args[1]
	}
	base, err := os.MkdirTemp(parent, "diskceiling")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(base)
	os.MkdirAll(filepath.Join(base, "tmp"), 0o700)
	os.MkdirAll(filepath.Join(base, "new"), 0o700)
	newDir := filepath.Join(base, "new")
	dfd, _ := os.Open(newDir)
	msg := make([]byte, 1024)
	for _, mode := range []string{"fsync+groupdir", "syncfs2", "fdatasync+groupdir", "journal"} {
		var seq atomic.Int64
		var count atomic.Int64
		syncfs := newGroup(func() error { return unix.Syncfs(int(dfd.Fd())) })
		// journal: a shared log file with one fdatasync per group, the
		// message files flushed by a syncfs once a second (a checkpoint).
		jf, err := os.OpenFile(filepath.Join(base, "journal-"+fmt.Sprint(time.Now().UnixNano())), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			panic(err)
		}
		var jmu sync.Mutex
		jsync := newGroup(func() error { return unix.Fdatasync(int(jf.Fd())) })
		stopCheckpoints := make(chan struct{})
		if mode == "journal" {
			go func() {
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for {
					select {
					case <-stopCheckpoints:
						return
					case <-t.C:
						unix.Syncfs(int(dfd.Fd()))
					}
				}
			}()
		}
		dirsync := newGroup(func() error { return dfd.Sync() })
		start := time.Now()
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < 3*time.Second {
					fd, err := unix.Open(filepath.Join(base, "tmp"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
					if err != nil {
						panic(err)
					}
					unix.Write(fd, msg)
					switch mode {
					case "journal":
						jmu.Lock()
						jf.Write(msg)
						jmu.Unlock()
						jsync.Flush()
					case "fsync+groupdir":
						unix.Fsync(fd)
					case "fdatasync+groupdir":
						unix.Fdatasync(fd)
					case "syncfs2":
						syncfs.Flush()
					}
					dst := filepath.Join(newDir, mode+fmt.Sprint(seq.Add(1)))
					if err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW); err != nil {
						panic(err)
					}
					unix.Close(fd)
					switch mode {
					case "syncfs2":
						syncfs.Flush()
					case "journal": // flushed by the next checkpoint
					default:
						dirsync.Flush()
					}
					count.Add(1)
				}
			}()
		}
		wg.Wait()
		if mode == "journal" {
			close(stopCheckpoints)
			unix.Syncfs(int(dfd.Fd())) // the last checkpoint is part of the work
		}
		jf.Close()
		el := time.Since(start)
		fmt.Printf("%-20s %6.0f msgs/s\n", mode, float64(count.Load())/el.Seconds())
	}
}
