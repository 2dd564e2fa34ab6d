package inbound

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/authres"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// fakeCheck is an authres.Check with a fixed result; it records what it
// was fed.
type fakeCheck struct {
	res     authres.Result
	fed     strings.Builder
	aborted bool
}

func (c *fakeCheck) Write(p []byte) (int, error) { return c.fed.Write(p) }
func (c *fakeCheck) Finish() authres.Result      { return c.res }
func (c *fakeCheck) Abort()                      { c.aborted = true }

type recorded struct{ domain, disposition string }

type fakeReports struct{ got []recorded }

func (f *fakeReports) Record(r authres.Result, disposition string) {
	f.got = append(f.got, recorded{r.DMARC.Domain, disposition})
}

const testAR = "Authentication-Results: mx.example.com;\r\n\tspf=fail smtp.mailfrom=x@bank.example;\r\n\tdkim=none;\r\n\tdmarc=fail header.from=bank.example\r\n"

// failing is a DMARC failure under policy p, sampled or not.
func failing(p string, sampled bool) authres.Result {
	return authres.Result{Header: testAR, SPF: "fail", DMARC: authres.DMARC{Result: "fail", Policy: p, Domain: "bank.example", Sampled: sampled}}
}

// TestVerify: mail on mx gets our Authentication-Results field at the top
// of every copy (above Received, below Return-Path), forged fields with
// our id are removed, and under enforce a sampled DMARC failure is
// refused (p=reject, 550 5.7.1, nothing stored) or quarantined
// (p=quarantine, .Junk; the queue copy still leaves).
func TestVerify(t *testing.T) {
	const received = "Received: from client by mx.example.com; Wed, 2 Dec 2026 01:00:00 +0000\r\n"
	const msg = "Authentication-Results: mx.example.com; spf=pass\r\nAuthentication-Results: other.example; dkim=pass\r\nFrom: x@bank.example\r\nSubject: hi\r\n\r\nbody\r\n"
	const stored = testAR + received + "Authentication-Results: other.example; dkim=pass\r\nFrom: x@bank.example\r\nSubject: hi\r\n\r\nbody\r\n"
	mx := &server.SessionInfo{Role: server.RoleMX, Helo: "client.example", Remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1234}}
	tests := []struct {
		name     string
		session  *server.SessionInfo
		enforce  bool
		res      authres.Result
		rcpts    []string
		code     int    // of Commit
		inbox    string // stored in alice's new/ ("" none)
		junk     string // stored in alice's .Junk/new
		queued   string // the queue copy
		report   []recorded
		verified bool
	}{
		{name: "header: pass", session: mx, res: authres.Result{Header: testAR, DMARC: authres.DMARC{Result: "pass", Domain: "bank.example", Policy: "reject"}},
			rcpts: []string{"alice@example.com"}, inbox: stored, report: []recorded{{"bank.example", "none"}}, verified: true},
		{name: "header: reject failure stored", session: mx, res: failing("reject", true),
			rcpts: []string{"alice@example.com"}, inbox: stored, report: []recorded{{"bank.example", "none"}}, verified: true},
		{name: "enforce: reject", session: mx, enforce: true, res: failing("reject", true),
			rcpts: []string{"alice@example.com", "team@example.com"}, code: 550, report: []recorded{{"bank.example", "reject"}}, verified: true},
		{name: "enforce: reject outside pct", session: mx, enforce: true, res: failing("reject", false),
			rcpts: []string{"alice@example.com"}, inbox: stored, report: []recorded{{"bank.example", "none"}}, verified: true},
		{name: "enforce: quarantine, queue copy still forwarded", session: mx, enforce: true, res: failing("quarantine", true),
			rcpts: []string{"team@example.com"}, junk: stored, queued: stored, report: []recorded{{"bank.example", "quarantine"}}, verified: true},
		{name: "enforce: temperror", session: mx, enforce: true,
			res:   authres.Result{Header: testAR, DMARC: authres.DMARC{Result: "temperror", Domain: "bank.example", Policy: "reject", Sampled: true}},
			rcpts: []string{"alice@example.com"}, inbox: stored, report: []recorded{{"bank.example", "none"}}, verified: true},
		{name: "enforce: no record, no report", session: mx, enforce: true, res: authres.Result{Header: testAR, DMARC: authres.DMARC{Result: "none"}},
			rcpts: []string{"alice@example.com"}, inbox: stored, verified: true},
		{name: "authenticated on mx: not verified", session: &server.SessionInfo{Role: server.RoleMX, AuthUser: "alice@example.com"}, enforce: true,
			res: failing("reject", true), rcpts: []string{"alice@example.com"}, inbox: received + msg},
		{name: "trusted on mx: not verified", session: &server.SessionInfo{Role: server.RoleMX, Trusted: true}, enforce: true,
			res: failing("reject", true), rcpts: []string{"alice@example.com"}, inbox: received + msg},
		{name: "submission: not verified", session: &server.SessionInfo{Role: server.RoleSubmission, AuthUser: "alice@example.com"}, enforce: true,
			res: failing("reject", true), rcpts: []string{"alice@example.com"}, inbox: received + msg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &envRelay{}
			b, mail := newBackend(t, relay)
			check := &fakeCheck{res: tt.res}
			reports := &fakeReports{}
			var began []string
			b.opts.Verify = &Verification{
				Begin: func(_ context.Context, ip netip.Addr, helo string, from smtp.Address) Check {
					began = append(began, ip.String()+" "+helo+" "+from.String())
					return check
				},
				IsOurs:  func(v string) bool { return authres.IsOurs(v, "mx.example.com") },
				Enforce: tt.enforce,
				TmpDir:  t.TempDir(),
			}
			b.opts.DMARCReports = reports
			env := &server.Envelope{ID: "ID9", Session: tt.session, From: addr("x@bank.example")}
			for _, r := range tt.rcpts {
				env.Recipients = append(env.Recipients, addr(r))
			}
			w, err := b.Begin(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, received)
			for _, part := range []string{msg[:30], msg[30:]} {
				io.WriteString(w, part)
			}
			_, err = w.Commit()
			if got := code(err); got != tt.code {
				t.Fatalf("Commit: %v, want code %d", err, tt.code)
			}
			if tt.code == 550 && !strings.Contains(err.Error(), "5.7.1") {
				t.Errorf("reply %q, want 5.7.1", err)
			}
			if got, want := len(began) == 1, tt.verified; got != want {
				t.Fatalf("verified %v, want %v (%q)", got, want, began)
			}
			if tt.verified {
				if want := "192.0.2.7 client.example x@bank.example"; began[0] != want {
					t.Errorf("Begin(%s), want %s", began[0], want)
				}
				if check.fed.String() != msg {
					t.Errorf("the check was fed %q, want the message as received %q", check.fed.String(), msg)
				}
			}
			rp := "Return-Path: <x@bank.example>\r\n"
			checkBox(t, filepath.Join(mail, "example.com", "alice", "new"), rp, tt.inbox)
			checkBox(t, filepath.Join(mail, "example.com", "alice", ".Junk", "new"), rp, tt.junk)
			if tt.queued != "" {
				if len(relay.writers) != 1 || relay.writers[0].data.String() != tt.queued {
					t.Errorf("queue copies %d, want one: %q", len(relay.writers), tt.queued)
				}
			}
			for _, q := range relay.writers {
				if tt.code == 550 && (!slices.Contains(q.steps, "abort") || slices.Contains(q.steps, "publish")) {
					t.Errorf("queue copy on rejection: %v, want aborted", q.steps)
				}
			}
			if !sameRecords(reports.got, tt.report) {
				t.Errorf("reports %v, want %v", reports.got, tt.report)
			}
		})
	}
}

func sameRecords(a, b []recorded) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkBox wants dir to hold one message, prefix+want, or none when want
// is "".
func checkBox(t *testing.T, dir, prefix, want string) {
	t.Helper()
	files, _ := os.ReadDir(dir)
	if want == "" {
		if len(files) != 0 {
			t.Errorf("%s: %d messages, want none", dir, len(files))
		}
		return
	}
	if len(files) != 1 {
		t.Fatalf("%s: %d messages, want 1", dir, len(files))
	}
	got, err := os.ReadFile(filepath.Join(dir, files[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != prefix+want {
		t.Errorf("%s:\n%q\nwant\n%q", dir, got, prefix+want)
	}
}

// TestVerifyLarge: a message beyond the in-memory hold spills to a
// temporary file (gone afterwards) and is stored byte for byte.
func TestVerifyLarge(t *testing.T) {
	b, mail := newBackend(t, nil)
	tmp := t.TempDir()
	b.opts.Verify = &Verification{
		Begin: func(context.Context, netip.Addr, string, smtp.Address) Check {
			return &fakeCheck{res: authres.Result{Header: testAR}}
		},
		IsOurs: func(v string) bool { return authres.IsOurs(v, "mx.example.com") },
		TmpDir: tmp,
	}
	env := &server.Envelope{ID: "ID10", Session: &server.SessionInfo{Role: server.RoleMX}, From: addr("x@bank.example"),
		Recipients: []smtp.Address{addr("alice@example.com")}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 3000) // 240 KB
	io.WriteString(w, "Received: r\r\n")
	for p := body; len(p) > 0; p = p[min(len(p), 32<<10):] {
		io.WriteString(w, p[:min(len(p), 32<<10)])
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	checkBox(t, filepath.Join(mail, "example.com", "alice", "new"), "Return-Path: <x@bank.example>\r\n", testAR+"Received: r\r\n"+body)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestOmit: the methods turned off in [verify] leave the header.
func TestOmit(t *testing.T) {
	tests := []struct {
		omit []string
		want string
	}{
		{nil, testAR},
		{[]string{"dmarc"}, "Authentication-Results: mx.example.com;\r\n\tspf=fail smtp.mailfrom=x@bank.example;\r\n\tdkim=none\r\n"},
		{[]string{"spf", "iprev"}, "Authentication-Results: mx.example.com;\r\n\tdkim=none;\r\n\tdmarc=fail header.from=bank.example\r\n"},
		{[]string{"spf", "dkim", "dmarc"}, "Authentication-Results: mx.example.com; none\r\n"},
	}
	for _, tt := range tests {
		if got := omit(testAR, tt.omit); got != tt.want {
			t.Errorf("omit %v: %q, want %q", tt.omit, got, tt.want)
		}
	}
}

// TestVerifyAbort: a message cut off before the end of DATA stops its
// checks and stores nothing.
func TestVerifyAbort(t *testing.T) {
	relay := &envRelay{}
	b, mail := newBackend(t, relay)
	check := &fakeCheck{}
	b.opts.Verify = &Verification{
		Begin:  func(context.Context, netip.Addr, string, smtp.Address) Check { return check },
		IsOurs: func(string) bool { return false },
	}
	env := &server.Envelope{ID: "ID11", Session: &server.SessionInfo{Role: server.RoleMX}, From: addr("x@bank.example"),
		Recipients: []smtp.Address{addr("team@example.com")}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Received: r\r\n")
	io.WriteString(w, "Subject: cut\r\n\r\nhalf a bo")
	w.Abort()
	if !check.aborted {
		t.Error("the check was not aborted")
	}
	checkBox(t, filepath.Join(mail, "example.com", "alice", "new"), "", "")
	if len(relay.writers) != 1 || !slices.Contains(relay.writers[0].steps, "abort") || relay.writers[0].data.Len() != 0 {
		t.Errorf("queue copy not aborted untouched: %d writers", len(relay.writers))
	}
}
