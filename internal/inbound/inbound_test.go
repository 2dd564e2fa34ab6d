package inbound

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/local"
	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/userdb"
)

func newBackend(t *testing.T, relay Relay) (*Backend, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := userdb.Open(filepath.Join(dir, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Add("alice@example.com", "pw-alice-123"); err != nil {
		t.Fatal(err)
	}
	if err := db.Add("bob@example.com", "pw-bob-123"); err != nil {
		t.Fatal(err)
	}
	if err := db.AddAlias("team@example.com", "alice@example.com", "bob@example.com", "carol@remote.example"); err != nil {
		t.Fatal(err)
	}
	mail := filepath.Join(dir, "mail")
	store := local.New(local.Options{Domains: []string{"Example.com"}, Accounts: db, MailDir: mail})
	return New(Options{Local: store, Accounts: db, Relay: relay}), mail
}

func addr(s string) smtp.Address {
	a, err := smtp.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

func code(err error) int {
	var se *smtp.Error
	if errors.As(err, &se) {
		return se.Reply.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestRecipientAndSenderPolicy(t *testing.T) {
	b, _ := newBackend(t, nil)
	anon := &server.SessionInfo{Role: server.RoleMX}
	authed := &server.SessionInfo{Role: server.RoleSubmission, AuthUser: "alice@example.com"}
	tests := []struct {
		name string
		s    *server.SessionInfo
		rcpt string
		want int
	}{
		{"local account", anon, "alice@example.com", 0},
		{"domain is case-insensitive", anon, "alice@EXAMPLE.COM", 0},
		{"plus tag", anon, "alice+news@example.com", 0},
		{"alias", anon, "team@example.com", 0},
		{"postmaster always", anon, "postmaster@example.com", 0},
		{"unknown user", anon, "nobody@example.com", 550},
		{"relay refused", anon, "x@remote.example", 550},
		{"authenticated remote without queue", authed, "x@remote.example", 451},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(b.Recipient(context.Background(), tt.s, smtp.Address{}, addr(tt.rcpt))); got != tt.want {
				t.Errorf("Recipient(%s) = %d, want %d", tt.rcpt, got, tt.want)
			}
		})
	}
	senders := []struct {
		from string
		s    *server.SessionInfo
		want int
	}{
		{"anyone@anywhere.example", anon, 0},
		{"alice@example.com", authed, 0},
		{"alice+x@example.com", authed, 0},
		{"bob@example.com", authed, 553},
		{"", authed, 553},
	}
	for _, tt := range senders {
		var from smtp.Address
		if tt.from != "" {
			from = addr(tt.from)
		}
		if got := code(b.Sender(context.Background(), tt.s, from)); got != tt.want {
			t.Errorf("Sender(%q) = %d, want %d", tt.from, got, tt.want)
		}
	}
}

// memRelay collects what would be queued, and the steps taken.
type memRelay struct {
	rcpts []smtp.Address
	meta  queue.Meta
	data  strings.Builder
	fail  bool // Prepare fails
	// addFail and withdrawFail make AddLocal and Withdraw fail.
	addFail, withdrawFail bool
	local                 []string // added by AddLocal
	steps                 []string
	prepended             string
}

func (m *memRelay) Begin(_ context.Context, env queue.Envelope) (RelayWriter, error) {
	m.rcpts, m.meta = env.To, env.Meta
	return m, nil
}
func (m *memRelay) Write(p []byte) (int, error) { return m.data.Write(p) }
func (m *memRelay) Prepend(fields string) error {
	m.steps = append(m.steps, "prepend")
	m.prepended += fields
	return nil
}
func (m *memRelay) Prepare() (string, error) {
	m.steps = append(m.steps, "prepare")
	if m.fail {
		return "", errors.New("disk on fire")
	}
	return "Q1", nil
}
func (m *memRelay) AddLocal(boxes []string) error {
	m.steps = append(m.steps, "add")
	if m.addFail {
		return errors.New("disk on fire")
	}
	m.local = append(m.local, boxes...)
	return nil
}
func (m *memRelay) Publish() { m.steps = append(m.steps, "publish") }
func (m *memRelay) Withdraw() error {
	m.steps = append(m.steps, "withdraw")
	if m.withdrawFail {
		return errors.New("disk on fire")
	}
	return nil
}
func (m *memRelay) Abort() { m.steps = append(m.steps, "abort") }

func TestBeginDeliversToEveryMailboxOnce(t *testing.T) {
	relay := &memRelay{}
	b, mail := newBackend(t, relay)
	env := &server.Envelope{ID: "ID1", Session: &server.SessionInfo{}, From: addr("s@x.example"),
		Recipients: []smtp.Address{addr("team@example.com"), addr("alice@example.com"), addr("dave@far.example")}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: hi\r\n\r\nbody\r\n")
	id, err := w.Commit()
	if err != nil || id != "Q1" {
		t.Fatalf("Commit = %q, %v", id, err)
	}
	for _, box := range []string{"example.com/alice", "example.com/bob"} {
		files, _ := os.ReadDir(filepath.Join(mail, box, "new"))
		if len(files) != 1 {
			t.Fatalf("%s has %d messages, want 1", box, len(files))
		}
		got, _ := os.ReadFile(filepath.Join(mail, box, "new", files[0].Name()))
		if want := "Return-Path: <s@x.example>\r\nSubject: hi\r\n\r\nbody\r\n"; string(got) != want {
			t.Errorf("%s: got %q, want %q", box, got, want)
		}
	}
	if len(relay.rcpts) != 2 || relay.data.String() != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("queued %v %q; want carol and dave without Return-Path", relay.rcpts, relay.data.String())
	}
}

func TestQueueFailureLeavesNothingInMaildir(t *testing.T) {
	relay := &memRelay{fail: true}
	b, mail := newBackend(t, relay)
	env := &server.Envelope{ID: "ID2", Session: &server.SessionInfo{}, From: addr("s@x.example"),
		Recipients: []smtp.Address{addr("alice@example.com"), addr("dave@far.example")}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "x\r\n")
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit succeeded although the queue failed")
	}
	for _, sub := range []string{"new", "tmp"} {
		files, _ := os.ReadDir(filepath.Join(mail, "example.com/alice", sub))
		if len(files) != 0 {
			t.Errorf("%s/ holds %d files after a failed commit", sub, len(files))
		}
	}
}

// TestRemovedMaildirIsRecreated: the created-Maildir cache must not turn a
// mailbox removed by an operator into a permanent failure.
func TestRemovedMaildirIsRecreated(t *testing.T) {
	b, mail := newBackend(t, nil)
	deliver := func() error {
		env := &server.Envelope{ID: "ID", Session: &server.SessionInfo{}, From: addr("s@x.example"), Recipients: []smtp.Address{addr("alice@example.com")}}
		w, err := b.Begin(context.Background(), env)
		if err != nil {
			return err
		}
		io.WriteString(w, "x\r\n")
		_, err = w.Commit()
		return err
	}
	if err := deliver(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mail, "example.com", "alice")); err != nil {
		t.Fatal(err)
	}
	err := deliver()
	if err == nil {
		return // recreated at once
	}
	if code(err) != 452 {
		t.Fatalf("delivery into a removed Maildir: %v, want 452 or success", err)
	}
	if err := deliver(); err != nil {
		t.Fatalf("the Maildir was not recreated on the next try: %v", err)
	}
}
