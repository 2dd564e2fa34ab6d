package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"smtpkit/internal/authres"
	"smtpkit/internal/milter"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// scripted is a milter served by go-milter's server side, answering as
// the test says and recording the aborts.
type scripted struct {
	gomilter.NoOpMilter
	connect, helo gomilter.Response
	rcpt          func(string) gomilter.Response
	header        gomilter.Response
	eom           func(*gomilter.Modifier) gomilter.Response

	mu        sync.Mutex
	aborted   int
	bodyBytes int
}

func (s *scripted) BodyChunk(chunk []byte, _ *gomilter.Modifier) (gomilter.Response, error) {
	s.mu.Lock()
	s.bodyBytes += len(chunk)
	s.mu.Unlock()
	return gomilter.RespContinue, nil
}

func (s *scripted) Connect(string, string, uint16, net.IP, *gomilter.Modifier) (gomilter.Response, error) {
	if s.connect != nil {
		return s.connect, nil
	}
	return gomilter.RespContinue, nil
}
func (s *scripted) Helo(string, *gomilter.Modifier) (gomilter.Response, error) {
	if s.helo != nil {
		return s.helo, nil
	}
	return gomilter.RespContinue, nil
}
func (s *scripted) RcptTo(r string, _ *gomilter.Modifier) (gomilter.Response, error) {
	if strings.Contains(r, "crash+") {
		return nil, errors.New("milter crashed") // go-milter drops the connection
	}
	if s.rcpt != nil {
		return s.rcpt(r), nil
	}
	return gomilter.RespContinue, nil
}
func (s *scripted) Header(string, string, *gomilter.Modifier) (gomilter.Response, error) {
	if s.header != nil {
		return s.header, nil
	}
	return gomilter.RespContinue, nil
}
func (s *scripted) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (s *scripted) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	if s.eom != nil {
		return s.eom(m), nil
	}
	return gomilter.RespAccept, nil
}
func (s *scripted) Abort(*gomilter.Modifier) error {
	s.mu.Lock()
	s.aborted++
	s.mu.Unlock()
	return nil
}

func serveMilter(t *testing.T, m gomilter.Milter) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.15.5.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return m },
		Actions: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt | gomilter.OptQuarantine}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// actionLog records Events.MilterAction.
type actionLog struct {
	noEvents
	mu  sync.Mutex
	got []string
}

func (a *actionLog) MilterAction(m, action string) {
	a.mu.Lock()
	a.got = append(a.got, m+":"+action)
	a.mu.Unlock()
}

// stored is the messages in box's folder ("new", or ".Junk/new").
func stored(t *testing.T, mail, box, folder string) []string {
	t.Helper()
	local, domain, _ := strings.Cut(box, "@")
	dir := filepath.Join(mail, domain, local, folder)
	files, _ := os.ReadDir(dir)
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		out = append(out, string(b))
	}
	return out
}

const milterMsg = "Subject: hi\r\nX-Old: 1\r\n\r\nbody\r\n"

// TestMilter runs whole sessions through the Backend with one scripted
// milter: its answers at each stage become the replies, its changes are
// in every stored copy (the Maildir one and the queue's), a discard is
// 250 with nothing stored, a quarantine puts the local copy in Junk.
func TestMilter(t *testing.T) {
	tests := []struct {
		name    string
		m       *scripted
		down    string // "tempfail" or "accept": no milter listening
		rcpts   []string
		rcptErr map[string]int // RCPT replies other than 0
		mailErr int
		commit  int    // Commit's reply code, 0 = stored
		want    string // alice's stored copy, "" = none
		queued  string // the queue copy, "" = none
		junk    bool   // alice's copy is in .Junk
		actions string
	}{
		{name: "headers changed in every copy", rcpts: []string{"alice@example.com", "carol@remote.example"},
			m: &scripted{eom: func(m *gomilter.Modifier) gomilter.Response {
				m.AddHeader("X-Spamd-Result", "default: False [0.10 / 15.00];\n\tNONE(0.00)[]")
				m.ChangeHeader(1, "X-Old", "")
				m.InsertHeader(0, "X-Top", "first")
				return gomilter.RespAccept
			}},
			want:    "Return-Path: <alice@example.com>\r\nX-Top: first\r\nSubject: hi\r\nX-Spamd-Result: default: False [0.10 / 15.00];\r\n\tNONE(0.00)[]\r\n\r\nbody\r\n",
			queued:  "X-Top: first\r\nSubject: hi\r\nX-Spamd-Result: default: False [0.10 / 15.00];\r\n\tNONE(0.00)[]\r\n\r\nbody\r\n",
			actions: "t:accept"},
		{name: "rejected at a header with the milter's reply", rcpts: []string{"alice@example.com"},
			m: &scripted{header: gomilter.NewResponseStr('y', "554 5.7.1 Gtube pattern")}, commit: 554, actions: "t:reject"},
		{name: "one recipient refused", rcpts: []string{"bob@example.com", "alice@example.com"}, rcptErr: map[string]int{"bob@example.com": 550},
			m: &scripted{rcpt: func(r string) gomilter.Response {
				if strings.Contains(r, "bob") {
					return gomilter.RespReject
				}
				return gomilter.RespContinue
			}}, want: "Return-Path: <alice@example.com>\r\n" + milterMsg, actions: "t:reject,t:accept"},
		{name: "discarded: 250, nothing stored", rcpts: []string{"alice@example.com"},
			m:       &scripted{eom: func(*gomilter.Modifier) gomilter.Response { return gomilter.RespDiscard }},
			actions: "t:discard"},
		{name: "quarantined into Junk", rcpts: []string{"alice@example.com"},
			m:    &scripted{eom: func(m *gomilter.Modifier) gomilter.Response { m.Quarantine("suspicious"); return gomilter.RespAccept }},
			want: "Return-Path: <alice@example.com>\r\n" + milterMsg, junk: true, actions: "t:accept,t:quarantine"},
		{name: "recipients changed", rcpts: []string{"alice@example.com"},
			m: &scripted{eom: func(m *gomilter.Modifier) gomilter.Response {
				m.AddRecipient("carol@remote.example")
				m.AddRecipient("nobody@example.com") // does not resolve: left out
				return gomilter.RespAccept
			}},
			want: "Return-Path: <alice@example.com>\r\n" + milterMsg, queued: milterMsg, actions: "t:accept"},
		{name: "down, tempfail", down: "tempfail", rcpts: []string{"alice@example.com"}, mailErr: 451, actions: "t:failed"},
		{name: "down, accept", down: "accept", rcpts: []string{"alice@example.com"},
			want: "Return-Path: <alice@example.com>\r\n" + milterMsg, actions: "t:failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &memRelay{}
			b, mail := newBackend(t, relay)
			events := &actionLog{}
			b.opts.Events = events
			var address string
			if tt.down != "" {
				ln, _ := net.Listen("tcp", "127.15.5.1:0")
				address = ln.Addr().String()
				ln.Close()
			} else {
				address = serveMilter(t, tt.m)
			}
			f := milter.New(milter.Options{Name: "t", Network: "tcp", Address: address, Timeout: 5 * time.Second, Accept: tt.down == "accept"})
			b.opts.Milters = map[string][]*milter.Filter{"mx": {f}}
			ctx := context.Background()
			s := &server.SessionInfo{ID: "S1", Listener: "mx", Role: server.RoleSubmission, AuthUser: "alice@example.com",
				Remote: &net.TCPAddr{IP: net.ParseIP("127.15.5.9"), Port: 2525}, Helo: "client.example"}
			if err := b.Connect(ctx, s); err != nil {
				t.Fatal(err)
			}
			defer b.Disconnect(s)
			if err := b.Hello(ctx, s); err != nil {
				t.Fatal(err)
			}
			from := addr("alice@example.com")
			err := b.Mail(ctx, s, from, []string{"SIZE=100"})
			if code(err) != tt.mailErr {
				t.Fatalf("Mail = %v, want %d", err, tt.mailErr)
			}
			if err != nil {
				checkActions(t, events, tt.actions)
				return
			}
			env := &server.Envelope{ID: "E1", Session: s, From: from}
			for _, r := range tt.rcpts {
				if got := code(b.Recipient(ctx, s, from, addr(r))); got != tt.rcptErr[r] {
					t.Fatalf("RCPT %s = %d, want %d", r, got, tt.rcptErr[r])
				} else if got == 0 {
					env.Recipients = append(env.Recipients, addr(r))
				}
			}
			w, err := b.Begin(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, milterMsg)
			if _, err := w.Commit(); code(err) != tt.commit {
				t.Fatalf("Commit = %v, want %d", err, tt.commit)
			}
			folder := "new"
			if tt.junk {
				folder = ".Junk/new"
			}
			got := stored(t, mail, "alice@example.com", folder)
			if tt.want == "" && len(got) > 0 || tt.want != "" && (len(got) != 1 || got[0] != tt.want) {
				t.Errorf("alice's %s: %q\nwant %q", folder, got, tt.want)
			}
			if relay.data.String() != tt.queued {
				t.Errorf("queued %q\nwant %q", relay.data.String(), tt.queued)
			}
			checkActions(t, events, tt.actions)
		})
	}
}

func checkActions(t *testing.T, events *actionLog, want string) {
	t.Helper()
	events.mu.Lock()
	defer events.mu.Unlock()
	if got := strings.Join(events.got, ","); got != want {
		t.Errorf("counted %q, want %q", got, want)
	}
}

// TestMilterReset: a dropped transaction (RSET, a refused DATA) is an
// abort for the milter, and the next one starts afresh.
func TestMilterReset(t *testing.T) {
	m := &scripted{}
	b, _ := newBackend(t, nil)
	f := milter.New(milter.Options{Name: "t", Network: "tcp", Address: serveMilter(t, m), Timeout: 5 * time.Second})
	b.opts.Milters = map[string][]*milter.Filter{"mx": {f}}
	ctx := context.Background()
	s := &server.SessionInfo{ID: "S1", Listener: "mx", Role: server.RoleMX, Remote: &net.TCPAddr{IP: net.ParseIP("127.15.5.9"), Port: 25}}
	if err := b.Connect(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer b.Disconnect(s)
	for i := range 3 {
		if err := b.Mail(ctx, s, addr("x@remote.example"), nil); err != nil {
			t.Fatal(i, err)
		}
		if err := b.Recipient(ctx, s, addr("x@remote.example"), addr("alice@example.com")); err != nil {
			t.Fatal(i, err)
		}
		b.Reset(s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		n := m.aborted
		m.mu.Unlock()
		if n == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("milter saw %d aborts, want 3", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMilterWithVerify: with [verify] on too, the verification gets the
// message as it arrived (without our Received field, which the server
// writes first) and decides first: a DMARC p=reject failure is refused
// without the milter seeing the message (it gets an abort); otherwise
// the milter gets it with our Authentication-Results field on top, and
// the stored copy has, top down, our Authentication-Results, our
// Received, and the milter's field last — in Junk for p=quarantine.
func TestMilterWithVerify(t *testing.T) {
	const received = "Received: from client by mx.example.com\r\n"
	const filtered = "Subject: hi\r\nX-Old: 1\r\nX-Spam: No\r\n\r\nbody\r\n"
	for _, tt := range []struct {
		name   string
		res    authres.Result
		commit int
		folder string // where alice's copy is, "" = nowhere
		eoms   int    // messages the milter saw
	}{
		{name: "pass", res: authres.Result{Header: testAR}, folder: "new", eoms: 1},
		{name: "dmarc reject first", res: failing("reject", true), commit: 550, eoms: 0},
		{name: "dmarc quarantine", res: failing("quarantine", true), folder: ".Junk/new", eoms: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var eoms atomic.Int32
			m := &scripted{eom: func(mod *gomilter.Modifier) gomilter.Response {
				eoms.Add(1)
				mod.AddHeader("X-Spam", "No")
				return gomilter.RespAccept
			}}
			b, mail := newBackend(t, nil)
			check := &fakeCheck{res: tt.res}
			b.opts.Verify = &Verification{
				Begin:   func(context.Context, netip.Addr, string, smtp.Address) Check { return check },
				IsOurs:  func(string) bool { return false },
				Enforce: true,
			}
			f := milter.New(milter.Options{Name: "t", Network: "tcp", Address: serveMilter(t, m), Timeout: 5 * time.Second})
			b.opts.Milters = map[string][]*milter.Filter{"mx": {f}}
			ctx := context.Background()
			s := &server.SessionInfo{ID: "S1", Listener: "mx", Role: server.RoleMX, Remote: &net.TCPAddr{IP: net.ParseIP("127.15.5.9"), Port: 25}}
			if err := b.Connect(ctx, s); err != nil {
				t.Fatal(err)
			}
			from := addr("x@remote.example")
			if err := b.Mail(ctx, s, from, nil); err != nil {
				t.Fatal(err)
			}
			if err := b.Recipient(ctx, s, from, addr("alice@example.com")); err != nil {
				t.Fatal(err)
			}
			w, err := b.Begin(ctx, &server.Envelope{ID: "E1", Session: s, From: from, Recipients: []smtp.Address{addr("alice@example.com")}})
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, received) // the server's first Write
			io.WriteString(w, milterMsg)
			if _, err := w.Commit(); code(err) != tt.commit {
				t.Fatalf("Commit = %v, want %d", err, tt.commit)
			}
			b.Disconnect(s) // the milter's session ends: its counts are final
			if check.fed.String() != milterMsg {
				t.Errorf("verified %q\nwant     %q", check.fed.String(), milterMsg)
			}
			waitUntilTest(t, func() bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				return int(eoms.Load()) == tt.eoms && (tt.eoms == 1 || m.aborted >= 1)
			})
			for _, folder := range []string{"new", ".Junk/new"} {
				got := stored(t, mail, "alice@example.com", folder)
				want := []string(nil)
				if folder == tt.folder {
					want = []string{"Return-Path: <x@remote.example>\r\n" + testAR + received + filtered}
				}
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: %q\nwant %q", folder, got, want)
				}
			}
		})
	}
}

// waitUntilTest polls cond for up to 5 seconds.
func waitUntilTest(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// TestMilterSessionStages: a reject at the connect stage is 554 in place
// of the greeting, with the milter's text; a tempfail there lets the
// session greet and answers each MAIL 451 4.7.1; a HELO-stage refusal is
// the reply to HELO.
func TestMilterSessionStages(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		m                       *scripted
		connect, hello, mailErr string
	}{
		{name: "connect reject", m: &scripted{connect: gomilter.NewResponseStr('y', "550 5.7.1 Go away")}, connect: "554 5.7.1 Go away"},
		{name: "connect tempfail", m: &scripted{connect: gomilter.RespTempFail}, mailErr: "451 4.7.1 Service unavailable - try again later"},
		{name: "helo reject", m: &scripted{helo: gomilter.RespReject}, hello: "550 5.7.1 Command rejected"},
		{name: "accepted at connect: not asked again", m: &scripted{connect: gomilter.RespAccept, helo: gomilter.RespReject}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newBackend(t, nil)
			f := milter.New(milter.Options{Name: "t", Network: "tcp", Address: serveMilter(t, tt.m), Timeout: 5 * time.Second})
			b.opts.Milters = map[string][]*milter.Filter{"mx": {f}}
			ctx := context.Background()
			s := &server.SessionInfo{ID: "S1", Listener: "mx", Role: server.RoleMX, Helo: "client.example",
				Remote: &net.TCPAddr{IP: net.ParseIP("127.15.5.9"), Port: 25}}
			defer b.Disconnect(s)
			reply := func(err error) string {
				if err == nil {
					return ""
				}
				return err.(*smtp.Error).Reply.OneLine()
			}
			if got := reply(b.Connect(ctx, s)); got != tt.connect {
				t.Fatalf("Connect: %q, want %q", got, tt.connect)
			}
			if tt.connect != "" {
				return
			}
			if got := reply(b.Hello(ctx, s)); got != tt.hello {
				t.Fatalf("Hello: %q, want %q", got, tt.hello)
			}
			if tt.hello != "" {
				return
			}
			for range 2 {
				if got := reply(b.Mail(ctx, s, addr("x@remote.example"), nil)); got != tt.mailErr {
					t.Fatalf("Mail: %q, want %q", got, tt.mailErr)
				}
				b.Reset(s)
			}
		})
	}
}

// TestMilterFailsMidTransaction: a milter that fails at RCPT under
// tempfail refuses that recipient 451 4.7.1, and DATA for the recipients
// accepted before is refused 451 4.7.1 too (the message could not be
// filtered); under accept the message goes through unfiltered.
func TestMilterFailsMidTransaction(t *testing.T) {
	for _, accept := range []bool{false, true} {
		t.Run(fmt.Sprint("accept=", accept), func(t *testing.T) {
			b, _ := newBackend(t, nil)
			f := milter.New(milter.Options{Name: "t", Network: "tcp", Address: serveMilter(t, &scripted{}), Timeout: 5 * time.Second, Accept: accept})
			b.opts.Milters = map[string][]*milter.Filter{"mx": {f}}
			ctx := context.Background()
			s := &server.SessionInfo{ID: "S1", Listener: "mx", Role: server.RoleMX, Remote: &net.TCPAddr{IP: net.ParseIP("127.15.5.9"), Port: 25}}
			if err := b.Connect(ctx, s); err != nil {
				t.Fatal(err)
			}
			defer b.Disconnect(s)
			from := addr("x@remote.example")
			if err := b.Mail(ctx, s, from, nil); err != nil {
				t.Fatal(err)
			}
			if err := b.Recipient(ctx, s, from, addr("alice@example.com")); err != nil {
				t.Fatal(err)
			}
			want := 451
			if accept {
				want = 0
			}
			if got := code(b.Recipient(ctx, s, from, addr("bob+crash+@example.com"))); got != want {
				t.Fatalf("RCPT to the crashing recipient: %d, want %d", got, want)
			}
			w, err := b.Begin(ctx, &server.Envelope{ID: "E1", Session: s, From: from, Recipients: []smtp.Address{addr("alice@example.com")}})
			if code(err) != want {
				t.Fatalf("DATA: %v, want %d", err, want)
			}
			if w != nil {
				w.Abort()
			}
		})
	}
}

// TestMilterLargeMessage: a message larger than the in-memory hold
// spills into HoldDir, reaches the milter whole in body chunks, and is
// stored whole with the milter's field.
func TestMilterLargeMessage(t *testing.T) {
	m := &scripted{eom: func(mod *gomilter.Modifier) gomilter.Response {
		mod.AddHeader("X-Scanned", "yes")
		return gomilter.RespAccept
	}}
	b, mail := newBackend(t, nil)
	b.opts.HoldDir = t.TempDir()
	f := milter.New(milter.Options{Name: "t", Network: "tcp", Address: serveMilter(t, m), Timeout: 5 * time.Second})
	b.opts.Milters = map[string][]*milter.Filter{"mx": {f}}
	ctx := context.Background()
	s := &server.SessionInfo{ID: "S1", Listener: "mx", Role: server.RoleMX, Remote: &net.TCPAddr{IP: net.ParseIP("127.15.5.9"), Port: 25}}
	if err := b.Connect(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer b.Disconnect(s)
	from := addr("x@remote.example")
	if err := b.Mail(ctx, s, from, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Recipient(ctx, s, from, addr("alice@example.com")); err != nil {
		t.Fatal(err)
	}
	w, err := b.Begin(ctx, &server.Envelope{ID: "E1", Session: s, From: from, Recipients: []smtp.Address{addr("alice@example.com")}})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 3000) // 240,000 octets: four body chunks
	io.WriteString(w, "Subject: big\r\n\r\n")
	for i := 0; i < len(body); i += 1000 {
		io.WriteString(w, body[i:min(i+1000, len(body))])
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got := stored(t, mail, "alice@example.com", "new")
	want := "Return-Path: <x@remote.example>\r\nSubject: big\r\nX-Scanned: yes\r\n\r\n" + body
	if len(got) != 1 || got[0] != want {
		t.Fatalf("stored %d messages; first %d octets, want %d", len(got), len(strings.Join(got, "")), len(want))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bodyBytes != len(body) {
		t.Errorf("milter got %d body octets, want %d", m.bodyBytes, len(body))
	}
}
