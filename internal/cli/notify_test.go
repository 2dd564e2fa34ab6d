package cli

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// listenNotify is a stand-in for systemd's notification socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyProtocol(t *testing.T) {
	// A short directory: socket paths are limited to ~108 bytes.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sockets := map[string]string{
		"path":     filepath.Join(dir, "notify"),
		"abstract": fmt.Sprintf("@smtpkit-notify-test-%d", os.Getpid()),
	}
	for name, socket := range sockets {
		t.Run(name, func(t *testing.T) {
			c := listenNotify(t, socket)
			var logs bytes.Buffer
			n := newNotifier(socket, slog.New(slog.NewTextHandler(&logs, nil)))
			n.ready()
			if got := readNotify(t, c); got != "READY=1\nSTATUS=serving\n" {
				t.Errorf("ready sent %q", got)
			}
			n.reloading()
			got := readNotify(t, c)
			if !regexp.MustCompile(`^RELOADING=1\nSTATUS=[^\n]*\nMONOTONIC_USEC=[1-9][0-9]*\n$`).MatchString(got) {
				t.Errorf("reloading sent %q", got)
			}
			n.stopping()
			if got := readNotify(t, c); !strings.HasPrefix(got, "STOPPING=1\n") {
				t.Errorf("stopping sent %q", got)
			}
			if logs.Len() != 0 {
				t.Errorf("unexpected log output: %s", logs.String())
			}
		})
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	if err := newNotifier("", slog.New(slog.DiscardHandler)).notify("READY=1"); err != nil {
		t.Errorf("no socket: %v", err)
	}
	for _, bad := range []string{"relative/path", "vsock:2:1234"} {
		if err := newNotifier(bad, slog.New(slog.DiscardHandler)).notify("READY=1"); err == nil {
			t.Errorf("socket %q accepted", bad)
		}
	}
	// A socket nobody listens on is logged, not fatal.
	var logs bytes.Buffer
	newNotifier(filepath.Join(t.TempDir(), "absent"), slog.New(slog.NewTextHandler(&logs, nil))).ready()
	if !strings.Contains(logs.String(), "systemd notification failed") {
		t.Errorf("failure not logged: %q", logs.String())
	}
}

func TestMonotonicUsec(t *testing.T) {
	a := monotonicUsec()
	b := monotonicUsec()
	if a <= 0 || b < a {
		t.Errorf("monotonic clock went %d → %d", a, b)
	}
}
