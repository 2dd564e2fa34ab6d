package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/smtp"
	"smtpkit/internal/userdb"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := userdb.Open(filepath.Join(dir, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice@example.com", "bob@example.com"} {
		if err := db.Add(a, "pw-"+a); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddAlias("team@example.com", "alice@example.com", "bob@example.com", "carol@remote.example"); err != nil {
		t.Fatal(err)
	}
	mail := filepath.Join(dir, "mail")
	return New(Options{Domains: []string{"Example.com"}, Accounts: db, MailDir: mail}), mail
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

func TestResolve(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name        string
		rcpts       []string
		boxes       []string
		remote      []string // to the queue: remote recipients, then forwarded alias members
		wantErrCode int
	}{
		{"account", []string{"alice@example.com"}, []string{"alice@example.com"}, nil, 0},
		{"domain is case-insensitive", []string{"alice@EXAMPLE.COM"}, []string{"alice@example.com"}, nil, 0},
		{"plus tag", []string{"alice+news@example.com"}, []string{"alice@example.com"}, nil, 0},
		{"postmaster always", []string{"postmaster@example.com"}, []string{"postmaster@example.com"}, nil, 0},
		{"alias: members here, and elsewhere forwarded", []string{"team@example.com"},
			[]string{"alice@example.com", "bob@example.com"}, []string{"fwd:carol@remote.example"}, 0},
		{"each mailbox once", []string{"team@example.com", "alice@example.com", "bob+x@example.com"},
			[]string{"alice@example.com", "bob@example.com"}, []string{"fwd:carol@remote.example"}, 0},
		{"remote recipient", []string{"dave@far.example"}, nil, []string{"dave@far.example"}, 0},
		{"remote recipient and forwarded member", []string{"team@example.com", "dave@far.example"},
			[]string{"alice@example.com", "bob@example.com"}, []string{"dave@far.example", "fwd:carol@remote.example"}, 0},
		{"unknown user fails the message", []string{"alice@example.com", "nobody@example.com"}, nil, nil, 550},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rcpts []smtp.Address
			for _, r := range tt.rcpts {
				rcpts = append(rcpts, addr(r))
			}
			d, err := s.Resolve(rcpts)
			if got := code(err); got != tt.wantErrCode {
				t.Fatalf("Resolve: %v (code %d), want code %d", err, got, tt.wantErrCode)
			}
			var remote []string
			for _, a := range d.Remote {
				remote = append(remote, a.String())
			}
			for _, a := range d.Forwarded {
				remote = append(remote, "fwd:"+a.String())
			}
			if !slices.Equal(d.Mailboxes, tt.boxes) || !slices.Equal(remote, tt.remote) {
				t.Errorf("Resolve = %v, remote %v; want %v, remote %v", d.Mailboxes, remote, tt.boxes, tt.remote)
			}
		})
	}
}

// messages returns the messages in new/ of box.
func messages(t *testing.T, mail, box string) []string {
	t.Helper()
	local, domain, _ := strings.Cut(box, "@")
	dir := filepath.Join(mail, domain, local, "new")
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestDeliver(t *testing.T) {
	tests := []struct {
		name     string
		from     smtp.Address
		boxes    []string
		wantCode int
		want     string // each mailbox's message
	}{
		{"null sender (a bounce)", smtp.Address{}, []string{"alice@example.com", "bob@example.com"}, 0, "Return-Path: <>\r\nbody\r\n"},
		{"sender", addr("s@x.example"), []string{"alice@example.com"}, 0, "Return-Path: <s@x.example>\r\nbody\r\n"},
		{"not a local mailbox: nothing stored", smtp.Address{}, []string{"alice@example.com", "carol@remote.example"}, 550, ""},
		{"no mailbox at all", smtp.Address{}, nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, mail := newStore(t)
			err := s.Deliver(context.Background(), "Q1", tt.from, tt.boxes, strings.NewReader("body\r\n"))
			if got := code(err); got != tt.wantCode {
				t.Fatalf("Deliver: %v (code %d), want code %d", err, got, tt.wantCode)
			}
			for _, box := range []string{"alice@example.com", "bob@example.com"} {
				got := messages(t, mail, box)
				want := 0
				if tt.want != "" && slices.Contains(tt.boxes, box) {
					want = 1
				}
				if len(got) != want || (want == 1 && got[0] != tt.want) {
					t.Errorf("%s holds %q, want %d message(s) %q", box, got, want, tt.want)
				}
			}
		})
	}
}

// TestDeliverStorageFailure: a Maildir that cannot be written is 452
// 4.3.1 (the queue retries), nothing is stored, and the created-Maildir
// cache forgets it, so that it works again once repaired.
func TestDeliverStorageFailure(t *testing.T) {
	s, mail := newStore(t)
	deliver := func() error {
		return s.Deliver(context.Background(), "Q1", smtp.Address{}, []string{"alice@example.com", "bob@example.com"}, strings.NewReader("x\r\n"))
	}
	if err := deliver(); err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(mail, "example.com", "bob", "new")
	if err := os.RemoveAll(newDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := deliver(); code(err) != 452 {
		t.Fatalf("delivery into a broken Maildir: %v, want 452", err)
	}
	if n := len(messages(t, mail, "alice@example.com")); n != 1 {
		t.Errorf("alice holds %d messages after the failed delivery, want 1 (all or nothing)", n)
	}
	os.Remove(newDir)
	if err := deliver(); err != nil {
		t.Fatalf("the Maildir was not recreated after the failure: %v", err)
	}
}
