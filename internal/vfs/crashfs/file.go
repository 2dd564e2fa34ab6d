package crashfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// file is an open file of an FS.
type file struct {
	s      *state
	n      *inode
	name   string
	pos    int64
	read   bool
	write  bool
	append bool
	closed bool
}

func (s *state) newFile(n *inode, name string, flag int) *file {
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	n.open++
	return &file{
		s: s, n: n, name: name,
		read:   acc != os.O_WRONLY,
		write:  acc != os.O_RDONLY,
		append: flag&os.O_APPEND != 0,
	}
}

// enter starts a call on the file, as state.enter, and also fails on a
// closed file. The caller unlocks.
func (f *file) enter(op string, mutating bool) error {
	if err := f.s.enter(op, f.name, mutating); err != nil {
		return err
	}
	if f.closed {
		return pathErr(op, f.name, fs.ErrClosed)
	}
	return nil
}

func (f *file) Name() string { return f.name }

func (f *file) Read(b []byte) (int, error) {
	err := f.enter("read", false)
	defer f.s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := f.readAt(b, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *file) ReadAt(b []byte, off int64) (int, error) {
	err := f.enter("read", false)
	defer f.s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, errors.New("negative offset"))
	}
	n, err := f.readAt(b, off)
	if err == nil && n < len(b) {
		err = io.EOF
	}
	return n, err
}

func (f *file) readAt(b []byte, off int64) (int, error) {
	switch {
	case !f.read:
		return 0, pathErr("read", f.name, syscall.EBADF)
	case f.n.dir:
		return 0, pathErr("read", f.name, syscall.EISDIR)
	case off >= int64(len(f.n.data)):
		if len(b) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	return copy(b, f.n.data[off:]), nil
}

func (f *file) Write(b []byte) (int, error) {
	err := f.enter("write", true)
	defer f.s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	off := f.pos
	if f.append {
		off = int64(len(f.n.data))
	}
	n, err := f.writeAt(b, off)
	f.pos = off + int64(n)
	return n, err
}

func (f *file) WriteAt(b []byte, off int64) (int, error) {
	err := f.enter("write", true)
	defer f.s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if f.append {
		return 0, errors.New("os: invalid use of WriteAt on file opened with O_APPEND")
	}
	if off < 0 {
		return 0, pathErr("writeat", f.name, errors.New("negative offset"))
	}
	return f.writeAt(b, off)
}

// writeAt writes all of b or, when it does not fit, nothing.
func (f *file) writeAt(b []byte, off int64) (int, error) {
	if !f.write {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if err := f.n.writeAt(f.s, b, off); err != nil {
		return 0, pathErr("write", f.name, err)
	}
	return len(b), nil
}

func (f *file) Close() error {
	err := f.s.enter("close", f.name, false)
	defer f.s.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	f.n.open--
	f.n.release(f.s)
	return err
}

// Sync makes the file's content, size and mode durable; on a directory,
// its entries.
func (f *file) Sync() error { return f.sync("sync", true) }

// Datasync makes the file's content and size durable.
func (f *file) Datasync() error { return f.sync("fdatasync", false) }

func (f *file) sync(op string, meta bool) error {
	if err := f.enter(op, true); err != nil {
		f.s.mu.Unlock()
		return err
	}
	f.n.sync(meta)
	f.s.mu.Unlock()
	f.s.afterSync()
	return nil
}

func (f *file) Stat() (fs.FileInfo, error) {
	err := f.enter("stat", false)
	defer f.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.n.info(filepath.Base(f.name)), nil
}

func (f *file) Truncate(size int64) error {
	err := f.enter("truncate", true)
	defer f.s.mu.Unlock()
	switch {
	case err != nil:
		return err
	case size < 0:
		return pathErr("truncate", f.name, syscall.EINVAL)
	case !f.write || f.n.dir:
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	if err := f.n.resize(f.s, size); err != nil {
		return pathErr("truncate", f.name, err)
	}
	return nil
}

func (f *file) Chmod(mode fs.FileMode) error {
	err := f.enter("chmod", true)
	defer f.s.mu.Unlock()
	if err != nil {
		return err
	}
	f.n.mode = mode.Perm()
	return nil
}

// LinkTo gives the open file the name newname, as linkat(2) with
// AT_EMPTY_PATH: an anonymous file gets its first name, and a file whose
// names were all removed cannot get one again (ENOENT).
func (f *file) LinkTo(newname string) error {
	err := f.enter("link", true)
	defer f.s.mu.Unlock()
	if err == nil && (f.n.dir || (f.n.nlink == 0 && !f.n.anon)) {
		err = syscall.ENOENT
	}
	if err == nil {
		err = f.s.link(f.n, clean(newname))
	}
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok {
			err = pe.Err
		}
		return &os.LinkError{Op: "link", Old: f.name, New: newname, Err: err}
	}
	f.n.anon = false
	return nil
}
