package maildir

import (
	"io/fs"
	"runtime"
	"sync/atomic"
	"syscall"

	"smtpkit/internal/vfs"
)

// hookFS wraps a vfs.FS for the crash tests: before every call it runs
// before, which may fail the call. Flushes yield the processor a few
// times first, as a disk flush takes its time: concurrent deliveries then
// do run while one flush is in progress, which is where group commit can
// go wrong.
type hookFS struct {
	vfs.FS
	before func(op string) error // nil: no hook
}

// flushYields is how often a flush yields before it runs.
const flushYields = 3

func (h *hookFS) hook(op string) error {
	if h.before != nil {
		return h.before(op)
	}
	return nil
}

func (h *hookFS) flush(op string) error {
	for range flushYields {
		runtime.Gosched()
	}
	return h.hook(op)
}

// killAfter returns a hook that lets n calls through and fails every later
// one with EIO: the process was killed there (the file system underneath,
// its page cache, stays as it was).
func killAfter(n int64) func(string) error {
	var left atomic.Int64
	left.Store(n)
	return func(op string) error {
		if left.Add(-1) < 0 {
			return &fs.PathError{Op: op, Path: "(killed)", Err: syscall.EIO}
		}
		return nil
	}
}

func (h *hookFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if err := h.hook("open"); err != nil {
		return nil, err
	}
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h}, nil
}

func (h *hookFS) OpenAnonymous(dir string, perm fs.FileMode) (vfs.File, error) {
	if err := h.hook("open"); err != nil {
		return nil, err
	}
	f, err := h.FS.OpenAnonymous(dir, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h}, nil
}

func (h *hookFS) Link(o, n string) error {
	if err := h.hook("link"); err != nil {
		return err
	}
	return h.FS.Link(o, n)
}

func (h *hookFS) Rename(o, n string) error {
	if err := h.hook("rename"); err != nil {
		return err
	}
	return h.FS.Rename(o, n)
}

func (h *hookFS) Remove(name string) error {
	if err := h.hook("remove"); err != nil {
		return err
	}
	return h.FS.Remove(name)
}

func (h *hookFS) RemoveAll(name string) error {
	if err := h.hook("remove"); err != nil {
		return err
	}
	return h.FS.RemoveAll(name)
}

func (h *hookFS) Mkdir(name string, perm fs.FileMode) error {
	if err := h.hook("mkdir"); err != nil {
		return err
	}
	return h.FS.Mkdir(name, perm)
}

func (h *hookFS) MkdirAll(name string, perm fs.FileMode) error {
	if err := h.hook("mkdir"); err != nil {
		return err
	}
	return h.FS.MkdirAll(name, perm)
}

func (h *hookFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := h.hook("readdir"); err != nil {
		return nil, err
	}
	return h.FS.ReadDir(name)
}

func (h *hookFS) Stat(name string) (fs.FileInfo, error) {
	if err := h.hook("stat"); err != nil {
		return nil, err
	}
	return h.FS.Stat(name)
}

func (h *hookFS) Lstat(name string) (fs.FileInfo, error) {
	if err := h.hook("lstat"); err != nil {
		return nil, err
	}
	return h.FS.Lstat(name)
}

func (h *hookFS) ReadFile(name string) ([]byte, error) {
	if err := h.hook("read"); err != nil {
		return nil, err
	}
	return h.FS.ReadFile(name)
}

func (h *hookFS) SyncDir(dir string) error {
	if err := h.flush("fsync"); err != nil {
		return err
	}
	return h.FS.SyncDir(dir)
}

func (h *hookFS) SyncFS(path string) error {
	if err := h.flush("syncfs"); err != nil {
		return err
	}
	return h.FS.SyncFS(path)
}

func (h *hookFS) DeviceKey(path string) (string, error) {
	if err := h.hook("stat"); err != nil {
		return "", err
	}
	return h.FS.DeviceKey(path)
}

// hookFile is a file of a hookFS.
type hookFile struct {
	vfs.File
	h *hookFS
}

func (f *hookFile) Read(b []byte) (int, error) {
	if err := f.h.hook("read"); err != nil {
		return 0, err
	}
	return f.File.Read(b)
}

func (f *hookFile) ReadAt(b []byte, off int64) (int, error) {
	if err := f.h.hook("read"); err != nil {
		return 0, err
	}
	return f.File.ReadAt(b, off)
}

func (f *hookFile) Write(b []byte) (int, error) {
	if err := f.h.hook("write"); err != nil {
		return 0, err
	}
	return f.File.Write(b)
}

func (f *hookFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.h.hook("write"); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *hookFile) Sync() error {
	if err := f.h.flush("fsync"); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *hookFile) Datasync() error {
	if err := f.h.flush("fdatasync"); err != nil {
		return err
	}
	return f.File.Datasync()
}

func (f *hookFile) Truncate(size int64) error {
	if err := f.h.hook("truncate"); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *hookFile) LinkTo(newname string) error {
	if err := f.h.hook("link"); err != nil {
		return err
	}
	return f.File.LinkTo(newname)
}
