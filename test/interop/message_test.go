package interop

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testMessage returns a CRLF message whose body exercises dot-stuffing
// (RFC 5321 §4.5.2): a line that is a single dot, lines with leading dots,
// and an empty line. tag makes messages of one test distinguishable.
func testMessage(tag string) []byte {
	lines := []string{
		"From: Alice <a@b.example>",
		"To: <user@test.example>",
		"Subject: interop " + tag,
		"Message-ID: <" + tag + "@b.example>",
		"Date: Mon, 02 Mar 2026 10:00:00 +0000",
		"",
		"Hello from " + tag + ".",
		".",
		".leading dot",
		"..two leading dots",
		"",
		"last line",
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// dotStuff doubles a leading dot on every line, as a client must before
// sending a body raw (RFC 5321 §4.5.2).
func dotStuff(msg []byte) []byte {
	lines := bytes.SplitAfter(msg, []byte("\r\n"))
	var b bytes.Buffer
	for _, l := range lines {
		if len(l) > 0 && l[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(l)
	}
	return b.Bytes()
}

// writeMessage stores msg in the test's temp dir and returns its path.
func writeMessage(t *testing.T, msg []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkDelivered checks a delivered Maildir file: the Return-Path line
// with sender, a Received header, and then want byte for byte.
func checkDelivered(t *testing.T, got, want []byte, sender string) {
	t.Helper()
	rp := fmt.Sprintf("Return-Path: <%s>", sender)
	if !bytes.HasPrefix(got, []byte(rp+"\r\n")) && !bytes.HasPrefix(got, []byte(rp+"\n")) {
		t.Errorf("delivered message does not start with %q:\n%q", rp, firstLines(got, 3))
	}
	if !hasFieldPrefix(afterLine(got), "Received:") {
		t.Errorf("no Received header after Return-Path:\n%q", firstLines(got, 3))
	}
	if body := StripTrace(got); !bytes.Equal(body, want) {
		t.Errorf("delivered message differs from what was sent\n got: %q\nwant: %q", body, want)
	}
}

// firstLines returns at most n lines of b, for error messages.
func firstLines(b []byte, n int) []byte {
	end := 0
	for i := 0; i < n && end < len(b); i++ {
		j := bytes.IndexByte(b[end:], '\n')
		if j < 0 {
			return b
		}
		end += j + 1
	}
	return b[:end]
}
