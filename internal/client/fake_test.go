package client

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"smtpkit/internal/testcert"
	"strings"
	"testing"
	"time"
)

// step is one turn of a scripted server: read exactly the lines in recv
// (all of them before answering, which is what makes pipelining visible),
// optionally read message data up to ".", then write send verbatim and
// optionally start TLS.
type step struct {
	recv []string
	data bool // read dot-terminated data after recv
	// chunks are BDAT commands expected after recv, each "BDAT n [LAST]"
	// followed by n octets; all are read before send (pipelined), and
	// their octets, joined, go to the data channel.
	chunks []string
	send   string // raw reply, "\r\n"-terminated lines
	tls    bool   // after send, run the server side of a TLS handshake
	hangup bool   // after send, close the connection: the script ends here
}

// fake is a scripted SMTP server on loopback serving one connection.
type fake struct {
	t     *testing.T
	ln    net.Listener
	cert  tls.Certificate
	done  chan error
	data  chan string // message data received by data steps, raw
	ready chan struct{}
}

func startFake(t *testing.T, steps []step) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{t: t, ln: ln, cert: selfSigned(t, "mx.test"), done: make(chan error, 1),
		data: make(chan string, 4), ready: make(chan struct{}, len(steps))}
	go func() { f.done <- f.serve(steps) }()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fake) addr() string { return f.ln.Addr().String() }

// wait returns the server's verdict: nil when the client said exactly what
// the script expected.
func (f *fake) wait() error {
	select {
	case err := <-f.done:
		return err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("fake server still running")
	}
}

func (f *fake) serve(steps []step) error {
	nc, err := f.ln.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(nc)
	for i, s := range steps {
		for _, want := range s.recv {
			got, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("step %d: reading %q: %v", i, want, err)
			}
			if got != want+"\r\n" {
				return fmt.Errorf("step %d: got %q, want %q", i, got, want+"\r\n")
			}
		}
		f.ready <- struct{}{}
		if len(s.chunks) > 0 {
			d, err := readChunks(r, s.chunks)
			if err != nil {
				return fmt.Errorf("step %d: chunks: %v", i, err)
			}
			f.data <- d
		}
		if s.data {
			d, err := readData(r)
			if err != nil {
				return fmt.Errorf("step %d: data: %v", i, err)
			}
			f.data <- d
		}
		if _, err := nc.Write([]byte(s.send)); err != nil {
			return fmt.Errorf("step %d: write: %v", i, err)
		}
		if s.hangup {
			return nil
		}
		if s.tls {
			if r.Buffered() > 0 {
				return fmt.Errorf("step %d: client sent data before the handshake", i)
			}
			tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{f.cert}})
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("step %d: handshake: %v", i, err)
			}
			nc, r = tc, bufio.NewReader(tc)
		}
	}
	// The client must not send anything more once the script is over.
	if extra, err := r.ReadString('\n'); err == nil {
		return fmt.Errorf("after the script: unexpected %q", extra)
	}
	return nil
}

// readData reads raw message data through the line "."; it returns the
// octets as sent, terminator included.
func readData(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		b.WriteString(l)
		if l == ".\r\n" {
			return b.String(), nil
		}
	}
}

// readChunks reads the BDAT commands in want with their octets.
func readChunks(r *bufio.Reader, want []string) (string, error) {
	var b strings.Builder
	for _, w := range want {
		got, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if got != w+"\r\n" {
			return b.String(), fmt.Errorf("got %q, want %q", got, w+"\r\n")
		}
		var n int
		if _, err := fmt.Sscanf(w, "BDAT %d", &n); err != nil {
			return b.String(), err
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return b.String(), err
		}
		b.Write(buf)
	}
	return b.String(), nil
}

// testOpts are short timeouts: a client that waits for a reply the script
// withholds fails quickly instead of hanging the test.
func testOpts(transcript *strings.Builder) Options {
	o := Options{LocalName: "client.test", Timeouts: Timeouts{
		Connect: 5 * time.Second, Greeting: 5 * time.Second, Mail: 5 * time.Second,
		Rcpt: 5 * time.Second, DataInit: 5 * time.Second, DataBlock: 5 * time.Second,
		DataEnd: 5 * time.Second, Command: 5 * time.Second,
	}}
	if transcript != nil {
		o.Transcript = transcript
	}
	return o
}

// Common script pieces.
const greeting = "220 mx.test ESMTP ready\r\n"

func ehloStep(exts ...string) step {
	send := "250"
	if len(exts) > 0 {
		send += "-mx.test hello\r\n"
		for i, e := range exts {
			sep := "-"
			if i == len(exts)-1 {
				sep = " "
			}
			send += "250" + sep + e + "\r\n"
		}
	} else {
		send += " mx.test hello\r\n"
	}
	return step{recv: []string{"EHLO client.test"}, send: send}
}

func quitStep() step { return step{recv: []string{"QUIT"}, send: "221 2.0.0 bye\r\n"} }

// selfSigned makes a throwaway certificate for host.
func selfSigned(t *testing.T, host string) tls.Certificate { return testcert.New(t, host) }

// pool trusts cert.
func pool(cert tls.Certificate) *x509.CertPool { return testcert.Pool(cert) }
