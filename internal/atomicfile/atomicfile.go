// Package atomicfile replaces files so that a reader or a crash sees the
// old content or the new, never a mix: write a temporary file beside the
// target, fsync it, rename it over the target, fsync the directory.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"smtpkit/internal/vfs"
)

// Options change how WriteWith publishes the file.
type Options struct {
	// Perm is the new file's mode; ignored when Prepare sets it.
	Perm os.FileMode
	// Prepare, when set, runs on the temporary file before the data is
	// written (to give it an owner and mode); its error stops the write.
	Prepare func(tmp *os.File) error
	// NoReplace links the file in instead of renaming it, so that the
	// write fails with an error matching os.ErrExist when path exists:
	// the first of several writers wins.
	NoReplace bool
}

// Write replaces path with data (mode perm) durably.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteWith(path, data, Options{Perm: perm})
}

// WriteWith writes data to path durably as opts say: a temporary file in
// the same directory is prepared, written, fsynced, renamed (or linked)
// to path, and the directory is fsynced.
func WriteWith(path string, data []byte, opts Options) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if opts.Prepare != nil {
		err = opts.Prepare(f)
	} else {
		err = f.Chmod(opts.Perm)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if opts.NoReplace {
			err = os.Link(tmp, path)
		} else {
			err = os.Rename(tmp, path)
		}
	}
	if err == nil {
		err = SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error { return vfs.OS{}.SyncDir(dir) }
