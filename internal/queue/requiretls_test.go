package queue

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// enqueueMeta commits msg with meta and returns its id.
func enqueueMeta(t *testing.T, q *Queue, meta Meta, msg, from string, rcpts ...string) string {
	t.Helper()
	w, err := q.Begin(envelopeOf(from, rcpts, meta))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRequireTLSKept: the REQUIRETLS tag (RFC 8689 §4.2) is written into
// the envelope, handed to every attempt, and still there after a restart;
// a message without it has none.
func TestRequireTLSKept(t *testing.T) {
	for _, tagged := range []bool{true, false} {
		rec := &recorder{script: []error{temp}}
		e := open(t, rec, nil)
		id := enqueueMeta(t, e.q, Meta{RequireTLS: tagged}, testMessage, "alice@example.org", "bob@example.net")
		e.q.RunOnce(context.Background())
		raw, err := os.ReadFile(e.q.dir.env(id))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(raw), `"requiretls": true`); got != tagged {
			t.Errorf("tagged=%v: envelope has requiretls=%v:\n%s", tagged, got, raw)
		}
		rec2 := &recorder{}
		q := reopen(t, e, rec2, nil)
		e.clock.Advance(time.Hour)
		q.RunOnce(context.Background())
		for i, a := range append(rec.attempts, rec2.attempts...) {
			if a.d.RequireTLS != tagged {
				t.Errorf("tagged=%v: attempt %d has RequireTLS=%v", tagged, i, a.d.RequireTLS)
			}
		}
		if len(rec2.attempts) != 1 {
			t.Errorf("tagged=%v: %d attempts after the restart, want 1", tagged, len(rec2.attempts))
		}
	}
}

// TestRequireTLSBounceRedacted: the DSN of a REQUIRETLS message carries
// none of it, headers included (RFC 8689 §5); other DSNs keep the headers.
func TestRequireTLSBounceRedacted(t *testing.T) {
	for _, tagged := range []bool{true, false} {
		e := open(t, &recorder{script: []error{perm}}, nil)
		enqueueMeta(t, e.q, Meta{RequireTLS: tagged}, testMessage, "alice@example.org", "bob@example.net")
		e.q.RunOnce(context.Background())
		b := e.bounces.all()
		if len(b) != 1 {
			t.Fatalf("tagged=%v: %d bounces, want 1", tagged, len(b))
		}
		msg := string(b[0].Message)
		if !strings.Contains(msg, "Final-Recipient: rfc822; bob@example.net") {
			t.Errorf("tagged=%v: the DSN names no recipient:\n%s", tagged, msg)
		}
		if got := strings.Contains(msg, "Subject: test"); got == tagged {
			t.Errorf("tagged=%v: the DSN carries the original Subject = %v:\n%s", tagged, got, msg)
		}
		if strings.Contains(msg, "Hello.") {
			t.Errorf("tagged=%v: the DSN carries the original body:\n%s", tagged, msg)
		}
	}
}
