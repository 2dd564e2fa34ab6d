package queue

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"

	"smtpkit/internal/smtp"
)

// fixed is a Courier that gives every recipient the same Result.
type fixed struct{ res Result }

func (f fixed) Deliver(_ context.Context, d *Attempt) []Result {
	out := make([]Result, len(d.Recipients))
	for i, a := range d.Recipients {
		out[i] = f.res
		out[i].Rcpt = a
	}
	return out
}

// TestBounceSaysWhoSaidIt: the DSN names a Remote-MTA and an "smtp"
// Diagnostic-Code only for a reply a server gave; a refusal smtpkit made
// itself while talking to that server (the client refused the message
// before MAIL) is reported as smtpkit's, without a Remote-MTA, in the DSN,
// the log detail and `queue show`.
func TestBounceSaysWhoSaidIt(t *testing.T) {
	mx := Remote{Host: "mx.example.net", Addr: netip.MustParseAddr("192.0.2.1")}
	own := smtp.E(553, smtp.EnhConversion, "message needs SMTPUTF8 but the server does not support it")
	theirs := smtp.E(550, "5.1.1", "no such user")
	tests := []struct {
		name    string
		res     Result
		has     []string
		hasNot  []string
		lastRep string
	}{
		{"own refusal", Result{Err: own, Remote: mx},
			[]string{"Status: 5.6.7", "Diagnostic-Code: X-smtpkit; 553 5.6.7 message needs SMTPUTF8 but the server does not support it",
				"<bob@example.net>: 553 5.6.7 message needs SMTPUTF8"},
			[]string{"Remote-MTA", "said:"},
			"mx.example.net[192.0.2.1]: 553 5.6.7 message needs SMTPUTF8 but the server does not support it"},
		{"server's refusal", Result{Err: theirs, Remote: mx, Reply: theirs.Reply},
			[]string{"Status: 5.1.1", "Remote-MTA: dns; mx.example.net", "Diagnostic-Code: smtp; 550 5.1.1 no such user",
				"<bob@example.net>: mx.example.net said: 550 5.1.1 no such user"},
			[]string{"X-smtpkit"},
			"mx.example.net[192.0.2.1] said: 550 5.1.1 no such user"},
		{"route's refusal", Result{Err: smtp.E(556, "5.1.10", "domain does not accept mail")},
			[]string{"Status: 5.1.10", "Diagnostic-Code: X-smtpkit; 556 5.1.10 domain does not accept mail"},
			[]string{"Remote-MTA", "said:"},
			"556 5.1.10 domain does not accept mail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := open(t, fixed{tc.res}, nil)
			id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
			e.bounces.mu.Lock()
			e.bounces.err = errors.New("not now") // keep the message for Show
			e.bounces.mu.Unlock()
			e.q.RunOnce(ctx)
			d, err := e.q.Show(id)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Recipients[0].LastReply; got != tc.lastRep {
				t.Errorf("queue show: last reply %q, want %q", got, tc.lastRep)
			}
			e.bounces.mu.Lock()
			e.bounces.err = nil
			e.bounces.mu.Unlock()
			e.q.Flush()
			e.q.RunOnce(ctx)
			b := e.bounces.all()
			if len(b) != 1 {
				t.Fatalf("%d bounces, want 1", len(b))
			}
			for _, w := range tc.has {
				if !bytes.Contains(b[0].Message, []byte(w)) {
					t.Errorf("DSN lacks %q:\n%s", w, b[0].Message)
				}
			}
			for _, w := range tc.hasNot {
				if bytes.Contains(b[0].Message, []byte(w)) {
					t.Errorf("DSN has %q:\n%s", w, b[0].Message)
				}
			}
		})
	}
}

// TestLegacyEnvelopeDiagnostic: an envelope written before Result carried
// the reply keeps its recipients' diagnostic (a server's reply as text,
// type "smtp") for the DSN.
func TestLegacyEnvelopeDiagnostic(t *testing.T) {
	data := []byte(`{"v":1,"id":"m1","from":"alice@example.org","arrival":"2025-03-01T10:00:00Z","size":3,"meta":{},
"rcpts":[{"addr":"bob@example.net","domain":"example.net","state":"failed","attempts":1,
"status":"5.1.1","remote_mta":"mx.example.net","diagnostic":"550 5.1.1 no such user","diag_type":"smtp",
"detail":"mx.example.net[192.0.2.1] said: 550 5.1.1 no such user"}]}`)
	env, err := parseEnvelope(data, "m1")
	if err != nil {
		t.Fatal(err)
	}
	r := env.Rcpts[0]
	rc := dsnRecipient(r, "failed", env.Arrival)
	if rc.Diagnostic != "550 5.1.1 no such user" || rc.DiagnosticType != "smtp" || r.diagnostic() != "550 5.1.1 no such user" {
		t.Errorf("legacy recipient gives %+v, diagnostic %q", rc, r.diagnostic())
	}
}
