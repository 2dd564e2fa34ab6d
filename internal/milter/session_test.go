package milter

import (
	"bytes"
	"net"
	"net/netip"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// fake is a scripted milter served by go-milter's own server side
// (protocol version 2: the client downgrades, milter.go).
type fake struct {
	gomilter.NoOpMilter
	mu      sync.Mutex
	seen    []string // stages and what they carried
	macros  map[string]string
	mail    gomilter.Response
	rcpt    func(string) gomilter.Response
	header  gomilter.Response
	eom     func(m *gomilter.Modifier) gomilter.Response
	aborted int
}

func (f *fake) log(s string) { f.mu.Lock(); f.seen = append(f.seen, s); f.mu.Unlock() }

func (f *fake) Connect(host, family string, port uint16, addr net.IP, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("connect " + host + " " + family + " " + addr.String())
	return gomilter.RespContinue, nil
}
func (f *fake) Helo(name string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("helo " + name)
	return gomilter.RespContinue, nil
}
func (f *fake) MailFrom(from string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("mail " + from + " auth=" + m.Macros["{auth_authen}"])
	if f.mail != nil {
		return f.mail, nil
	}
	return gomilter.RespContinue, nil
}
func (f *fake) RcptTo(rcpt string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("rcpt " + rcpt)
	if f.rcpt != nil {
		return f.rcpt(rcpt), nil
	}
	return gomilter.RespContinue, nil
}
func (f *fake) Header(name, value string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("header " + name + "=" + value)
	if f.header != nil {
		return f.header, nil
	}
	return gomilter.RespContinue, nil
}
func (f *fake) Headers(h textproto.MIMEHeader, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("eoh")
	return gomilter.RespContinue, nil
}
func (f *fake) BodyChunk(chunk []byte, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("body " + string(chunk))
	return gomilter.RespContinue, nil
}
func (f *fake) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("eom i=" + m.Macros["i"])
	if f.eom != nil {
		return f.eom(m), nil
	}
	return gomilter.RespAccept, nil
}
func (f *fake) Abort(m *gomilter.Modifier) error {
	f.mu.Lock()
	f.aborted++
	f.mu.Unlock()
	return nil
}

// serve runs m on a loopback port of the test range; it stops with the test.
func serve(t *testing.T, m *fake) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.15.5.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{
		NewMilter: func() gomilter.Milter { return m },
		Actions:   gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt | gomilter.OptChangeBody | gomilter.OptQuarantine,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

const testMsg = "Received: from client\r\n\tby us\r\nSubject: test\r\n\r\nhello\r\n"

var client = Client{Addr: netip.MustParseAddrPort("127.15.5.9:4321"), Listener: "mx"}

// transaction runs one whole session and returns the verdicts of MAIL,
// each RCPT and the message.
func transaction(f *Filter, rcpts ...string) (verdicts []Verdict, e *Edits) {
	s, v := f.Open(client)
	defer s.Close()
	verdicts = append(verdicts, v, s.Helo("client.example", nil), s.Mail("a@example.com", []string{"SIZE=100"}, "alice"))
	for _, r := range rcpts {
		verdicts = append(verdicts, s.Rcpt(r))
	}
	v, e = s.Message(strings.NewReader(testMsg), "MSGID")
	return append(verdicts, v), e
}

func actions(vs []Verdict) string {
	var b []string
	for _, v := range vs {
		s := v.Action.String()
		if v.Refused() {
			s += " " + v.Reply.OneLine()
		}
		b = append(b, s)
	}
	return strings.Join(b, ", ")
}

func TestSession(t *testing.T) {
	tests := []struct {
		name string
		fake *fake
		want string // actions of connect, helo, mail, rcpts…, message
		seen []string
		edit func(t *testing.T, e *Edits)
	}{
		{name: "clean", fake: &fake{}, want: "continue, continue, continue, continue, accept",
			seen: []string{"connect [127.15.5.9] tcp4 127.15.5.9", "helo client.example", "mail a@example.com auth=alice",
				"rcpt b@example.com", "header Received=from client\r\n\tby us", "header Subject=test", "eoh", "body hello\r\n", "eom i=MSGID"}},
		{name: "reject at mail", fake: &fake{mail: gomilter.RespReject},
			want: "continue, continue, reject 550 5.7.1 Command rejected, accept, accept"},
		{name: "one recipient tempfailed", fake: &fake{rcpt: func(r string) gomilter.Response {
			if strings.HasPrefix(r, "bad") {
				return gomilter.RespTempFail
			}
			return gomilter.RespContinue
		}}, want: "continue, continue, continue, tempfail 451 4.7.1 Service unavailable - try again later, continue, accept"},
		{name: "reply code at header", fake: &fake{header: gomilter.NewResponseStr('y', "554 5.7.1 Gtube pattern")},
			want: "continue, continue, continue, continue, reject 554 5.7.1 Gtube pattern"},
		{name: "discard at end", fake: &fake{eom: func(*gomilter.Modifier) gomilter.Response { return gomilter.RespDiscard }},
			want: "continue, continue, continue, continue, discard"},
		{name: "modifications", fake: &fake{eom: func(m *gomilter.Modifier) gomilter.Response {
			m.AddHeader("X-Spam", "Yes")
			m.ChangeHeader(1, "Subject", "[SPAM] test")
			m.InsertHeader(0, "X-Top", "1")
			m.AddRecipient("c@example.com")
			m.DeleteRecipient("b@example.com")
			m.Quarantine("looks bad")
			m.ReplaceBody([]byte("new\nbody\n"))
			return gomilter.RespAccept
		}}, want: "continue, continue, continue, continue, accept",
			edit: func(t *testing.T, e *Edits) {
				var out bytes.Buffer
				e.Apply(strings.NewReader(testMsg), &out)
				want := "X-Top: 1\r\nReceived: from client\r\n\tby us\r\nSubject: [SPAM] test\r\nX-Spam: Yes\r\n\r\nnew\r\nbody\r\n"
				if out.String() != want {
					t.Errorf("message\n%q\nwant\n%q", out.String(), want)
				}
				if strings.Join(e.AddRcpt, ",") != "c@example.com" || strings.Join(e.DelRcpt, ",") != "b@example.com" ||
					e.Quarantine != "looks bad" || !e.Envelope() {
					t.Errorf("edits %+v", e)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(Options{Name: "fake", Network: "tcp", Address: serve(t, tt.fake), Timeout: 5 * time.Second, Hostname: "mx.test"})
			rcpts := []string{"b@example.com"}
			if strings.Contains(tt.name, "recipient") {
				rcpts = []string{"bad@example.com", "b@example.com"}
			}
			vs, e := transaction(f, rcpts...)
			if got := actions(vs); got != tt.want {
				t.Errorf("verdicts %s\nwant     %s", got, tt.want)
			}
			if tt.seen != nil {
				tt.fake.mu.Lock()
				if got := strings.Join(tt.fake.seen, "|"); got != strings.Join(tt.seen, "|") {
					t.Errorf("milter saw %q\nwant %q", tt.fake.seen, tt.seen)
				}
				tt.fake.mu.Unlock()
			}
			if tt.edit != nil {
				tt.edit(t, e)
			}
		})
	}
}

// TestDown: a milter that is not there, or that does not answer in
// time, gets its default action: tempfail at every stage, or accept.
func TestDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.15.5.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := ln.Addr().String() // accepts (backlog) and never answers
	defer ln.Close()
	closed, _ := net.Listen("tcp", "127.15.5.1:0")
	gone := closed.Addr().String()
	closed.Close()
	for _, tt := range []struct {
		name, addr string
		accept     bool
		want       string
	}{
		{"refused, tempfail", gone, false, "tempfail 451 4.7.1 Service unavailable - try again later, accept, tempfail 451 4.7.1 Service unavailable - try again later, tempfail 451 4.7.1 Service unavailable - try again later, tempfail 451 4.7.1 Service unavailable - try again later"},
		{"refused, accept", gone, true, "accept, accept, accept, accept, accept"},
		{"silent, tempfail", silent, false, "tempfail 451 4.7.1 Service unavailable - try again later, accept, tempfail 451 4.7.1 Service unavailable - try again later, tempfail 451 4.7.1 Service unavailable - try again later, tempfail 451 4.7.1 Service unavailable - try again later"},
		{"silent, accept", silent, true, "accept, accept, accept, accept, accept"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := New(Options{Name: "down", Network: "tcp", Address: tt.addr, Timeout: 200 * time.Millisecond, Accept: tt.accept})
			vs, _ := transaction(f, "b@example.com")
			if got := actions(vs); got != tt.want {
				t.Errorf("verdicts %s\nwant     %s", got, tt.want)
			}
			if vs[0].Err == nil {
				t.Error("connect verdict carries no error")
			}
		})
	}
}

// TestUnixSocket: a milter on a unix socket ("unix:/path").
func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "milter.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	m := &fake{}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return m }}
	go srv.Serve(ln)
	defer srv.Close()
	f := New(Options{Name: "unix", Network: "unix", Address: path, Timeout: 5 * time.Second})
	vs, _ := transaction(f, "b@example.com")
	if got := actions(vs); got != "continue, continue, continue, continue, accept" {
		t.Errorf("verdicts %s", got)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) == 0 || !strings.HasPrefix(m.seen[0], "connect [127.15.5.9] tcp4 127.15.5.9") {
		t.Errorf("milter saw %q", m.seen)
	}
}
