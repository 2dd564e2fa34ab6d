package inbound

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/local"
	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// breakMaildir makes the next Maildir commit into box fail: its new/ is
// replaced by a file, behind the back of the created-Maildir cache (which
// the first delivery filled). repair undoes it.
func breakMaildir(t *testing.T, b *Backend, mail, box string) (repair func()) {
	t.Helper()
	w, err := b.opts.Local.Begin(smtp.Address{}, []string{box}) // fills the cache
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	local, domain, _ := strings.Cut(box, "@")
	newDir := filepath.Join(mail, domain, local, "new")
	if err := os.RemoveAll(newDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		os.Remove(newDir)
		if err := os.Mkdir(newDir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

func countNew(t *testing.T, mail, box string) int {
	t.Helper()
	local, domain, _ := strings.Cut(box, "@")
	files, _ := os.ReadDir(filepath.Join(mail, domain, local, "new"))
	return len(files)
}

func fanOut(t *testing.T, b *Backend, rcpts ...string) (string, error) {
	t.Helper()
	env := &server.Envelope{ID: "ID3", Session: &server.SessionInfo{AuthUser: "alice@example.com"}, From: addr("alice@example.com")}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, addr(r))
	}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: hi\r\n\r\nbody\r\n")
	return w.Commit()
}

// TestFanOutMaildirFailure: when the Maildir commit fails after the queue
// copy was prepared, the reply and the queue agree — 250 with the local
// mailboxes queued for later, or 4xx with the queue copy withdrawn — and
// the remote recipient is never queued for a message the client will send
// again.
func TestFanOutMaildirFailure(t *testing.T) {
	tests := []struct {
		name                  string
		addFail, withdrawFail bool
		wantCode              int
		wantSteps             []string
	}{
		{"local recipients queued", false, false, 0, []string{"prepare", "add", "publish"}},
		{"queue full too: withdrawn", true, false, 452, []string{"prepare", "add", "withdraw"}},
		{"withdraw fails too", true, true, 452, []string{"prepare", "add", "withdraw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &memRelay{addFail: tt.addFail, withdrawFail: tt.withdrawFail}
			b, mail := newBackend(t, relay)
			breakMaildir(t, b, mail, "bob@example.com")
			_, err := fanOut(t, b, "bob@example.com", "alice@example.com", "dave@far.example")
			if got := code(err); got != tt.wantCode {
				t.Fatalf("Commit: %v (code %d), want code %d", err, got, tt.wantCode)
			}
			if !slices.Equal(relay.steps, tt.wantSteps) {
				t.Errorf("queue steps %v, want %v", relay.steps, tt.wantSteps)
			}
			if tt.wantCode == 0 && !slices.Equal(relay.local, []string{"bob@example.com", "alice@example.com"}) {
				t.Errorf("queued local mailboxes %v, want bob and alice", relay.local)
			}
			if n := countNew(t, mail, "alice@example.com"); n != 0 {
				t.Errorf("alice's Maildir holds %d messages though the delivery failed", n)
			}
		})
	}
}

// TestFanOutPrepareFailure: a queue that cannot take the message leaves
// nothing anywhere.
func TestFanOutPrepareFailure(t *testing.T) {
	relay := &memRelay{fail: true}
	b, mail := newBackend(t, relay)
	if _, err := fanOut(t, b, "alice@example.com", "dave@far.example"); err == nil {
		t.Fatal("Commit succeeded although the queue failed")
	}
	if n := countNew(t, mail, "alice@example.com"); n != 0 {
		t.Errorf("alice's Maildir holds %d messages", n)
	}
	if slices.Contains(relay.steps, "publish") {
		t.Errorf("published after a failed Prepare: %v", relay.steps)
	}
}

// remoteRecorder is the remote courier: it counts the copies each remote
// recipient got.
type remoteRecorder struct{ got map[string]int }

func (c *remoteRecorder) Deliver(_ context.Context, d *queue.Attempt) []queue.Result {
	out := make([]queue.Result, len(d.Recipients))
	for i, r := range d.Recipients {
		c.got[r]++
		out[i] = queue.Result{Rcpt: r}
	}
	return out
}

// localCourier is delivery.Local, which inbound cannot import.
type localCourier struct{ s *local.Store }

func (c localCourier) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	body, err := d.Open()
	if err == nil {
		var from smtp.Address
		if d.From != "" {
			from, err = smtp.ParseAddress(d.From)
		}
		if err == nil {
			err = c.s.Deliver(ctx, d.ID, from, d.Recipients, body)
		}
		body.Close()
	}
	out := make([]queue.Result, len(d.Recipients))
	for i, r := range d.Recipients {
		out[i] = queue.Result{Rcpt: r, Err: err}
	}
	return out
}

// TestFanOutExactlyOnceWithQueue runs the client's view end to end with
// the real queue: the Maildir fails once, the client retries whatever is
// not 250, and in the end every recipient has exactly one copy.
func TestFanOutExactlyOnceWithQueue(t *testing.T) {
	remote := &remoteRecorder{got: map[string]int{}}
	var b *Backend
	q, err := queue.Open(queue.Options{Dir: t.TempDir(), Courier: remote, Local: courierFunc(func(ctx context.Context, d *queue.Attempt) []queue.Result {
		return localCourier{b.opts.Local}.Deliver(ctx, d)
	}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	b, mail := newBackend(t, QueueRelay(queue.LocalBackend(q)))
	repair := breakMaildir(t, b, mail, "bob@example.com")
	for try := 0; ; try++ {
		if try == 3 {
			t.Fatal("no 250 after 3 tries")
		}
		_, err := fanOut(t, b, "bob@example.com", "dave@far.example")
		if try == 0 {
			repair() // the Maildir works again for the queue's later delivery
		}
		if err == nil {
			break
		}
		t.Logf("try %d: %v; the client sends the message again", try, err)
	}
	q.RunOnce(context.Background())
	if remote.got["dave@far.example"] != 1 {
		t.Errorf("dave (remote) got %d copies, want 1", remote.got["dave@far.example"])
	}
	if n := countNew(t, mail, "bob@example.com"); n != 1 {
		t.Errorf("bob (local) got %d copies, want 1", n)
	}
	if l := q.List(); len(l) != 0 {
		t.Errorf("queue not empty: %+v", l)
	}
}

type courierFunc func(context.Context, *queue.Attempt) []queue.Result

func (f courierFunc) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result { return f(ctx, d) }

// emptyAccounts resolves every address to no mailbox at all (an alias
// without members).
type emptyAccounts struct{}

func (emptyAccounts) Resolve(string) ([]string, bool) { return nil, true }
func (emptyAccounts) Owns(string, string) bool        { return true }

// TestCommitWithNoMailbox: a message whose recipients resolve to no
// mailbox and no remote address is accepted with nothing to store, not a
// crash of the session.
func TestCommitWithNoMailbox(t *testing.T) {
	store := local.New(local.Options{Domains: []string{"example.com"}, Accounts: emptyAccounts{}, MailDir: t.TempDir()})
	b := New(Options{Local: store, Accounts: emptyAccounts{}})
	env := &server.Envelope{ID: "ID9", Session: &server.SessionInfo{}, From: addr("s@x.example"), Recipients: []smtp.Address{addr("list@example.com")}}
	w, err := b.Begin(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "x\r\n")
	if id, err := w.Commit(); err != nil || id != "ID9" {
		t.Errorf("Commit = %q, %v; want ID9, nil", id, err)
	}
}
