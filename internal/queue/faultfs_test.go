package queue

import (
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"smtpkit/internal/vfs"
)

// faultFS is the host's file system with failures injected by the test:
// fail(op, path) returns the error an operation gets, nil to let it run.
// op is "open", "write", "writeat", "sync", "datasync", "rename",
// "syncdir" or "remove".
type faultFS struct {
	vfs.OS
	mu   sync.Mutex
	fail func(op, path string) error
}

func (f *faultFS) set(fail func(op, path string) error) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func (f *faultFS) check(op, path string) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail == nil {
		return nil
	}
	return fail(op, path)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	file, err := f.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return faultFile{file, f}, nil
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.check("rename", newname); err != nil {
		return err
	}
	return f.OS.Rename(oldname, newname)
}

func (f *faultFS) Remove(name string) error {
	if err := f.check("remove", name); err != nil {
		return err
	}
	return f.OS.Remove(name)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.check("syncdir", dir); err != nil {
		return err
	}
	return f.OS.SyncDir(dir)
}

type faultFile struct {
	vfs.File
	fs *faultFS
}

func (f faultFile) Write(p []byte) (int, error) {
	if err := f.fs.check("write", f.Name()); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.check("writeat", f.Name()); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f faultFile) Datasync() error {
	if err := f.fs.check("datasync", f.Name()); err != nil {
		return err
	}
	return f.File.Datasync()
}

func (f faultFile) Sync() error {
	if err := f.fs.check("sync", f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

// under reports whether path is in the spool subdirectory sub (msg, env, tmp).
func under(path, sub string) bool {
	return filepath.Base(filepath.Dir(path)) == sub
}

// envTmp reports whether path is an envelope being written in tmp/.
func envTmp(path string) bool { return under(path, "tmp") && strings.HasSuffix(path, ".env") }
