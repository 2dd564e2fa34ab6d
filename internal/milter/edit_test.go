package milter

import (
	"bytes"
	"strings"
	"testing"

	"smtpkit/internal/smtp"

	gomilter "github.com/emersion/go-milter"
)

func TestApply(t *testing.T) {
	const msg = "Received: from x\r\n\tby y\r\nFrom: a@example.com\r\nX-Spam: old\r\nSubject: hi\r\nX-Spam: old2\r\n\r\nbody\r\n"
	tests := []struct {
		name  string
		edits *Edits
		want  string
	}{
		{name: "none", edits: nil, want: msg},
		{name: "add", edits: &Edits{Header: []HeaderEdit{{Op: AddHeader, Name: "X-Spamd-Result", Value: "default: False [0.00 / 15.00];\n\tNONE(0.00)[]"}}},
			want: "Received: from x\r\n\tby y\r\nFrom: a@example.com\r\nX-Spam: old\r\nSubject: hi\r\nX-Spam: old2\r\nX-Spamd-Result: default: False [0.00 / 15.00];\r\n\tNONE(0.00)[]\r\n\r\nbody\r\n"},
		{name: "insert at top and at 2", edits: &Edits{Header: []HeaderEdit{{Op: InsertHeader, Index: 0, Name: "A", Value: "1"}, {Op: InsertHeader, Index: 2, Name: "B", Value: "2"}}},
			want: "A: 1\r\nReceived: from x\r\n\tby y\r\nB: 2\r\nFrom: a@example.com\r\nX-Spam: old\r\nSubject: hi\r\nX-Spam: old2\r\n\r\nbody\r\n"},
		{name: "change second, delete first", edits: &Edits{Header: []HeaderEdit{{Op: ChangeHeader, Index: 2, Name: "x-spam", Value: "new"}, {Op: ChangeHeader, Index: 1, Name: "X-Spam"}}},
			want: "Received: from x\r\n\tby y\r\nFrom: a@example.com\r\nSubject: hi\r\nx-spam: new\r\n\r\nbody\r\n"},
		{name: "change missing adds; delete missing is nothing", edits: &Edits{Header: []HeaderEdit{{Op: ChangeHeader, Index: 3, Name: "X-Spam", Value: "v"}, {Op: ChangeHeader, Index: 1, Name: "Nope"}}},
			want: msg[:len(msg)-len("\r\nbody\r\n")] + "X-Spam: v\r\n\r\nbody\r\n"},
		{name: "no smuggling: bare LF, empty line, NUL", edits: &Edits{Header: []HeaderEdit{{Op: AddHeader, Name: "X", Value: "a\n\nb\rc\x00d\r\n"}}},
			want: msg[:len(msg)-len("\r\nbody\r\n")] + "X: a\r\n\tb\r\n\tcd\r\n\r\nbody\r\n"},
		{name: "body replaced, line ends made CRLF", edits: &Edits{ReplaceBody: true, Body: crlf([]byte("new\nbody\r\n"))},
			want: msg[:len(msg)-len("body\r\n")] + "new\r\nbody\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.edits.Apply(strings.NewReader(msg), &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		code int
		text string
		want smtp.Reply
		bad  bool
	}{
		{code: 554, text: "5.7.1 Gtube pattern", want: smtp.Reply{Code: 554, Enhanced: "5.7.1", Lines: []string{"Gtube pattern"}}},
		{code: 451, text: "4.7.1 Try again later", want: smtp.Reply{Code: 451, Enhanced: "4.7.1", Lines: []string{"Try again later"}}},
		{code: 550, text: "Spam message rejected", want: smtp.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"Spam message rejected"}}},
		{code: 450, text: "", want: smtp.Reply{Code: 450, Enhanced: "4.7.1", Lines: replyTempfail.Lines}},
		{code: 550, text: "4.7.1 wrong class", want: smtp.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"4.7.1 wrong class"}}},
		{code: 550, text: "5.7.0 first\r\n550-5.7.0 second\r\n550 5.7.0 third", want: smtp.Reply{Code: 550, Enhanced: "5.7.0", Lines: []string{"first", "second", "third"}}},
		{code: 421, text: "4.7.0 closing", want: smtp.Reply{Code: 451, Enhanced: "4.7.0", Lines: []string{"closing"}}},
		{code: 250, text: "2.0.0 ok", bad: true},
		{code: 999, text: "x", bad: true},
	}
	for _, tt := range tests {
		got, ok := ParseReply(tt.code, tt.text)
		if ok == tt.bad || ok && got.String() != tt.want.String() {
			t.Errorf("ParseReply(%d, %q) = %q, %v; want %q", tt.code, tt.text, got.String(), ok, tt.want.String())
		}
	}
}

// TestEditsFieldName checks that a header change is refused unless its
// name is a whole field name: a colon in it would let a CR or LF through
// (a fuzz finding: "0:\r" passed a check that stopped at the first colon).
func TestEditsFieldName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"X-Spam", true},
		{"A", true},
		{"", false},
		{"0:\r", false},
		{"X:\r\nBcc", false},
		{"X Y", false},
		{"X\x7f", false},
		{"Ümlaut", false},
	}
	for _, tt := range tests {
		_, err := edits([]gomilter.ModifyAction{{Code: gomilter.ActAddHeader, HeaderName: tt.name, HeaderValue: "v"}})
		if (err == nil) != tt.ok {
			t.Errorf("edits(AddHeader %q): err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
