package inbound

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/srs"
)

// envRelay records every queue entry opened, each a memRelay.
type envRelay struct {
	envs    []queue.Envelope
	writers []*memRelay
	failAt  int // Prepare of the entry with this 1-based index fails
}

func (r *envRelay) Begin(_ context.Context, env queue.Envelope) (RelayWriter, error) {
	r.envs = append(r.envs, env)
	w := &memRelay{rcpts: env.To, fail: len(r.envs) == r.failAt}
	r.writers = append(r.writers, w)
	return w, nil
}

// srsClock is the Rewriter's clock in these tests.
type srsClock struct{ t time.Time }

func (c *srsClock) now() time.Time { return c.t }

func newSRSBackend(t *testing.T, relay Relay) (*Backend, *srs.Rewriter, *srsClock, string) {
	t.Helper()
	b, mail := newBackend(t, relay)
	c := &srsClock{time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)}
	r, err := srs.New(srs.Options{Secret: []byte("installation secret"), Domain: "mx.example.com", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	b.opts.SRS = r
	return b, r, c, mail
}

func senderOf(s string) smtp.Address {
	if s == "" {
		return smtp.Address{}
	}
	return addr(s)
}

// TestForwardRewritesSender: the copy an alias forwards outside leaves
// with an SRS sender, unless the sender is "<>" or local; recipients in
// other domains (authenticated submission) keep the sender as it came, in
// an entry of their own; the bytes are the same in every entry.
func TestForwardRewritesSender(t *testing.T) {
	tests := []struct {
		name, from string
		rcpts      []string
		noSRS      bool
		want       []string // per queue entry: "from -> rcpt,rcpt"; "SRS0" stands for an SRS0 sender
	}{
		{"outside sender to a forwarding alias", "sender@far.example", []string{"team@example.com"}, false,
			[]string{"SRS0 -> carol@remote.example"}},
		{"null sender stays null", "", []string{"team@example.com"}, false,
			[]string{" -> carol@remote.example"}},
		{"local sender is not rewritten", "alice@example.com", []string{"team@example.com", "dave@far.example"}, false,
			[]string{"alice@example.com -> dave@far.example,carol@remote.example"}},
		{"remote and forwarded: two entries", "sender@far.example", []string{"dave@far.example", "team@example.com"}, false,
			[]string{"sender@far.example -> dave@far.example", "SRS0 -> carol@remote.example"}},
		{"without SRS the sender stays", "sender@far.example", []string{"team@example.com"}, true,
			[]string{"sender@far.example -> carol@remote.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &envRelay{}
			b, r, _, mail := newSRSBackend(t, relay)
			if tt.noSRS {
				b.opts.SRS = nil
			}
			env := &server.Envelope{ID: "ID1", Session: &server.SessionInfo{}, From: senderOf(tt.from)}
			for _, rc := range tt.rcpts {
				env.Recipients = append(env.Recipients, addr(rc))
			}
			w, err := b.Begin(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			const msg = "DKIM-Signature: v=1; d=far.example\r\nSubject: hi\r\n\r\nbody\r\n"
			io.WriteString(w, msg)
			if _, err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, e := range relay.envs {
				from := e.From.String()
				if strings.HasPrefix(e.From.Local, "SRS0=") && e.From.Domain == "mx.example.com" {
					back, err := r.Reverse(e.From)
					if err != nil || back != env.From {
						t.Errorf("SRS sender %s reverses to %s, %v", e.From, back, err)
					}
					from = "SRS0"
				}
				var to []string
				for _, a := range e.To {
					to = append(to, a.String())
				}
				got = append(got, from+" -> "+strings.Join(to, ","))
				if w := relay.writers[i]; w.data.String() != msg || !strings.HasSuffix(strings.Join(w.steps, " "), "prepare publish") {
					t.Errorf("entry %d: %q, steps %v", i, w.data.String(), w.steps)
				}
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("queued %q, want %q", got, tt.want)
			}
			// The local copies keep the original Return-Path.
			if n := countNew(t, mail, "alice@example.com"); n != 1 {
				t.Errorf("alice has %d messages", n)
			}
		})
	}
}

// TestForwardTwoEntriesAllOrNothing: when the second entry cannot be
// prepared, the first is withdrawn and nothing is stored.
func TestForwardTwoEntriesAllOrNothing(t *testing.T) {
	relay := &envRelay{failAt: 2}
	b, _, _, mail := newSRSBackend(t, relay)
	env := &server.Envelope{ID: "ID1", Session: &server.SessionInfo{}, From: addr("sender@far.example"),
		Recipients: []smtp.Address{addr("dave@far.example"), addr("team@example.com")}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "x\r\n")
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit succeeded although the second entry failed")
	}
	if got := strings.Join(relay.writers[0].steps, " "); got != "prepare abort" {
		t.Errorf("first entry: %s, want prepare abort (a prepared queue.Writer withdraws on Abort)", got)
	}
	if n := countNew(t, mail, "alice@example.com"); n != 0 {
		t.Errorf("alice has %d messages", n)
	}
}

// TestSRSRecipient: RCPT TO an SRS address in our domain is accepted only
// when it verifies, and is delivered to the address it encodes: a local
// mailbox, or the queue (from any client, also unauthenticated).
func TestSRSRecipient(t *testing.T) {
	relay := &envRelay{}
	b, r, clock, mail := newSRSBackend(t, relay)
	anon := &server.SessionInfo{Role: server.RoleMX}
	remote, _ := r.Forward(addr("sender@far.example"))
	local, _ := r.Forward(smtp.Address{Local: "alice", Domain: "example.com"})
	nobody, _ := r.Forward(smtp.Address{Local: "nobody", Domain: "example.com"})
	other, _ := srs.New(srs.Options{Secret: []byte("another key"), Domain: "mx.example.com", Now: clock.now})
	forged, _ := other.Forward(addr("sender@far.example"))
	old := *clock
	clock.t = clock.t.Add(-30 * 24 * time.Hour)
	expired, _ := r.Forward(addr("sender@far.example"))
	*clock = old
	tests := []struct {
		name string
		rcpt smtp.Address
		want int
		enh  smtp.Enhanced
		text string
	}{
		{"valid, remote original", remote, 0, "", ""},
		{"valid, case-folded", smtp.Address{Local: strings.ToLower(remote.Local), Domain: "MX.example.com"}, 0, "", ""},
		{"valid, local original", local, 0, "", ""},
		{"valid, but no such local user", nobody, 550, smtp.EnhBadMailbox, ""},
		{"forged", forged, 550, smtp.EnhBadMailbox, "forged"},
		{"expired", expired, 550, smtp.EnhBadMailbox, "expired"},
		{"malformed", smtp.Address{Local: "SRS0=nothing", Domain: "mx.example.com"}, 550, smtp.EnhBadMailbox, "Malformed"},
		{"SRS form at another domain is relaying", smtp.Address{Local: remote.Local, Domain: "far.example"}, 550, smtp.EnhNotAuthorized, "Relaying"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.Recipient(context.Background(), anon, smtp.Address{}, tt.rcpt)
			if code(err) != tt.want {
				t.Fatalf("Recipient(%s) = %v, want %d", tt.rcpt, err, tt.want)
			}
			var se *smtp.Error
			if err != nil && (!errors.As(err, &se) || se.Reply.Enhanced != tt.enh || !strings.Contains(se.Reply.Text(), tt.text)) {
				t.Errorf("reply %v, want %s with %q", err, tt.enh, tt.text)
			}
		})
	}

	// A bounce to both: the local original gets it in its mailbox, the
	// remote one through the queue, from "<>" still.
	env := &server.Envelope{ID: "B1", Session: &server.SessionInfo{}, Recipients: []smtp.Address{remote, local}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: Undelivered Mail\r\n\r\nx\r\n")
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(relay.envs) != 1 || !relay.envs[0].From.IsNull() || len(relay.envs[0].To) != 1 || relay.envs[0].To[0].String() != "sender@far.example" {
		t.Errorf("queued %+v, want one entry <> -> sender@far.example", relay.envs)
	}
	files, _ := os.ReadDir(filepath.Join(mail, "example.com/alice/new"))
	if len(files) != 1 {
		t.Errorf("alice has %d messages, want the bounce", len(files))
	}

	// Without a queue, a remote original is deferred, as relaying is.
	b.opts.Relay = nil
	if got := code(b.Recipient(context.Background(), anon, smtp.Address{}, remote)); got != 451 {
		t.Errorf("without a queue: %d, want 451", got)
	}
}
