package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/server"
)

// fakeSigner "signs" with a field naming the bytes it saw.
type fakeSigner struct {
	data    strings.Builder
	fail    bool
	aborted *int
}

func (f *fakeSigner) Write(p []byte) (int, error) { return f.data.Write(p) }
func (f *fakeSigner) Finish() (string, error) {
	if f.fail {
		return "", errors.New("key gone")
	}
	return fmt.Sprintf("DKIM-Signature: fake %d\r\n", f.data.Len()), nil
}
func (f *fakeSigner) Skipped() error { return nil }
func (f *fakeSigner) Abort()         { *f.aborted++ }

// TestSignQueued: the queue copy of an authenticated submission gets the
// signature of the bytes received, before Prepare; mail without AUTH (mx:
// an alias that points outside) is never signed; the local copies never
// are; a signing failure is a temporary error and nothing is stored.
func TestSignQueued(t *testing.T) {
	authed := &server.SessionInfo{Role: server.RoleSubmission, AuthUser: "alice@example.com"}
	anon := &server.SessionInfo{Role: server.RoleMX}
	trusted := &server.SessionInfo{Role: server.RoleMX, Trusted: true}
	const msg = "From: alice@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
	tests := []struct {
		name     string
		session  *server.SessionInfo
		rcpts    []string
		fail     bool
		prepend  string
		steps    string
		commitOK bool
	}{
		{"submission", authed, []string{"dave@far.example"}, false, fmt.Sprintf("DKIM-Signature: fake %d\r\n", len(msg)), "prepend prepare publish", true},
		{"submission with a local copy", authed, []string{"bob@example.com", "dave@far.example"}, false, fmt.Sprintf("DKIM-Signature: fake %d\r\n", len(msg)), "prepend prepare publish", true},
		{"trusted on mx, no AUTH", trusted, []string{"dave@far.example"}, false, fmt.Sprintf("DKIM-Signature: fake %d\r\n", len(msg)), "prepend prepare publish", true},
		{"trusted on mx, alias to outside", trusted, []string{"team@example.com"}, false, fmt.Sprintf("DKIM-Signature: fake %d\r\n", len(msg)), "prepend prepare publish", true},
		{"mx alias to outside", anon, []string{"team@example.com"}, false, "", "prepare publish", true},
		{"signing fails", authed, []string{"bob@example.com", "dave@far.example"}, true, "", "abort", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &memRelay{}
			b, mail := newBackend(t, relay)
			aborted := 0
			started := 0
			b.opts.Sign = func(string) MessageSigner { started++; return &fakeSigner{fail: tt.fail, aborted: &aborted} }
			env := &server.Envelope{ID: "ID1", Session: tt.session, From: addr("alice@example.com")}
			for _, r := range tt.rcpts {
				env.Recipients = append(env.Recipients, addr(r))
			}
			w, err := b.Begin(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, msg)
			_, err = w.Commit()
			if (err == nil) != tt.commitOK {
				t.Fatalf("Commit: %v", err)
			}
			if got := strings.Join(relay.steps, " "); got != tt.steps || relay.prepended != tt.prepend {
				t.Errorf("steps %q prepended %q; want %q %q", got, relay.prepended, tt.steps, tt.prepend)
			}
			if tt.session == anon && started != 0 {
				t.Errorf("a signature was started for unauthenticated mail")
			}
			files, _ := os.ReadDir(filepath.Join(mail, "example.com/bob", "new"))
			for _, f := range files {
				got, _ := os.ReadFile(filepath.Join(mail, "example.com/bob", "new", f.Name()))
				if strings.Contains(string(got), "DKIM-Signature") {
					t.Errorf("the local copy is signed: %q", got)
				}
			}
			if !tt.commitOK && len(files) != 0 {
				t.Errorf("a failed commit left %d messages in a Maildir", len(files))
			}
		})
	}
}
