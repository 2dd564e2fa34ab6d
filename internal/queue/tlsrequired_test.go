package queue

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestTLSRequiredNo(t *testing.T) {
	const rcvd = "Received: from c (c [127.13.4.2])\r\n\tby mx.example.org with ESMTPS id x;\r\n\tMon, 1 Dec 2026 00:00:00 +0000\r\n"
	big := strings.Repeat("X-Pad: "+strings.Repeat("p", 990)+"\r\n", MaxTLSRequiredScan/997+1)
	tests := []struct {
		name       string
		msg        string
		requireTLS bool
		want       bool
	}{
		{"the field", "TLS-Required: No\r\n\r\nbody\r\n", false, true},
		{"after Received and others", rcvd + "From: a@b\r\nTLS-Required: No\r\nSubject: s\r\n\r\nbody\r\n", false, true},
		{"case-insensitive name and value", "tls-required:no\r\n\r\n", false, true},
		{"white space around the value", "TLS-Required: \t No \t\r\n\r\n", false, true},
		{"folded value", "TLS-Required:\r\n No\r\n\r\n", false, true},
		{"obsolete space before the colon", "TLS-Required : No\r\n\r\n", false, true},
		{"bare LF lines", "Subject: s\nTLS-Required: No\n\nbody\n", false, true},
		{"header section without a body", "Subject: s\r\nTLS-Required: No", false, true},
		{"no field", rcvd + "Subject: s\r\n\r\nTLS-Required: No\r\n", false, false},
		{"in the body only", "Subject: s\r\n\r\nTLS-Required: No\r\n", false, false},
		{"another value", "TLS-Required: Yes\r\n\r\n", false, false},
		{"more than the value", "TLS-Required: No thanks\r\n\r\n", false, false},
		{"empty value", "TLS-Required:\r\n\r\n", false, false},
		{"another field's name", "X-TLS-Required: No\r\n\r\n", false, false},
		{"inside another field's value", "Subject: TLS-Required: No\r\n\r\n", false, false},
		{"a continuation of another field", "Subject: s\r\n TLS-Required: No\r\n\r\n", false, false},
		{"REQUIRETLS wins (RFC 8689 §4.2)", "TLS-Required: No\r\n\r\n", true, false},
		{"past the scan limit", big + "TLS-Required: No\r\n\r\n", false, false},
		{"just within the scan limit", strings.Repeat("X: y\r\n", 1000) + "TLS-Required: No\r\n\r\n", false, true},
		{"an overlong line before it", "X-Long: " + strings.Repeat("l", 10000) + "\r\nTLS-Required: No\r\n\r\n", false, true},
		{"empty message", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Attempt{RequireTLS: tt.requireTLS, Open: func() (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader(tt.msg)), nil
			}}
			if got := a.TLSRequiredNo(); got != tt.want {
				t.Errorf("TLSRequiredNo = %v, want %v", got, tt.want)
			}
		})
	}
	unreadable := &Attempt{Open: func() (io.ReadCloser, error) { return nil, errors.New("gone") }}
	if unreadable.TLSRequiredNo() {
		t.Error("an unreadable message asks for TLS-Required: No")
	}
	if (&Attempt{}).TLSRequiredNo() {
		t.Error("an attempt without Open asks for TLS-Required: No")
	}
}

// TestTLSRequiredNoReadsBounded: only the header section is read, and at
// most MaxTLSRequiredScan bytes of it.
func TestTLSRequiredNoReadsBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  io.Reader
		max  int64
	}{
		{"stops at the end of the header section", io.MultiReader(strings.NewReader("Subject: s\r\n\r\n"), endless{}), 64 << 10},
		{"stops at the limit in an endless header", endless{}, MaxTLSRequiredScan},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: tt.msg}
			a := &Attempt{Open: func() (io.ReadCloser, error) { return io.NopCloser(cr), nil }}
			if a.TLSRequiredNo() {
				t.Error("found the field")
			}
			if cr.n > tt.max {
				t.Errorf("read %d bytes, want at most %d", cr.n, tt.max)
			}
		})
	}
}

// endless is a header section without end: "X: y" lines forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	const line = "X: y\r\n"
	for i := range p {
		p[i] = line[i%len(line)]
	}
	return len(p) - len(p)%len(line), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
