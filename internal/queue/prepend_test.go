package queue

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

const sigFields = "DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=s;\r\n b=AAAA\r\n"

// TestPrependEveryAttempt: fields prepended before the commit go out byte
// for byte before the message in every remote attempt, after a restart
// too, and Size counts them; local recipients get the bytes as received.
func TestPrependEveryAttempt(t *testing.T) {
	rec := &recorder{script: []error{temp}}
	local := &recorder{}
	e := open(t, rec, func(o *Options) { o.Local = local })
	w, err := e.q.Begin(envelopeOf("alice@example.org", []string{"bob@example.net"}, Meta{}))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testMessage)
	if err := w.Prepend(sigFields); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := w.AddLocal([]string{"carol@example.org"}); err != nil {
		t.Fatal(err)
	}
	w.Publish()
	e.q.RunOnce(context.Background())
	rec2, local2 := &recorder{}, &recorder{}
	q := reopen(t, e, rec2, local2)
	e.clock.Advance(time.Hour)
	q.RunOnce(context.Background())
	attempts := append(rec.attempts, rec2.attempts...)
	if len(attempts) != 2 {
		t.Fatalf("%d remote attempts, want 2", len(attempts))
	}
	for i, a := range attempts {
		if a.body != sigFields+testMessage {
			t.Errorf("attempt %d sent %q", i, a.body)
		}
		if a.d.Size != int64(len(sigFields+testMessage)) {
			t.Errorf("attempt %d: Size %d, want %d", i, a.d.Size, len(sigFields+testMessage))
		}
	}
	locals := append(local.attempts, local2.attempts...)
	if len(locals) != 1 || locals[0].body != testMessage || locals[0].d.Size != int64(len(testMessage)) {
		t.Errorf("local attempts %+v, want one with the message as received", locals)
	}
}

func TestPrependChecks(t *testing.T) {
	tests := []struct {
		fields string
		ok     bool
	}{
		{"", true},
		{sigFields, true},
		{"DKIM-Signature: x\r\nDKIM-Signature: y\r\n", true},
		{"DKIM-Signature: x", false},
		{"DKIM-Signature: x\n", false},
		{"DKIM-Signature: x\r\n\r\n", false},
		{"A: x\nB: y\r\n", false},
		{"A: x\rB: y\r\n", false},
	}
	for _, tt := range tests {
		e := open(t, &recorder{}, nil)
		w, err := e.q.Begin(envelopeOf("alice@example.org", []string{"bob@example.net"}, Meta{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Prepend(tt.fields); (err == nil) != tt.ok {
			t.Errorf("Prepend(%q): %v", tt.fields, err)
		}
		w.Abort()
	}
	e := open(t, &recorder{}, nil)
	w, _ := e.q.Begin(envelopeOf("alice@example.org", []string{"bob@example.net"}, Meta{}))
	w.Commit()
	if err := w.Prepend(sigFields); err == nil {
		t.Error("Prepend after Commit")
	}
}

// TestBounceSigned: a DSN the queue enqueues itself is signed once with
// Options.Sign and sent with the fields in front.
func TestBounceSigned(t *testing.T) {
	rec := &recorder{script: []error{perm}}
	var signed []string
	e := open(t, rec, func(o *Options) {
		o.Bounce = nil
		o.Sign = func(msg []byte) (string, error) {
			signed = append(signed, string(msg))
			return sigFields, nil
		}
	})
	enqueue(t, e.q, "alice@example.net", "bob@example.com")
	e.q.RunOnce(context.Background()) // fails, bounce queued to alice
	e.q.RunOnce(context.Background()) // the bounce
	if len(rec.attempts) != 2 || len(signed) != 1 {
		t.Fatalf("%d attempts, %d signed", len(rec.attempts), len(signed))
	}
	b := rec.attempts[1]
	if b.d.From != "" || !strings.HasPrefix(b.body, sigFields) || b.body[len(sigFields):] != signed[0] {
		t.Errorf("bounce attempt from %q sent %q", b.d.From, b.body)
	}
}
