package crashfs

import (
	"io/fs"
	"syscall"
	"time"
)

// inode is a file or a directory, with its volatile state (what reads see)
// and its durable state (what survives a power loss).
type inode struct {
	ino     uint64
	dir     bool
	anon    bool   // opened by OpenAnonymous: LinkTo works without a name
	mount   string // mount point holding it
	mode    fs.FileMode
	durMode fs.FileMode
	mtime   time.Time
	nlink   int // volatile names
	open    int // open files

	// A file: content, and the range changed since the last sync.
	data      []byte
	dur       []byte
	dirtyLo   int
	dirtyHi   int // dirtyLo == dirtyHi: nothing unsynced
	sizeDirty bool

	// A directory: entries, and the entry operations since the last sync.
	ents    map[string]*inode
	durEnts map[string]*inode
	log     []dirOp
}

// change sets the entry name to ino, or removes it when ino is nil.
type change struct {
	name string
	ino  *inode
}

// dirOp is one entry operation: the changes survive a crash together.
type dirOp []change

func (s *state) newInode(dir bool, perm fs.FileMode, mount string) *inode {
	s.ino++
	n := &inode{ino: s.ino, dir: dir, mount: mount, mode: perm.Perm(), mtime: s.opts.Now()}
	n.durMode = n.mode
	if dir {
		n.ents = make(map[string]*inode)
		n.durEnts = make(map[string]*inode)
	}
	s.live[n] = struct{}{}
	return n
}

// set changes one entry of the directory d as one entry operation.
func (d *inode) set(s *state, name string, n *inode) {
	d.apply(s, change{name, n})
}

// apply makes the changes to the directory d as one entry operation,
// keeping link counts and the space accounting.
func (d *inode) apply(s *state, cs ...change) {
	op := make(dirOp, len(cs))
	copy(op, cs)
	d.log = append(d.log, op)
	for _, c := range cs {
		if old, ok := d.ents[c.name]; ok {
			delete(d.ents, c.name)
			old.nlink--
			old.release(s)
		}
		if c.ino != nil {
			d.ents[c.name] = c.ino
			c.ino.nlink++
		}
	}
	d.mtime = s.opts.Now()
}

// release frees the space of an inode with no name and no open file.
func (n *inode) release(s *state) {
	if n.nlink > 0 || n.open > 0 {
		return
	}
	if _, ok := s.live[n]; !ok {
		return
	}
	delete(s.live, n)
	s.used -= blocks(int64(len(n.data)))
}

// removeChildren removes everything below the directory n.
func (n *inode) removeChildren(s *state) {
	if !n.dir {
		return
	}
	for name, c := range n.ents {
		c.removeChildren(s)
		n.set(s, name, nil)
	}
}

func blocks(size int64) int64 {
	return (size + blockSize - 1) / blockSize * blockSize
}

// fits reports whether the file may take size bytes.
func (n *inode) fits(s *state, size int64) bool {
	extra := blocks(size) - blocks(int64(len(n.data)))
	return extra <= 0 || s.used+extra <= s.capacity()
}

// resize truncates or extends (with zeros) the file n to size.
func (n *inode) resize(s *state, size int64) error {
	old := int64(len(n.data))
	if size == old {
		return nil
	}
	if !n.fits(s, size) {
		return syscall.ENOSPC
	}
	s.used += blocks(size) - blocks(old)
	if size < old {
		n.data = n.data[:size]
	} else {
		n.data = append(n.data, make([]byte, size-old)...)
	}
	n.dirty(int(min(old, size)), int(max(old, size)))
	n.sizeDirty = true
	n.mtime = s.opts.Now()
	return nil
}

// writeAt writes b at off, extending the file with zeros as needed.
func (n *inode) writeAt(s *state, b []byte, off int64) error {
	end := off + int64(len(b))
	if end > int64(len(n.data)) {
		if err := n.resize(s, end); err != nil {
			return err
		}
	}
	copy(n.data[off:], b)
	n.dirty(int(off), int(end))
	n.mtime = s.opts.Now()
	return nil
}

func (n *inode) dirty(lo, hi int) {
	if n.dirtyLo == n.dirtyHi {
		n.dirtyLo, n.dirtyHi = lo, hi
		return
	}
	n.dirtyLo = min(n.dirtyLo, lo)
	n.dirtyHi = max(n.dirtyHi, hi)
}

// sync makes n durable: a file's content and size (and its mode when
// meta), a directory's entries.
func (n *inode) sync(meta bool) {
	if meta {
		n.durMode = n.mode
	}
	if n.dir {
		if len(n.log) > 0 {
			n.durEnts = make(map[string]*inode, len(n.ents))
			for k, v := range n.ents {
				n.durEnts[k] = v
			}
			n.log = nil
		}
		return
	}
	if n.dirtyLo == n.dirtyHi && !n.sizeDirty {
		return
	}
	if len(n.dur) > len(n.data) {
		n.dur = n.dur[:len(n.data)]
	} else if len(n.dur) < len(n.data) {
		n.dur = append(n.dur, make([]byte, len(n.data)-len(n.dur))...)
	}
	lo, hi := min(n.dirtyLo, len(n.data)), min(n.dirtyHi, len(n.data))
	copy(n.dur[lo:hi], n.data[lo:hi])
	n.dirtyLo, n.dirtyHi, n.sizeDirty = 0, 0, false
}

// info is the fs.FileInfo of n under the name base.
func (n *inode) info(base string) fs.FileInfo {
	fi := fileInfo{name: base, size: int64(len(n.data)), mode: n.mode, mtime: n.mtime}
	if n.dir {
		fi.mode |= fs.ModeDir
		fi.size = int64(len(n.ents)) * 32
	}
	return fi
}

type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi fileInfo) ModTime() time.Time { return fi.mtime }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }
