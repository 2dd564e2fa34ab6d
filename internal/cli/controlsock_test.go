package cli

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smtpkit/internal/control"
)

// TestListenControlFailure: a control socket that cannot be bound — its
// path too long for a unix socket address — is logged once, at error,
// saying why, where and that `smtpkit queue` will not work; serve goes on
// (no error). A socket another server answers on stops serve.
func TestListenControlFailure(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("d", 120-len(dir)))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l, err := listenControl(long, fakeStatfs{}, log)
	if l != nil || err != nil {
		t.Fatalf("listenControl = %v, %v; want nil, nil (serve runs on)", l, err)
	}
	out := logs.String()
	for _, want := range []string{
		"level=ERROR",
		"control socket unavailable; `smtpkit queue` will not work",
		"path=" + controlSocket(long),
		fmt.Sprintf("the socket path is %d bytes, more than the 107", len(controlSocket(long))),
	} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, n, out)
		}
	}
	if strings.Contains(out, "stopped") {
		t.Errorf("log says stopped:\n%s", out)
	}

	short, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(short)
	ln, err := net.Listen("unix", controlSocket(short))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := listenControl(short, fakeStatfs{}, log); !errors.Is(err, control.ErrInUse) || !strings.Contains(err.Error(), "another smtpkit") {
		t.Errorf("listenControl on a live socket: %v, want ErrInUse naming another smtpkit", err)
	}
}

// TestControlBindReason: the bind errors a file system without unix
// sockets gives name that file system.
func TestControlBindReason(t *testing.T) {
	fs := fakeStatfs{"/data": roomy(fuse)}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("control: listen unix /data/control.sock: bind: %w", syscall.EPERM), "the file system at /data (fuse (0x65735546)) does not allow a unix socket"},
		{fmt.Errorf("control: %w", syscall.EOPNOTSUPP), "does not allow a unix socket"},
		{fmt.Errorf("control: %w", syscall.EROFS), "does not allow a unix socket"},
		{fmt.Errorf("control: %w", syscall.EADDRNOTAVAIL), "binding the socket in /data (file system fuse (0x65735546)) failed"},
		{fmt.Errorf("control: %w", control.ErrPathTooLong), "the socket path is 18 bytes"},
	} {
		if got := controlBindReason("/data/control.sock", tc.err, fs); !strings.Contains(got, tc.want) {
			t.Errorf("reason for %v = %q, want %q", tc.err, got, tc.want)
		}
	}
}
