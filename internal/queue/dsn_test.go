package queue

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// enqueueDSN commits testMessage with per-recipient DSN parameters.
func enqueueDSN(t *testing.T, q *Queue, meta Meta, rcpts []string, dsn []smtp.RcptDSN) string {
	t.Helper()
	env := envelopeOf("alice@example.org", rcpts, meta)
	env.DSN = dsn
	w, err := q.Begin(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, testMessage); err != nil {
		t.Fatal(err)
	}
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNotifyFailure: RFC 3461 §4.1 — the bounce covers only recipients
// whose NOTIFY asks for failures (or is absent), carries ENVID as
// Original-Envelope-Id and ORCPT as Original-Recipient (RFC 3464 §2.2.1,
// §2.3.1), and all of it survives a restart between receipt and failure.
func TestNotifyFailure(t *testing.T) {
	rec := &recorder{script: []error{perm}}
	e := open(t, rec, nil)
	rcpts := []string{"never@example.net", "success@example.net", "default@example.net", "failure@example.net"}
	id := enqueueDSN(t, e.q, Meta{EnvID: "QQ314159", Ret: smtp.RetHdrs}, rcpts, []smtp.RcptDSN{
		{Notify: smtp.NotifyNever}, {Notify: smtp.NotifySuccess}, {},
		{Notify: smtp.NotifyFailure, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "old@example.com"}},
	})
	// Restart: the parameters come back from the env file.
	e.q.Close()
	e2 := open(t, rec, func(o *Options) { o.Dir = e.dir })
	e2.q.RunOnce(ctx)
	b := e2.bounces.all()
	if len(b) != 1 {
		t.Fatalf("%d bounces, want 1", len(b))
	}
	msg := b[0].Message
	checkDSN(t, msg, "Undelivered Mail Returned to Sender", "Original-Envelope-Id: QQ314159",
		"Final-Recipient: rfc822; default@example.net", "Original-Recipient: rfc822;old@example.com",
		"Final-Recipient: rfc822; failure@example.net")
	for _, no := range []string{"never@example.net", "success@example.net"} {
		if bytes.Contains(msg, []byte(no)) {
			t.Errorf("bounce names %s, whose NOTIFY did not ask for failures:\n%s", no, msg)
		}
	}
	if state(t, e2.q, id) != nil {
		t.Error("bounced message still queued")
	}
}

// TestNotifyNeverAll: no recipient wants a failure notice: none is sent,
// and the message is done with.
func TestNotifyNeverAll(t *testing.T) {
	e := open(t, &recorder{script: []error{perm}}, nil)
	id := enqueueDSN(t, e.q, Meta{}, []string{"bob@example.net"}, []smtp.RcptDSN{{Notify: smtp.NotifyNever}})
	e.q.RunOnce(ctx)
	e.q.RunOnce(ctx)
	if n := len(e.bounces.all()); n != 0 || state(t, e.q, id) != nil {
		t.Fatalf("%d bounces, state %+v; want none and gone", n, state(t, e.q, id))
	}
}

// TestNotifyDelay: a delay warning only for recipients whose NOTIFY asks
// for delays (or is absent).
func TestNotifyDelay(t *testing.T) {
	for _, tt := range []struct {
		name   string
		notify smtp.Notify
		warned bool
	}{
		{"absent", 0, true},
		{"DELAY", smtp.NotifyDelay, true},
		{"FAILURE only", smtp.NotifyFailure, false},
		{"NEVER", smtp.NotifyNever, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{script: []error{temp, temp, temp, temp, temp, nil}}
			e := open(t, rec, func(o *Options) { o.DelayWarning = 30 * time.Minute; o.RetryMin = 10 * time.Minute })
			id := enqueueDSN(t, e.q, Meta{}, []string{"bob@example.net"}, []smtp.RcptDSN{{Notify: tt.notify}})
			for range 8 {
				e.q.RunOnce(ctx)
				e.clock.Advance(10 * time.Minute)
				e.q.Flush()
			}
			if state(t, e.q, id) != nil {
				t.Fatalf("not delivered: %+v", state(t, e.q, id))
			}
			if got := len(e.bounces.all()) == 1; got != tt.warned {
				t.Fatalf("warned %v, want %v", got, tt.warned)
			}
		})
	}
}

// TestOldEnvelopeLoads: an env file written before the DSN fields loads,
// its recipients with NOTIFY absent (the default notices).
func TestOldEnvelopeLoads(t *testing.T) {
	old := `{"v":1,"id":"x1","from":"a@b","arrival":"2025-03-01T10:00:00Z","size":3,"meta":{},
		"rcpts":[{"addr":"c@d","domain":"d","state":"queued"}]}`
	e, err := parseEnvelope([]byte(old), "x1")
	if err != nil {
		t.Fatal(err)
	}
	r := e.Rcpts[0]
	if r.notify() != 0 || r.ORCPT != nil || e.Meta.Ret != "" || e.Meta.EnvID != "" {
		t.Errorf("old envelope loaded as %+v %+v", e.Meta, r)
	}
}

// TestSuccessNotices: RFC 3461 §6.2.1 — a NOTIFY=SUCCESS recipient the
// queue delivers into a Maildir gets a "delivered" notice, one accepted by
// a next hop without DSN a "relayed" notice, one accepted by a next hop
// with DSN (which was passed NOTIFY) none; others never get one. The
// Attempt carries the parameters for the next hop.
func TestSuccessNotices(t *testing.T) {
	for _, tt := range []struct {
		name    string
		local   bool
		relayed bool
		notify  smtp.Notify
		action  string // "" = no notice
	}{
		{"local delivered", true, false, smtp.NotifySuccess, "delivered"},
		{"remote without DSN", false, true, smtp.NotifySuccess | smtp.NotifyFailure, "relayed"},
		{"remote with DSN", false, false, smtp.NotifySuccess, ""},
		{"no SUCCESS", false, true, smtp.NotifyFailure, ""},
		{"absent", true, true, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu  sync.Mutex
				got *Attempt
			)
			c := courierFunc(func(_ context.Context, d *Attempt) []Result {
				mu.Lock()
				if d.Recipients[0] == "bob@example.net" {
					got = d
				}
				mu.Unlock()
				return []Result{{Rcpt: d.Recipients[0], Relayed: tt.relayed, Remote: Remote{Host: "mx.example.net"}, Reply: smtp.R(250, "2.0.0", "OK")}}
			})
			e := open(t, c, func(o *Options) {
				if tt.local {
					o.Local = c
				}
			})
			rc := smtp.RcptDSN{Notify: tt.notify, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "o@example.com"}}
			var id string
			if tt.local {
				id = enqueueLocal(t, e.q, Meta{EnvID: "E7"}, "bob@example.net", rc)
			} else {
				id = enqueueDSN(t, e.q, Meta{EnvID: "E7", Ret: smtp.RetHdrs}, []string{"bob@example.net"}, []smtp.RcptDSN{rc})
			}
			e.q.RunOnce(ctx)
			mu.Lock()
			defer mu.Unlock()
			if got == nil {
				t.Fatal("no attempt")
			}
			if !tt.local && (got.EnvID != "E7" || got.Ret != smtp.RetHdrs || len(got.DSN) != 1 || got.DSN[0] != rc) {
				t.Errorf("attempt DSN parameters %q %q %+v", got.EnvID, got.Ret, got.DSN)
			}
			b := e.bounces.all()
			if tt.action == "" {
				if len(b) != 0 {
					t.Fatalf("%d notices, want none", len(b))
				}
			} else {
				if len(b) != 1 {
					t.Fatalf("%d notices, want one %s", len(b), tt.action)
				}
				checkDSN(t, b[0].Message, "Successful Mail Delivery Report", "Action: "+tt.action, "Status: 2.0.0",
					"Original-Envelope-Id: E7", "Original-Recipient: rfc822;o@example.com", "Final-Recipient: rfc822; bob@example.net")
			}
			if state(t, e.q, id) != nil {
				t.Errorf("message still queued: %+v", state(t, e.q, id))
			}
		})
	}
}

// enqueueLocal queues a message for a local mailbox of ours (as inbound
// does when the Maildir delivery failed at receipt: AddLocal).
func enqueueLocal(t *testing.T, q *Queue, meta Meta, box string, d smtp.RcptDSN) string {
	t.Helper()
	w, err := q.Begin(Envelope{From: testAddr("alice@example.org"), To: []smtp.Address{testAddr("other@example.net")},
		LocalDSN: map[string]smtp.RcptDSN{box: d}, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testMessage)
	id, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddLocal([]string{box}); err != nil {
		t.Fatal(err)
	}
	w.Publish()
	return id
}

// TestRetFull: RFC 3461 §4.3 — RET=FULL returns the whole message in the
// failure report (message/rfc822); RET=HDRS and RET absent its headers.
func TestRetFull(t *testing.T) {
	for _, tt := range []struct {
		ret  string
		full bool
	}{{smtp.RetFull, true}, {smtp.RetHdrs, false}, {"", false}} {
		t.Run("RET="+tt.ret, func(t *testing.T) {
			e := open(t, &recorder{script: []error{perm}}, nil)
			enqueueDSN(t, e.q, Meta{Ret: tt.ret}, []string{"bob@example.net"}, nil)
			e.q.RunOnce(ctx)
			b := e.bounces.all()
			if len(b) != 1 {
				t.Fatalf("%d bounces", len(b))
			}
			msg := string(b[0].Message)
			hasFull := strings.Contains(msg, "Content-Type: message/rfc822\r\n") && strings.Contains(msg, "\r\n\r\nHello.\r\n")
			hasHdrs := strings.Contains(msg, "Content-Type: text/rfc822-headers\r\n")
			if hasFull != tt.full || hasHdrs == tt.full || !strings.Contains(msg, "Subject: test\r\n") {
				t.Errorf("full %v headers %v:\n%s", hasFull, hasHdrs, msg)
			}
		})
	}
}
