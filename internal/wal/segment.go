package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"smtpkit/internal/vfs"
)

// segmentNames lists the segment files of dir in log order.
func segmentNames(fsys vfs.FS, dir string) ([]string, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if len(n) == 16+4 && strings.HasSuffix(n, ".wal") {
			if _, err := strconv.ParseUint(n[:16], 16, 64); err == nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names) // fixed-width hex: lexical order is numeric order
	return names, nil
}

// spareNames lists the spare files of dir ("spare-BOUND-N") and the
// highest BOUND: a sequence number above every one they ever held.
func spareNames(fsys vfs.FS, dir string) ([]string, uint64, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: %w", err)
	}
	var spares []string
	var bound uint64
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "spare-")
		if !ok || len(name) < 16 {
			continue
		}
		b, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		bound = max(bound, b)
		spares = append(spares, filepath.Join(dir, e.Name()))
	}
	return spares, bound, nil
}

// segmentFile opens the file of a new segment at path: a spare renamed,
// or a new file, preallocated (see prealloc.go). Either way it is written
// from offset 0.
func (l *Log) segmentFile(path string) (vfs.File, error) {
	for len(l.spares) > 0 {
		spare := l.spares[0]
		l.spares = l.spares[1:]
		if err := l.fs.Rename(spare, path); err != nil {
			continue // gone or unusable: try the next, or make a new one
		}
		f, err := l.fs.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			l.fs.Remove(path)
			continue
		}
		return f, nil
	}
	f, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := l.preallocate(f); err != nil {
		f.Close()
		l.fs.Remove(path)
		return nil, fmt.Errorf("wal: preallocate %s: %w", path, err)
	}
	return f, nil
}

// rotate starts a new segment for appends; the current one is closed to
// appends and joins old. Its file stays open until the appenders waiting
// on it have synced it (closeIfDone). Called with mu held (or during
// Open).
func (l *Log) rotate() error {
	path := filepath.Join(l.dir, fmt.Sprintf("%016x.wal", l.nextSeq))
	f, err := l.segmentFile(path)
	if err != nil {
		return err
	}
	// The new name must survive a crash, or records appended to it would
	// be acknowledged and then lost with it.
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		l.fs.Remove(path)
		return fmt.Errorf("wal: %w", err)
	}
	if out := l.cur; out != nil {
		out.sealed = true
		l.old = append(l.old, out)
		l.closeIfDone(out)
	}
	l.cur = &segment{path: path, f: f, first: l.nextSeq}
	return nil
}
