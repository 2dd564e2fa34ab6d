package server

import (
	"strconv"
	"strings"
	"testing"
)

// TestBinaryMIME: BODY=BINARYMIME data arrives by BDAT and is stored octet
// for octet (RFC 3030 §3) — NUL, bare CR and LF, long lines in the body —
// while the header block is still held to the text rules.
func TestBinaryMIME(t *testing.T) {
	long := strings.Repeat("y", 2000)
	tests := []struct {
		name   string
		chunks []string
		want   string // reply to the last chunk
		stored bool
	}{
		{"binary body", []string{"Subject: b\r\n\r\n\x00\x01\n\r\xff", "\r" + long}, "250 2.0.0", true},
		{"no header at all", []string{"\r\n\x00\n"}, "250 2.0.0", true},
		{"CRLF of the empty line split", []string{"A: b\r\n\r", "\n\x00"}, "250 2.0.0", true},
		{"empty message", []string{""}, "250 2.0.0", true},
		{"bare LF in header", []string{"Subject: b\nX: y\r\n\r\nbody"}, "500 5.5.2", false},
		{"NUL in header", []string{"Subject: \x00\r\n\r\nbody"}, "554 5.6.0", false},
		{"header line too long", []string{"Subject: " + long + "\r\n\r\n"}, "500 5.5.2", false},
	}
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ts.backend.messages())
			c.cmd("MAIL FROM:<a@b.example> BODY=BINARYMIME", "250")
			c.cmd("RCPT TO:<alice@example.com>", "250")
			for i, ch := range tt.chunks {
				cmd := "BDAT " + strconv.Itoa(len(ch))
				if i == len(tt.chunks)-1 {
					c.send(cmd + " LAST\r\n" + ch)
					c.expect(tt.want)
				} else {
					c.send(cmd + "\r\n" + ch)
					c.expect("250 2.0.0")
				}
			}
			c.cmd("NOOP", "250 2.0.0") // in step after the chunks
			msgs := ts.backend.messages()[before:]
			if !tt.stored {
				if len(msgs) != 0 {
					t.Fatalf("refused message stored")
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages stored", len(msgs))
			}
			m := msgs[0]
			if m.env.Body != "BINARYMIME" {
				t.Errorf("Envelope.Body %q", m.env.Body)
			}
			// What follows our Received field is exactly what was sent.
			data := string(m.data)
			sent := strings.Join(tt.chunks, "")
			if !strings.HasPrefix(data, "Received: ") || !strings.HasSuffix(data, sent) {
				t.Errorf("stored %q, want the Received field then %q", data, sent)
			}
		})
	}
}
