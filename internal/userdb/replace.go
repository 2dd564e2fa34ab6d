package userdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"smtpkit/internal/atomicfile"
)

// newFileMode is the mode of an accounts file created from nothing: it
// holds password hashes.
const newFileMode = 0o600

// replaceFile replaces path with data atomically and durably: a temporary
// file in the same directory is given its owner, group and mode, written,
// fsynced and renamed over path, and the directory is fsynced. The new file
// keeps the owner, group and mode of the one it replaces; a file created
// from nothing gets mode 0600 and the owner and group of its directory (the
// data directory, which belongs to the server's user). So `smtpkit user`
// run as root never leaves a file the server cannot read. When the owner
// cannot be kept (not root, and the file belongs to someone else) nothing
// is replaced and the error says why. It returns the new file's identity.
func replaceFile(path string, data []byte) (fileID, error) {
	dir := filepath.Dir(path)
	want, err := wantedOwner(path, dir)
	if err != nil {
		return fileID{}, err
	}
	err = atomicfile.WriteWith(path, data, atomicfile.Options{
		Prepare: func(tmp *os.File) error { return giveOwner(tmp, path, want) },
	})
	if err != nil {
		return fileID{}, fmt.Errorf("userdb: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, fmt.Errorf("userdb: %w", err)
	}
	return statID(fi), nil
}

// owner is the owner, group and permission bits a file should have.
type owner struct {
	uid, gid int
	mode     os.FileMode
}

// wantedOwner is what the replacement of path must get: path's own owner
// and mode, or for a new file the directory's owner with mode 0600.
func wantedOwner(path, dir string) (owner, error) {
	fi, err := os.Stat(path)
	mode := os.FileMode(0)
	if errors.Is(err, os.ErrNotExist) {
		fi, err = os.Stat(dir)
		mode = newFileMode
	}
	if err != nil {
		return owner{}, fmt.Errorf("userdb: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{}, fmt.Errorf("userdb: no owner information for %s", fi.Name())
	}
	if mode == 0 {
		mode = fi.Mode().Perm()
	}
	return owner{uid: int(st.Uid), gid: int(st.Gid), mode: mode}, nil
}

// giveOwner sets tmp's owner and group (when they differ from what the
// process creates files with) and then its mode: chown clears set-id bits,
// so chmod comes last.
func giveOwner(tmp *os.File, path string, want owner) error {
	fi, err := tmp.Stat()
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != want.uid || int(st.Gid) != want.gid) {
		if err := tmp.Chown(want.uid, want.gid); err != nil {
			return fmt.Errorf("%s belongs to uid %d, gid %d, and this process cannot give the new file that owner "+
				"(run the command as that user or as root): %w", path, want.uid, want.gid, err)
		}
	}
	return tmp.Chmod(want.mode)
}

// ownLike gives fh the owner and group of dir when it has other ones and
// the process may change that (root): the lock file beside the accounts
// file must stay usable by the server's user. A failure is harmless to
// this process and ignored.
func ownLike(fh *os.File, dir string) {
	if os.Geteuid() != 0 {
		return
	}
	di, err := os.Stat(dir)
	fi, ferr := fh.Stat()
	if err != nil || ferr != nil {
		return
	}
	d, ok1 := di.Sys().(*syscall.Stat_t)
	f, ok2 := fi.Sys().(*syscall.Stat_t)
	if ok1 && ok2 && (d.Uid != f.Uid || d.Gid != f.Gid) {
		fh.Chown(int(d.Uid), int(d.Gid))
	}
}
