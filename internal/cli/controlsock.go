package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"

	"smtpkit/internal/control"
	"smtpkit/internal/vfs"
)

// listenControl binds the control socket of dataDir before serve says it
// is ready, so that `smtpkit queue` works as soon as it has.
//
// A socket that cannot be bound is logged once, at error, with the reason
// and where, and serve runs on without it (nil, nil): the control socket
// only manages the queue, which keeps delivering on its own, and
// refusing mail because the queue cannot be listed would turn a
// management problem into lost mail. The exception is a socket another
// server answers on: two servers on one data directory would share a
// spool, so that is an error and serve does not start.
func listenControl(dataDir string, fsys statfser, log *slog.Logger) (*control.Listener, error) {
	path := controlSocket(dataDir)
	l, err := control.Listen(path)
	if err == nil {
		log.Info("control socket listening", "path", path)
		return l, nil
	}
	if errors.Is(err, control.ErrInUse) {
		return nil, fmt.Errorf("%w: is another smtpkit running on data_dir %s?", err, dataDir)
	}
	log.Error("control socket unavailable; `smtpkit queue` will not work until this is fixed and smtpkit restarted (mail is still accepted and delivered)",
		"path", path, "reason", controlBindReason(path, err, fsys), "err", err)
	return nil, nil
}

// controlBindReason says in words why the socket could not be bound.
func controlBindReason(path string, err error, fsys statfser) string {
	if errors.Is(err, control.ErrPathTooLong) {
		return fmt.Sprintf("the socket path is %d bytes, more than the %d a unix socket address holds: choose a shorter data_dir", len(path), control.MaxPath)
	}
	dir := filepath.Dir(path)
	kind := "unknown"
	if u, serr := fsys.Statfs(dir); serr == nil {
		kind = vfs.KindOf(u.Type).String()
	}
	for _, e := range []error{syscall.EPERM, syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.EACCES, syscall.EROFS} {
		if errors.Is(err, e) {
			return fmt.Sprintf("the file system at %s (%s) does not allow a unix socket to be created there", dir, kind)
		}
	}
	return fmt.Sprintf("binding the socket in %s (file system %s) failed", dir, kind)
}
