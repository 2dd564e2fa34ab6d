package queue

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBinaryKept: BODY=BINARYMIME (RFC 3030 §3) is written into the
// envelope, handed to every attempt with the bytes as stored, and still
// there after a restart; a text message has none.
func TestBinaryKept(t *testing.T) {
	msg := "Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\n\r\xff"
	for _, binary := range []bool{true, false} {
		rec := &recorder{script: []error{temp}}
		e := open(t, rec, nil)
		id := enqueueMeta(t, e.q, Meta{Binary: binary}, msg, "alice@example.org", "bob@example.net")
		e.q.RunOnce(context.Background())
		raw, err := os.ReadFile(e.q.dir.env(id))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(raw), `"binary": true`); got != binary {
			t.Errorf("binary=%v: envelope has binary=%v:\n%s", binary, got, raw)
		}
		rec2 := &recorder{script: []error{temp}} // deferred again: the bytes stay to be read
		q := reopen(t, e, rec2, nil)
		e.clock.Advance(time.Hour)
		q.RunOnce(context.Background())
		if len(rec2.attempts) != 1 {
			t.Fatalf("binary=%v: %d attempts after the restart, want 1", binary, len(rec2.attempts))
		}
		for i, a := range append(rec.attempts, rec2.attempts...) {
			if a.d.Binary != binary {
				t.Errorf("binary=%v: attempt %d has Binary=%v", binary, i, a.d.Binary)
			}
		}
		rc, err := rec2.attempts[0].d.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != msg {
			t.Errorf("binary=%v: bytes after the restart %q, want %q", binary, got, msg)
		}
	}
}
