package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks the systemd readiness protocol (sd_notify(3)): each
// state change is one datagram of newline-separated VAR=value lines sent to
// the AF_UNIX socket named by $NOTIFY_SOCKET. Without a socket it does
// nothing, so serve behaves the same outside systemd. It is a few lines of
// our own rather than a dependency.
type notifier struct {
	socket string // a path, or "@name" for the abstract namespace; "" = off
	log    *slog.Logger
}

func newNotifier(socket string, log *slog.Logger) *notifier {
	return &notifier{socket: socket, log: log}
}

// ready says start-up (or a reload) is complete: listeners are bound.
func (n *notifier) ready() { n.send("READY=1", "STATUS=serving") }

// reloading says a SIGHUP reload started; systemd ≥ 253 wants the
// CLOCK_MONOTONIC time with it to pair it with the reload job. ready ends it.
func (n *notifier) reloading() {
	n.send("RELOADING=1", "STATUS=reloading configuration", fmt.Sprintf("MONOTONIC_USEC=%d", monotonicUsec()))
}

// stopping says shutdown started.
func (n *notifier) stopping() { n.send("STOPPING=1", "STATUS=shutting down") }

// send delivers one notification; failures are logged, never fatal (the
// service manager's problem must not stop mail).
func (n *notifier) send(lines ...string) {
	if err := n.notify(lines...); err != nil {
		n.log.Warn("systemd notification failed", "socket", n.socket, "err", err)
	}
}

func (n *notifier) notify(lines ...string) error {
	if n.socket == "" {
		return nil
	}
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return errors.New("NOTIFY_SOCKET is neither a path nor an abstract socket name")
	}
	// Go maps a leading "@" to the abstract namespace (a NUL first byte).
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte(strings.Join(lines, "\n") + "\n"))
	return err
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC with.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}
