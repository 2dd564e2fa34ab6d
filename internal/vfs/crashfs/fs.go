package crashfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smtpkit/internal/vfs"
)

// Options configures a new FS. The zero value is an unlimited ext4-like
// file system with O_TMPFILE.
type Options struct {
	// Capacity is the size in bytes; 0 is unlimited (Statfs then reports
	// 1 TiB).
	Capacity int64
	// Type is what Statfs reports as the kind; 0 is ext4.
	Type int64
	// Mounts are directories that are file systems of their own (for
	// DeviceKey, SyncFS and EXDEV); "/" always is one.
	Mounts []string
	// NoAnonymous makes OpenAnonymous return vfs.ErrUnsupported.
	NoAnonymous bool
	// Now is the clock for modification times; nil is time.Now.
	Now func() time.Time
	// AfterSync, when set, is called after every Sync, Datasync, SyncDir
	// and SyncFS that succeeded, with no lock held: a test makes flushes
	// take time with it (runtime.Gosched lets other goroutines run, as
	// they do while a real flush is in flight).
	AfterSync func()
}

// blockSize is the allocation unit and the page of a random crash.
const blockSize = 4096

const unlimited = 1 << 40

// FS is the simulated file system. Create it with New.
type FS struct{ s *state }

var _ vfs.FS = (*FS)(nil)

// state is one life of the file system, between power losses.
type state struct {
	mu     sync.Mutex
	opts   Options
	root   *inode
	live   map[*inode]struct{} // inodes with a name or an open file
	dead   bool                // crashed: this life is over
	frozen bool                // past the crash point
	budget int64               // mutating calls left before freezing; <0 is no limit
	ops    int64               // mutating calls so far
	used   int64               // bytes allocated
	ino    uint64              // last inode number
}

// New returns an empty file system holding only the root directory.
func New(opts Options) *FS {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Type == 0 {
		opts.Type = unix.EXT4_SUPER_MAGIC
	}
	for i, m := range opts.Mounts {
		opts.Mounts[i] = clean(m)
	}
	s := newState(opts)
	s.root = s.newInode(true, 0o755, "/")
	s.root.nlink = 1
	return &FS{s: s}
}

func newState(opts Options) *state {
	return &state{opts: opts, live: make(map[*inode]struct{}), budget: -1}
}

// clean makes name absolute and clean: relative names are taken from /.
func clean(name string) string {
	if !filepath.IsAbs(name) {
		name = "/" + name
	}
	return filepath.Clean(name)
}

// mount is the mount point that holds the clean path p.
func (s *state) mount(p string) string {
	best := "/"
	for _, m := range s.opts.Mounts {
		if (p == m || strings.HasPrefix(p, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	return best
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// enter starts a call: it takes the lock and fails when the file system
// is dead or frozen. A mutating call uses up one step of the crash point
// budget; the call past it freezes the file system. The caller unlocks.
func (s *state) enter(op, name string, mutating bool) error {
	s.mu.Lock()
	if s.dead || s.frozen {
		return pathErr(op, name, syscall.EIO)
	}
	if !mutating {
		return nil
	}
	if s.budget == 0 {
		s.frozen = true
		return pathErr(op, name, syscall.EIO)
	}
	if s.budget > 0 {
		s.budget--
	}
	s.ops++
	return nil
}

// lookup resolves the clean path p.
func (s *state) lookup(p string) (*inode, error) {
	n := s.root
	if p == "/" {
		return n, nil
	}
	for _, part := range strings.Split(p[1:], "/") {
		if !n.dir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.ents[part]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = c
	}
	return n, nil
}

// parent resolves the directory holding the clean path p and p's base.
func (s *state) parent(p string) (*inode, string, error) {
	if p == "/" {
		return nil, "", syscall.EBUSY
	}
	d, err := s.lookup(filepath.Dir(p))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", syscall.ENOTDIR
	}
	return d, filepath.Base(p), nil
}

// OpenFile opens name with the os.OpenFile flags O_RDONLY, O_WRONLY,
// O_RDWR, O_CREATE, O_EXCL, O_TRUNC and O_APPEND. It is a mutating call
// when the flags hold O_CREATE or O_TRUNC.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	s := f.s
	p := clean(name)
	err := s.enter("open", name, flag&(os.O_CREATE|os.O_TRUNC) != 0)
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	n, err := s.lookup(p)
	switch {
	case err == syscall.ENOENT && flag&os.O_CREATE != 0:
		d, base, perr := s.parent(p)
		if perr != nil {
			return nil, pathErr("open", name, perr)
		}
		n = s.newInode(false, perm, s.mount(p))
		d.set(s, base, n)
	case err != nil:
		return nil, pathErr("open", name, err)
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr("open", name, syscall.EEXIST)
	case n.dir && (acc != os.O_RDONLY || flag&os.O_TRUNC != 0):
		return nil, pathErr("open", name, syscall.EISDIR)
	case flag&os.O_TRUNC != 0 && acc != os.O_RDONLY:
		if err := n.resize(s, 0); err != nil {
			return nil, pathErr("open", name, err)
		}
	}
	return s.newFile(n, name, flag), nil
}

// OpenAnonymous opens an unnamed file in dir (O_TMPFILE).
func (f *FS) OpenAnonymous(dir string, perm fs.FileMode) (vfs.File, error) {
	s := f.s
	p := clean(dir)
	err := s.enter("open", dir, true)
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.opts.NoAnonymous {
		return nil, vfs.ErrUnsupported
	}
	d, err := s.lookup(p)
	if err == nil && !d.dir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	n := s.newInode(false, perm, s.mount(p))
	n.anon = true
	return s.newFile(n, filepath.Join(p, "(anonymous)"), os.O_RDWR), nil
}

// Link gives the file oldname the second name newname.
func (f *FS) Link(oldname, newname string) error {
	s := f.s
	if err := s.enter("link", oldname, true); err != nil {
		s.mu.Unlock()
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EIO}
	}
	defer s.mu.Unlock()
	n, err := s.lookup(clean(oldname))
	if err == nil && n.dir {
		err = syscall.EPERM
	}
	if err == nil {
		err = s.link(n, clean(newname))
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// link adds the name p for the file n. Called with mu held.
func (s *state) link(n *inode, p string) error {
	d, base, err := s.parent(p)
	if err != nil {
		return err
	}
	if _, ok := d.ents[base]; ok {
		return syscall.EEXIST
	}
	if s.mount(p) != n.mount {
		return syscall.EXDEV
	}
	d.set(s, base, n)
	return nil
}

// Rename renames oldname to newname, replacing a file there, as
// rename(2).
func (f *FS) Rename(oldname, newname string) error {
	s := f.s
	if err := s.enter("rename", oldname, true); err != nil {
		s.mu.Unlock()
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EIO}
	}
	defer s.mu.Unlock()
	if err := s.rename(clean(oldname), clean(newname)); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

func (s *state) rename(op, np string) error {
	od, obase, err := s.parent(op)
	if err != nil {
		return err
	}
	n, ok := od.ents[obase]
	if !ok {
		return syscall.ENOENT
	}
	nd, nbase, err := s.parent(np)
	if err != nil {
		return err
	}
	if s.mount(op) != s.mount(np) {
		return syscall.EXDEV
	}
	if n.dir && (np == op || strings.HasPrefix(np, op+"/")) {
		if np == op {
			return nil
		}
		return syscall.EINVAL
	}
	if old, ok := nd.ents[nbase]; ok {
		switch {
		case old == n:
			return nil // rename(2): two names of one file change nothing
		case !n.dir && old.dir:
			return syscall.EISDIR
		case n.dir && !old.dir:
			return syscall.ENOTDIR
		case old.dir && len(old.ents) > 0:
			return syscall.ENOTEMPTY
		}
	}
	if od == nd {
		od.apply(s, change{obase, nil}, change{nbase, n})
		return nil
	}
	nd.set(s, nbase, n)
	od.set(s, obase, nil)
	return nil
}

// Remove removes the file or empty directory name.
func (f *FS) Remove(name string) error {
	s := f.s
	err := s.enter("remove", name, true)
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	d, base, err := s.parent(clean(name))
	if err != nil {
		return pathErr("remove", name, err)
	}
	n, ok := d.ents[base]
	switch {
	case !ok:
		return pathErr("remove", name, syscall.ENOENT)
	case n.dir && len(n.ents) > 0:
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	d.set(s, base, nil)
	return nil
}

// RemoveAll removes name and everything below it; a missing name is no
// error.
func (f *FS) RemoveAll(name string) error {
	s := f.s
	err := s.enter("unlinkat", name, true)
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	d, base, err := s.parent(clean(name))
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return pathErr("unlinkat", name, err)
	}
	n, ok := d.ents[base]
	if !ok {
		return nil
	}
	n.removeChildren(s)
	d.set(s, base, nil)
	return nil
}

// Mkdir creates the directory name.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	s := f.s
	err := s.enter("mkdir", name, true)
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.mkdir(clean(name), perm); err != nil {
		return pathErr("mkdir", name, err)
	}
	return nil
}

func (s *state) mkdir(p string, perm fs.FileMode) error {
	d, base, err := s.parent(p)
	if err == syscall.EBUSY {
		return syscall.EEXIST // the root
	}
	if err != nil {
		return err
	}
	if _, ok := d.ents[base]; ok {
		return syscall.EEXIST
	}
	d.set(s, base, s.newInode(true, perm, s.mount(p)))
	return nil
}

// MkdirAll creates name and its missing parents; one mutating call.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	s := f.s
	err := s.enter("mkdir", name, true)
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	p := clean(name)
	var missing []string
	for q := p; ; q = filepath.Dir(q) {
		n, err := s.lookup(q)
		if err == nil {
			if !n.dir {
				return pathErr("mkdir", q, syscall.ENOTDIR)
			}
			break
		}
		if err != syscall.ENOENT {
			return pathErr("mkdir", q, err)
		}
		missing = append(missing, q)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := s.mkdir(missing[i], perm); err != nil {
			return pathErr("mkdir", missing[i], err)
		}
	}
	return nil
}

// ReadDir lists the directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	s := f.s
	err := s.enter("open", name, false)
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	d, err := s.lookup(clean(name))
	if err == nil && !d.dir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	out := make([]fs.DirEntry, 0, len(d.ents))
	for base, n := range d.ents {
		out = append(out, fs.FileInfoToDirEntry(n.info(base)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Stat describes name.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	s := f.s
	err := s.enter("stat", name, false)
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p := clean(name)
	n, err := s.lookup(p)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return n.info(filepath.Base(p)), nil
}

// Lstat is Stat: there are no symbolic links.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := f.Stat(name)
	if pe, ok := err.(*fs.PathError); ok {
		pe.Op = "lstat"
	}
	return fi, err
}

// ReadFile returns the content of the file name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	s := f.s
	err := s.enter("read", name, false)
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	n, err := s.lookup(clean(name))
	if err == nil && n.dir {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return append([]byte(nil), n.data...), nil
}

// SyncDir makes the entries of the directory dir durable.
func (f *FS) SyncDir(dir string) error {
	s := f.s
	if err := s.enter("fsync", dir, true); err != nil {
		s.mu.Unlock()
		return err
	}
	d, err := s.lookup(clean(dir))
	if err != nil {
		s.mu.Unlock()
		return pathErr("open", dir, err)
	}
	d.sync(true)
	s.mu.Unlock()
	s.afterSync()
	return nil
}

// SyncFS makes everything on the mount holding path durable.
func (f *FS) SyncFS(path string) error {
	s := f.s
	if err := s.enter("syncfs", path, true); err != nil {
		s.mu.Unlock()
		return err
	}
	p := clean(path)
	if _, err := s.lookup(p); err != nil {
		s.mu.Unlock()
		return pathErr("open", path, err)
	}
	m := s.mount(p)
	for n := range s.live {
		if n.mount == m {
			n.sync(true)
		}
	}
	s.mu.Unlock()
	s.afterSync()
	return nil
}

// afterSync runs Options.AfterSync; called without the lock.
func (s *state) afterSync() {
	if s.opts.AfterSync != nil {
		s.opts.AfterSync()
	}
}

// DeviceKey names the mount holding path.
func (f *FS) DeviceKey(path string) (string, error) {
	s := f.s
	err := s.enter("stat", path, false)
	defer s.mu.Unlock()
	if err != nil {
		return "", err
	}
	p := clean(path)
	if _, err := s.lookup(p); err != nil {
		return "", pathErr("stat", path, err)
	}
	return "crashfs:" + s.mount(p), nil
}

// Statfs reports the capacity, the free space and the kind. All mounts
// share one capacity.
func (f *FS) Statfs(path string) (vfs.Usage, error) {
	s := f.s
	err := s.enter("statfs", path, false)
	defer s.mu.Unlock()
	if err != nil {
		return vfs.Usage{}, err
	}
	if _, err := s.lookup(clean(path)); err != nil {
		return vfs.Usage{}, pathErr("statfs", path, err)
	}
	total := s.capacity()
	return vfs.Usage{Total: uint64(total), Free: uint64(max(total-s.used, 0)), Type: s.opts.Type}, nil
}

func (s *state) capacity() int64 {
	if s.opts.Capacity > 0 {
		return s.opts.Capacity
	}
	return unlimited
}

// CrashAfter sets the crash point: n more mutating calls succeed, and the
// one after them freezes the file system (see the package doc). A
// negative n removes the crash point.
func (f *FS) CrashAfter(n int64) {
	f.s.mu.Lock()
	f.s.budget = n
	f.s.mu.Unlock()
}

// Ops is the number of mutating calls made so far in this life of the
// file system.
func (f *FS) Ops() int64 {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.ops
}

// Frozen reports whether the crash point was passed.
func (f *FS) Frozen() bool {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.frozen
}
