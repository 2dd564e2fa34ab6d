package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
)

// wire is a raw SMTP conversation for the smuggling self-test, which must
// send bytes no well-behaved client sends (bare CR and LF in DATA,
// commands pipelined after STARTTLS): what internal/client refuses to do.
// Every line goes to the transcript, the unusual bytes quoted.
type wire struct {
	nc   net.Conn
	r    *bufio.Reader
	tr   *strings.Builder
	exts map[string]bool // EHLO keywords of the last EHLO, upper case
}

// dialWire connects to addr within ctx (closing the socket when ctx ends)
// and, for implicit TLS, handshakes; stop releases the watchdog.
func dialWire(ctx context.Context, d *net.Dialer, addr string, implicit *tls.Config, tr *strings.Builder) (*wire, func(), error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := closeOnDone(ctx, nc)
	done := func() { stop(); nc.Close() }
	if implicit != nil {
		tc := tls.Client(nc, implicit)
		if err := tc.HandshakeContext(ctx); err != nil {
			done()
			return nil, nil, fmt.Errorf("TLS handshake (implicit TLS): %w", err)
		}
		nc = tc
	}
	return &wire{nc: nc, r: bufio.NewReader(nc), tr: tr}, done, nil
}

// send writes s as it is; the transcript shows it line by line, quoted
// when it holds anything but text and a final CRLF.
func (w *wire) send(s string) error {
	for _, l := range strings.SplitAfter(s, "\r\n") {
		if l == "" {
			continue
		}
		if t, ok := strings.CutSuffix(l, "\r\n"); ok && !strings.ContainsAny(t, "\r\n\x00") {
			fmt.Fprintf(w.tr, "C: %s\n", t)
		} else {
			fmt.Fprintf(w.tr, "C: (raw) %s\n", strconv.Quote(l))
		}
	}
	_, err := w.nc.Write([]byte(s))
	return err
}

// reply reads one reply.
func (w *wire) reply() (smtp.Reply, error) {
	rep, err := smtp.ReadReply(w.r)
	if err != nil {
		return rep, err
	}
	for i, l := range rep.Lines {
		sep := "-"
		if i == len(rep.Lines)-1 {
			sep = " "
		}
		if i == 0 && rep.Enhanced != "" {
			l = string(rep.Enhanced) + " " + l
		}
		fmt.Fprintf(w.tr, "S: %d%s%s\n", rep.Code, sep, l)
	}
	return rep, nil
}

// cmd sends line and reads the reply, which must have code want.
func (w *wire) cmd(line string, want int) (smtp.Reply, error) {
	if err := w.send(line + "\r\n"); err != nil {
		return smtp.Reply{}, err
	}
	rep, err := w.reply()
	if err != nil {
		return rep, err
	}
	if rep.Code != want {
		return rep, fmt.Errorf("%s: %s", strings.Fields(line)[0], rep.OneLine())
	}
	return rep, nil
}

// greet reads the greeting and says EHLO, recording the keywords.
func (w *wire) greet(name string) error {
	rep, err := w.reply()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if rep.Code != smtp.CodeReady {
		return fmt.Errorf("greeting: %s", rep.OneLine())
	}
	return w.ehlo(name)
}

func (w *wire) ehlo(name string) error {
	rep, err := w.cmd("EHLO "+name, smtp.CodeOK)
	if err != nil {
		return err
	}
	w.exts = map[string]bool{}
	for _, l := range rep.Lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			w.exts[strings.ToUpper(f[0])] = true
		}
	}
	return nil
}

// upgrade switches the connection to TLS after a 220 to STARTTLS,
// dropping whatever was read ahead, and says EHLO again.
func (w *wire) upgrade(ctx context.Context, cfg *tls.Config, name string) error {
	tc := tls.Client(w.nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake after STARTTLS: %w", err)
	}
	w.nc, w.r = tc, bufio.NewReader(tc)
	fmt.Fprintf(w.tr, "* TLS handshake done: %s\n", tls.VersionName(tc.ConnectionState().Version))
	return w.ehlo(name)
}
