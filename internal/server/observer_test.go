package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// recorder is an Observer that keeps every event as a string.
type recorder struct {
	mu      sync.Mutex
	events  []string
	changed chan struct{} // signalled (without blocking) on every event
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) ConnectionAccepted(l string)        { r.add("accept %s", l) }
func (r *recorder) ConnectionRefused(l, why string)    { r.add("refuse %s %s", l, why) }
func (r *recorder) TLSEstablished(l string, v uint16)  { r.add("tls %s %s", l, tls.VersionName(v)) }
func (r *recorder) TLSFailed(l string)                 { r.add("tlsfail %s", l) }
func (r *recorder) AuthResult(l, mech string, ok bool) { r.add("auth %s %s %v", l, mech, ok) }
func (r *recorder) MessageRefused(l, why string)       { r.add("msgrefused %s %s", l, why) }
func (r *recorder) RecipientRefused(l, why string)     { r.add("rcptrefused %s %s", l, why) }
func (r *recorder) EarlyTalker(l string)               { r.add("earlytalker %s", l) }
func (r *recorder) MessageAccepted(l string, size int64, tls bool, d time.Duration) {
	if d < 0 {
		r.add("negative duration %v", d)
	}
	r.add("msg %s %d %v", l, size, tls)
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor waits (bounded) until every wanted event has been recorded, as
// many times as it is listed.
func (r *recorder) waitFor(t *testing.T, want ...string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		got := r.snapshot()
		missing := slices.Clone(want)
		for _, e := range got {
			if i := slices.Index(missing, e); i >= 0 {
				missing = slices.Delete(missing, i, i+1)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("events %q not seen; got %q", missing, got)
		}
	}
}

// startObserved runs a server with rec as its Observer.
func startObserved(t *testing.T, rec Observer, limits Limits, ls ...Listener) []string {
	t.Helper()
	return startServerWith(t, rec, limits, ls...).addrs
}

func TestObserverMessages(t *testing.T) {
	rec := newRecorder()
	addr := startObserved(t, rec, Limits{MessageSize: 3000}, Listener{Name: "mx", Role: RoleMX, TLS: TLSNone})[0]
	c := dial(t, addr)
	c.cmd("EHLO c", "250")
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1")
	c.cmd("RCPT TO:<x@elsewhere.example>", "550 5.7.1")
	c.cmd("RCPT TO:<a%b@elsewhere.example>", "550 5.7.1")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: s\r\n\r\nbody\r\n.", "250")
	rec.waitFor(t, "accept mx", "rcptrefused mx unknown_user", "rcptrefused mx relay", "rcptrefused mx relay")
	got := rec.snapshot()
	i := slices.IndexFunc(got, func(e string) bool { return strings.HasPrefix(e, "msg mx ") })
	if i < 0 || !strings.HasSuffix(got[i], " false") {
		t.Fatalf("no plaintext message accepted event: %q", got)
	}

	refused := []struct{ data, reply, event string }{
		{"Subject: s\r\n\r\nbare\nLF\r\n.", "500 5.5.2", "msgrefused mx smuggling"},
		{"Subject: s\r\n\r\n" + strings.Repeat("x", 1500) + "\r\n.", "500 5.5.2", "msgrefused mx line_too_long"},
		{strings.Repeat("0123456789\r\n", 300) + ".", "552 5.3.4", "msgrefused mx size"},
	}
	for _, tt := range refused {
		c.cmd("MAIL FROM:<a@b.example>", "250")
		c.cmd("RCPT TO:<alice@example.com>", "250")
		c.cmd("DATA", "354")
		c.cmd(tt.data, tt.reply)
		rec.waitFor(t, tt.event)
	}
	for _, e := range rec.snapshot() {
		if strings.HasPrefix(e, "negative") {
			t.Error(e)
		}
	}
}

func TestObserverTLSAndAuth(t *testing.T) {
	rec := newRecorder()
	addrs := startObserved(t, rec, Limits{},
		Listener{Name: "subs", Role: RoleSubmissions, TLS: TLSImplicit, Auth: true},
		Listener{Name: "mx", Role: RoleMX, TLS: TLSOpportunistic})
	c := tlsDial(t, addrs[0])
	c.cmd("EHLO c", "250")
	c.cmd("AUTH PLAIN "+b64("\x00alice@example.com\x00nope"), "535")
	c.cmd("AUTH PLAIN "+b64("\x00alice@example.com\x00secret"), "235")
	rec.waitFor(t, "accept subs", "tls subs TLS 1.3", "auth subs PLAIN false", "auth subs PLAIN true")

	m := dial(t, addrs[1])
	m.cmd("EHLO c", "250")
	m.startTLS()
	m.cmd("EHLO c", "250")
	m.cmd("MAIL FROM:<a@b.example>", "250")
	m.cmd("RCPT TO:<alice@example.com>", "250")
	m.cmd("DATA", "354")
	m.cmd("\r\nbody\r\n.", "250")
	rec.waitFor(t, "tls mx TLS 1.3")
	if !slices.ContainsFunc(rec.snapshot(), func(e string) bool { return strings.HasPrefix(e, "msg mx ") && strings.HasSuffix(e, " true") }) {
		t.Errorf("no TLS message event: %q", rec.snapshot())
	}

	raw := rawDial(t, addrs[0])
	raw.send("EHLO not a TLS client hello\r\n")
	rec.waitFor(t, "tlsfail subs")
}

func TestObserverConnectionRefused(t *testing.T) {
	rec := newRecorder()
	addr := startObserved(t, rec, Limits{ConnectionsPerIP: 1}, Listener{Name: "mx", Role: RoleMX, TLS: TLSNone})[0]
	dial(t, addr)
	rawDial(t, addr).expect("421 4.7.0")
	rec.waitFor(t, "accept mx", "refuse mx too_many_from_ip")
}

func TestNilObserver(t *testing.T) {
	srv := New(Options{})
	if _, ok := srv.obs.(nopObserver); !ok {
		t.Fatalf("observer without Options.Observer is %T, want nopObserver", srv.obs)
	}
}

func TestRefusalReasons(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"bare LF", dataRefusal(smtp.ErrBareLF, nil), ReasonSmuggling},
		{"bare CR", dataRefusal(fmt.Errorf("wrapped: %w", smtp.ErrBareCR), nil), ReasonSmuggling},
		{"long line", dataRefusal(smtp.ErrLineTooLong, nil), ReasonLineTooLong},
		{"too large", dataRefusal(smtp.ErrTooLarge, nil), ReasonSize},
		{"BDAT too large", dataRefusal(nil, smtp.E(552, smtp.EnhTooBig, "too big")), ReasonSize},
		{"connection lost", dataRefusal(io.ErrUnexpectedEOF, nil), ReasonAborted},
		{"storage", dataRefusal(nil, errors.New("disk full")), ReasonStorage},
		{"storage 4xx", dataRefusal(nil, smtp.E(452, "4.3.1", "full")), ReasonStorage},
		{"policy", dataRefusal(nil, smtp.E(554, "5.7.1", "no")), ReasonPolicy},
		{"relay", rcptRefusal(smtp.E(550, smtp.EnhNotAuthorized, "Relaying denied")), ReasonRelay},
		{"unknown user", rcptRefusal(smtp.E(550, smtp.EnhBadMailbox, "No such user")), ReasonUnknownUser},
		{"rcpt temporary", rcptRefusal(smtp.E(451, "4.4.3", "later")), ReasonTemporary},
		{"rcpt unknown error", rcptRefusal(errors.New("boom")), ReasonTemporary},
		{"rcpt policy", rcptRefusal(smtp.E(550, "5.7.0", "no")), ReasonPolicy},
		{"shutting down", connRefusal(whyShuttingDown), ReasonShuttingDown},
		{"too many", connRefusal(whyTooMany), ReasonTooManyConnections},
		{"too many from ip", connRefusal(whyTooManyFromIP), ReasonTooManyFromIP},
		{"unexpected why", connRefusal("cosmic rays"), ReasonOther},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestLogRcpts(t *testing.T) {
	var rcpts []smtp.Address
	for i := range 12 {
		rcpts = append(rcpts, smtp.Address{Local: fmt.Sprintf("u%d", i), Domain: "example.com"})
	}
	tests := []struct {
		n    int
		want []string
	}{
		{0, []string{}},
		{1, []string{"u0@example.com"}},
		{10, []string{"u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com",
			"u5@example.com", "u6@example.com", "u7@example.com", "u8@example.com", "u9@example.com"}},
		{12, []string{"u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com",
			"u5@example.com", "u6@example.com", "u7@example.com", "u8@example.com", "u9@example.com", "+2 more"}},
	}
	for _, tt := range tests {
		if got := logRcpts(rcpts[:tt.n]); !slices.Equal(got, tt.want) {
			t.Errorf("logRcpts(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	// rcptLog logs exactly what the []string of logRcpts logged, in both
	// handlers, quoted local parts included.
	rcpts = append(rcpts[:1], smtp.Address{Local: `a "b"`, Domain: "x"})
	for _, n := range []int{0, 1, 2} {
		for _, more := range []int{0, 11} {
			list := rcpts[:n]
			if more > 0 {
				list = slices.Concat(list, slices.Repeat(rcpts[:1], more))
			}
			for _, json := range []bool{false, true} {
				line := func(v any) string {
					var buf bytes.Buffer
					var h slog.Handler = slog.NewTextHandler(&buf, nil)
					if json {
						h = slog.NewJSONHandler(&buf, nil)
					}
					slog.New(h).Info("m", "rcpt", v)
					_, after, _ := strings.Cut(buf.String(), `"m"`)
					if !json {
						_, after, _ = strings.Cut(buf.String(), "msg=m")
					}
					return after
				}
				if got, want := line(rcptLog(list)), line(logRcpts(list)); got != want {
					t.Errorf("rcptLog(%d recipients), json %v: %s, want %s", len(list), json, got, want)
				}
			}
		}
	}
	if got := tlsVersion(nil); got != "none" {
		t.Errorf("tlsVersion(nil) = %q", got)
	}
	if got := tlsVersion(&tls.ConnectionState{Version: tls.VersionTLS13}); got != "TLS 1.3" {
		t.Errorf("tlsVersion(1.3) = %q", got)
	}
}
