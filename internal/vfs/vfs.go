// Package vfs is the set of file-system operations smtpkit's durable
// stores (internal/wal, internal/maildir, internal/queue) perform, as an
// interface, so that a test can put a file system under them that
// simulates a power loss (internal/vfs/crashfs) and check that everything
// they acknowledged survives it. OS is the real one: each method is one
// system call, so code reads the same as with package os.
//
// What each durability call promises is the POSIX/Linux contract a store
// may rely on, and no more:
//   - File.Sync (fsync) makes the file's data and metadata durable, not
//     the directory entries that name it;
//   - File.Datasync (fdatasync) makes the data and the size durable;
//   - SyncDir (fsync of a directory) makes the entries created, renamed
//     or removed in that directory durable;
//   - SyncFS (syncfs) makes everything on the file system durable — on a
//     local file system; see Statfs for the kinds where it is not.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsupported is returned by OpenAnonymous where the file system has no
// unnamed files (O_TMPFILE); callers fall back to a named temporary file.
var ErrUnsupported = errors.New("vfs: operation not supported by this file system")

// FS is a file system. Paths are host paths, as with package os.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// OpenAnonymous opens an unnamed regular file in dir for reading and
	// writing (Linux O_TMPFILE); File.LinkTo gives it a name.
	OpenAnonymous(dir string, perm fs.FileMode) (File, error)
	Link(oldname, newname string) error
	Rename(oldname, newname string) error
	Remove(name string) error
	RemoveAll(name string) error
	Mkdir(name string, perm fs.FileMode) error
	MkdirAll(name string, perm fs.FileMode) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	Lstat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	// SyncDir fsyncs the directory dir.
	SyncDir(dir string) error
	// SyncFS flushes the whole file system that holds path (syncfs(2)).
	SyncFS(path string) error
	// DeviceKey names the file system that holds path: two paths with the
	// same key are flushed by one SyncFS.
	DeviceKey(path string) (string, error)
	// Statfs reports the space and the kind of the file system that holds
	// path.
	Statfs(path string) (Usage, error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	Name() string
	// Sync is fsync(2).
	Sync() error
	// Datasync is fdatasync(2).
	Datasync() error
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Chmod(mode fs.FileMode) error
	// LinkTo gives the file the name newname (linkat(2) with
	// AT_EMPTY_PATH): how an OpenAnonymous file gets into a directory.
	LinkTo(newname string) error
}

// Usage is what Statfs reports.
type Usage struct {
	Total uint64 // bytes
	Free  uint64 // bytes available to an unprivileged writer
	Type  int64  // statfs f_type (unix.EXT4_SUPER_MAGIC, unix.FUSE_SUPER_MAGIC, …)
}

// OS is the host's file system.
type OS struct{}

var _ FS = OS{}

func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) OpenAnonymous(dir string, perm fs.FileMode) (File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, ErrUnsupported
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return osFile{os.NewFile(uintptr(fd), filepath.Join(dir, "(anonymous)"))}, nil
}

func (OS) Link(oldname, newname string) error           { return os.Link(oldname, newname) }
func (OS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (OS) Remove(name string) error                     { return os.Remove(name) }
func (OS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (OS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (OS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (OS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (OS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (OS) Lstat(name string) (fs.FileInfo, error)       { return os.Lstat(name) }
func (OS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }

func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func (OS) SyncFS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: path, Err: err}
	}
	return nil
}

func (OS) DeviceKey(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fmt.Sprintf("%d", st.Dev), nil
}

func (OS) Statfs(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	bs := uint64(st.Bsize)
	return Usage{Total: st.Blocks * bs, Free: st.Bavail * bs, Type: int64(st.Type)}, nil
}

// osFile is an *os.File with the two calls package os lacks.
type osFile struct{ *os.File }

func (f osFile) Datasync() error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

func (f osFile) LinkTo(newname string) error {
	fd := int(f.Fd())
	err := unix.Linkat(fd, "", unix.AT_FDCWD, newname, unix.AT_EMPTY_PATH)
	if err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EXDEV) {
		// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd works
		// without it.
		err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, newname, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: newname, Err: err}
	}
	return nil
}

// Write is atomicfile's rule on any FS: write a temporary file beside
// path, fsync it, rename it over path, fsync the directory. A reader or a
// crash sees the old content or the new.
func Write(fsys FS, path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp")
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
