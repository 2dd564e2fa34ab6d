// Package statefile keeps the in-memory state of a report store (the
// TLS-RPT counters of internal/tlsrpt, the DMARC rows of
// internal/dmarcrpt) in one file: read back at start-up, moved aside when
// it cannot be read, and written by the store's own Flush every interval
// and once more when the store closes. The store decides what the file
// holds and writes it (atomically, with internal/atomicfile); this
// package owns only the schedule and the start-up rules, which both
// stores share.
package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Load reads path and hands its bytes to parse. A missing file is not an
// error: the store starts empty. A file parse refuses is renamed to
// path+".bad", logged, and reset is called so that the store starts afresh
// — statistics never keep mail from flowing.
func Load(path string, parse func([]byte) error, reset func(), log *slog.Logger) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := parse(data); err != nil {
		bad := path + ".bad"
		log.Error("state file unreadable, moved aside; counting starts afresh", "path", path, "moved_to", bad, "err", err)
		reset()
		if err := os.Rename(path, bad); err != nil {
			return fmt.Errorf("moving %s aside: %w", path, err)
		}
	}
	return nil
}

// Flusher calls a store's Flush every interval until Close.
type Flusher struct {
	flush  func() error
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
	err    error
}

// Start calls flush every interval in its own goroutine; a failure goes
// to onError and is retried at the next tick.
func Start(every time.Duration, flush func() error, onError func(error)) *Flusher {
	f := &Flusher{flush: flush, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				if err := flush(); err != nil {
					onError(err)
				}
			}
		}
	}()
	return f
}

// Close stops the ticks and flushes a last time; later calls return the
// same result without flushing again.
func (f *Flusher) Close() error {
	f.closed.Do(func() {
		close(f.stop)
		<-f.done
		f.err = f.flush()
	})
	return f.err
}
