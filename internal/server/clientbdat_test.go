package server

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	smtpclient "smtpkit/internal/client"
	"smtpkit/internal/smtp"
)

// bdatHeader starts every message of the client-against-server BDAT
// checks, so that a binary body is not taken for a header block.
const bdatHeader = "Subject: bdat\r\n\r\n"

// checkClientBDAT sends body with smtpkit's client (BDAT in chunks of
// chunk octets, pipelined, BODY=BINARYMIME when binary) to the server at
// addr and checks what the backend stored: a binary body octet for octet;
// a text body CRLF-normalized, or refused with 5xx and not stored when it
// holds NUL or a line over the limit.
func checkClientBDAT(t *testing.T, ts *testServer, body []byte, chunk int, binary bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := smtpclient.Dial(ctx, ts.addrs[0], smtpclient.Options{LocalName: "client.example.org", ChunkSize: chunk,
		Timeouts: smtpclient.Timeouts{Greeting: 5 * time.Second, Command: 5 * time.Second, DataEnd: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	before := len(ts.backend.messages())
	msg := append([]byte(bdatHeader), body...)
	res, err := c.Send(ctx, smtpclient.Envelope{From: "a@example.org", To: []string{"alice@example.com"}, Binary: binary},
		bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := msg
	if !binary {
		want = crlfNormalized(msg)
	}
	refuse := !binary && (bytes.IndexByte(want, 0) >= 0 || longestLine(want) > 1000)
	msgs := ts.backend.messages()[before:]
	switch {
	case refuse:
		var se *smtp.Error
		if !errors.As(res.Data, &se) || !se.Permanent() || len(msgs) != 0 {
			t.Fatalf("text with NUL or a long line: %v, %d stored; want a 5xx and nothing", res.Data, len(msgs))
		}
	case res.Data != nil || len(msgs) != 1:
		t.Fatalf("Send: %v, %d stored", res.Data, len(msgs))
	default:
		got := msgs[0].data
		if i := bytes.Index(got, []byte(bdatHeader)); i < 0 || !bytes.Equal(got[i:], want) {
			t.Fatalf("stored %q, want the Received field then %q", got, want)
		}
	}
	// The session is still in step: another command works.
	if err := c.Noop(); err != nil {
		t.Fatalf("NOOP after the transfer: %v", err)
	}
	c.Quit()
}

// crlfNormalized is what smtp.CRLFWriter makes of text.
func crlfNormalized(b []byte) []byte {
	var out bytes.Buffer
	w := smtp.NewCRLFWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// longestLine is the longest CRLF line of b, CRLF included.
func longestLine(b []byte) int {
	n := 0
	for _, l := range strings.SplitAfter(string(b), "\r\n") {
		n = max(n, len(l))
	}
	return n
}

// bdatSeeds are the table of TestClientBDAT and the seeds of FuzzClientBDAT.
var bdatSeeds = []struct {
	body   string
	chunk  int
	binary bool
}{
	{"hello\r\n", 0, false},
	{"", 1, false},
	{"a\nb\r\n.\r\n..\r\n", 3, false}, // bare LF repaired, dots untouched
	{"no final CRLF", 4, false},
	{"nul \x00 in text\r\n", 5, false},               // refused
	{strings.Repeat("x", 1200) + "\r\n", 512, false}, // refused: line too long
	{"\x00\n\r\xff.\r\n" + strings.Repeat("y", 1500), 7, true},
	{"", 0, true},
	{strings.Repeat("0123456789abcdef", 300), 16, true}, // exactly 300 full chunks, then BDAT 0 LAST
}

// TestClientBDAT runs smtpkit's client against smtpkit's server with BDAT:
// the two halves of RFC 3030 agree, chunk sizes from 1 octet up.
func TestClientBDAT(t *testing.T) {
	ts := startServer(t, Limits{MessageSize: 1 << 20}, Listener{Role: RoleMX, TLS: TLSNone})
	for _, s := range bdatSeeds {
		checkClientBDAT(t, ts, []byte(s.body), s.chunk, s.binary)
	}
}
