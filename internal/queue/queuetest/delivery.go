package queuetest

// delivery.go: the conformance tests of delivery, retry, failure and
// expiry.

import (
	"strings"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

func testDelivered(t *testing.T, h *harness) {
	id := h.send(h.to("bob@dest.example", "carol@other.example"))
	if n := h.runOnce(); n != 2 {
		t.Fatalf("RunOnce made %d attempts, want 2 (one per domain)", n)
	}
	for _, rc := range []string{"bob@dest.example", "carol@other.example"} {
		got := h.courier.To(rc)
		if len(got) != 1 {
			t.Fatalf("%s: %d attempts, want 1", rc, len(got))
		}
		d := got[0]
		if d.Attempt.ID != id || d.Attempt.From != "alice@sender.example" || d.Body != testBody {
			t.Errorf("%s: attempt %+v body %q", rc, d.Attempt, d.Body)
		}
		if d.Attempt.Size != int64(len(testBody)) {
			t.Errorf("%s: Size %d, want %d", rc, d.Attempt.Size, len(testBody))
		}
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after delivery: %+v", l)
	}
	if n := h.runOnce(); n != 0 {
		t.Errorf("a second RunOnce made %d attempts", n)
	}
}

func testDeferred(t *testing.T, h *harness) {
	h.courier.Script("bob@dest.example", temp("try later"), nil)
	id := h.send(h.to("bob@dest.example"))
	if n := h.runOnce(); n != 1 {
		t.Fatalf("first pass: %d attempts", n)
	}
	r := h.rcpt(id, "bob@dest.example")
	if r.State != queue.Deferred || r.Attempts != 1 {
		t.Fatalf("after 451: %+v", r)
	}
	if want := h.clock.Now().Add(h.opts.RetryMin); !r.NextAttempt.Equal(want) {
		t.Errorf("next attempt %v, want %v (RetryMin)", r.NextAttempt, want)
	}
	if !strings.Contains(r.LastReply, "try later") {
		t.Errorf("last reply %q", r.LastReply)
	}
	h.clock.Advance(h.opts.RetryMin - time.Second)
	if n := h.runOnce(); n != 0 {
		t.Fatalf("before the due time: %d attempts", n)
	}
	h.clock.Advance(time.Second)
	if n := h.runOnce(); n != 1 {
		t.Fatalf("at the due time: %d attempts", n)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after the retry delivered: %+v", l)
	}
	if got := len(h.courier.To("bob@dest.example")); got != 2 {
		t.Errorf("%d attempts in all, want 2", got)
	}
	// Backoff doubles: a second deferral waits twice RetryMin.
	h.courier.Script("dave@dest.example", temp("busy"), temp("busy"), nil)
	id = h.send(h.to("dave@dest.example"))
	h.runOnce()
	h.clock.Advance(h.opts.RetryMin)
	h.runOnce()
	r = h.rcpt(id, "dave@dest.example")
	if want := h.clock.Now().Add(2 * h.opts.RetryMin); r.Attempts != 2 || !r.NextAttempt.Equal(want) {
		t.Errorf("after two deferrals: %+v, want next %v", r, want)
	}
}

// bounceTo returns the DSNs delivered to the original sender.
func (h *harness) bounceTo(sender string) []Delivery {
	var out []Delivery
	for _, d := range h.courier.To(sender) {
		if d.Attempt.From == "" {
			out = append(out, d)
		}
	}
	return out
}

func testFailed(t *testing.T, h *harness) {
	h.courier.Script("nobody@dest.example", perm("no such user"))
	id := h.send(h.to("nobody@dest.example", "bob@dest.example"))
	h.runOnce()
	dsns := h.bounceTo("alice@sender.example")
	if len(dsns) != 1 {
		t.Fatalf("%d DSNs to the sender, want 1 (attempts: %+v)", len(dsns), h.courier.Attempts())
	}
	b := dsns[0].Body
	for _, want := range []string{"Final-Recipient: rfc822; nobody@dest.example", "Action: failed",
		"Status: " + string(smtp.EnhBadMailbox), "Remote-MTA: dns; mx.dest.example", "no such user",
		"Reporting-MTA: dns; mx.test.example", "Message-ID: <conf-1@sender.example>"} {
		if !strings.Contains(b, want) {
			t.Errorf("DSN lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(b, "Final-Recipient: rfc822; bob@dest.example") {
		t.Errorf("DSN names the delivered recipient:\n%s", b)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after delivery and bounce: %+v", l)
	}
	_ = id
	// A failure of the null sender's message never bounces (RFC 5321 §4.5.5).
	h.courier.Script("gone@dest.example", perm("no such user"))
	h.sendFrom(queue.Envelope{To: []smtp.Address{addr(t, "gone@dest.example")}})
	before := len(h.courier.Attempts())
	h.runOnce()
	if got := h.courier.Attempts()[before:]; len(got) != 1 {
		t.Errorf("a bounce's failure made attempts %+v, want only its own", got)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("failed bounce still queued: %+v", l)
	}
}

func testExpiry(t *testing.T, h *harness) {
	h.courier.Script("slow@dest.example", temp("greylisted"))
	h.send(h.to("slow@dest.example"))
	for i := 0; i < 100 && len(h.list()) > 0 && len(h.bounceTo("alice@sender.example")) == 0; i++ {
		h.runOnce()
		h.clock.Advance(h.opts.RetryMax)
	}
	dsns := h.bounceTo("alice@sender.example")
	if len(dsns) != 1 {
		t.Fatalf("%d DSNs after expiry, want 1", len(dsns))
	}
	for _, want := range []string{"Action: failed", "Status: " + string(smtp.EnhExpired), "greylisted"} {
		if !strings.Contains(dsns[0].Body, want) {
			t.Errorf("expiry DSN lacks %q:\n%s", want, dsns[0].Body)
		}
	}
	if len(h.courier.To("slow@dest.example")) == 0 {
		t.Fatal("no attempts")
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("expired message still queued: %+v", l)
	}
}
