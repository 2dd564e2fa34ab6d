package maildir

import "sync"

// groupSync batches the directory fsyncs of concurrent deliveries (group
// commit). Flush(dir) returns once an fsync of dir that started after the
// call has finished. While one fsync runs, every delivery that linked its
// file into the same new/ meanwhile waits for the next one, which then
// covers them all: one directory flush acknowledges many messages.
//
// The same rule batches file-system flushes (fsSyncer), keyed by device.
type groupSync struct {
	mu    sync.Mutex
	keys  map[string]*flushState
	flush func(path string) error // vfs.FS.SyncDir or SyncFS; a field for tests
}

type flushState struct {
	cond    *sync.Cond
	running bool
	started uint64 // flushes started for this key
	done    uint64 // the last finished flush
	err     error  // its result
	waiting int    // deliveries waiting; the entry is dropped at zero
}

func newGroupSync(flush func(path string) error) *groupSync {
	return &groupSync{keys: make(map[string]*flushState), flush: flush}
}

// Flush returns once an fsync of path that started after the call has
// finished, with that fsync's error.
func (g *groupSync) Flush(path string) error { return g.FlushKey(path, path) }

// FlushKey is Flush with the batching key given apart from the path the
// flush runs on: callers with the same key share flushes.
func (g *groupSync) FlushKey(key, path string) error {
	g.mu.Lock()
	p := g.keys[key]
	if p == nil {
		p = &flushState{cond: sync.NewCond(&g.mu)}
		g.keys[key] = p
	}
	p.waiting++
	// A flush already running may have started before our writes: we need
	// the one after it.
	target := p.started + 1
	for p.done < target {
		if p.running {
			p.cond.Wait()
			continue
		}
		p.running = true
		p.started++
		gen := p.started
		g.mu.Unlock()
		err := g.flush(path)
		g.mu.Lock()
		p.running, p.done, p.err = false, gen, err
		p.cond.Broadcast()
	}
	err := p.err
	if p.waiting--; p.waiting == 0 && !p.running {
		delete(g.keys, key)
	}
	g.mu.Unlock()
	return err
}
